"""Importing Shopify product CSV exports: what a shop owner sees in the shop afterwards, and
the problems (file and line) the importer reports when the files are wrong."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.catalog.models import Category, Product, ProductTag, Variant
from emporium.cli import main
from emporium.core.config import Settings
from emporium.importers import common, shopify
from emporium.importers.common import ImportFailed
from importers.support import import_shopify

FIXTURES = Path(__file__).parent / "fixtures"
CATALOG = FIXTURES / "catalog.csv"
BROKEN = FIXTURES / "broken.csv"
CDN = "https://cdn.example.com/files/"
HEADER = ["Handle", "Title", "Body (HTML)", "Type", "Published", "Option1 Name"]
HEADER += ["Option1 Value", "Variant SKU", "Variant Price", "Image Src", "Image Position"]


async def _cli(settings: Settings, *args: str) -> Result:
    """Run ``emporium import shopify-csv ARGS`` (CliRunner runs asyncio.run: use a thread)."""
    env = {"EMPORIUM_DATABASE_URL": settings.database_url}
    command = ["import", "shopify-csv", *args]
    return await asyncio.to_thread(CliRunner().invoke, main, command, env=env)


async def _slugs(client: AsyncTestClient[Litestar], headers: dict[str, str]) -> set[str]:
    response = await client.get("/api/v1/products", params={"limit": 100}, headers=headers)
    assert response.status_code == 200
    return {item["slug"] for item in response.json()["items"]}


def _variants(product: dict[str, Any]) -> list[tuple[Any, ...]]:
    keys = ("sku", "title", "options", "price", "compare_at_price", "currency", "stock")
    return [tuple(v[k] for k in keys) for v in product["variants"]]


def _write(path: Path, *rows: list[str], header: list[str] = HEADER) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([header, *rows])
    return path


def _row(
    handle: str, sku: str, price: str = "10.00", title: str = "Lamp", **extra: str
) -> list[str]:
    cells = dict(zip(HEADER, [handle, title, "", "Lighting", "TRUE", "Title"], strict=False))
    cells |= {"Option1 Value": "Default Title", "Variant SKU": sku, "Variant Price": price}
    cells |= {k.replace("_", " "): v for k, v in extra.items()}
    return [cells.get(column, "") for column in HEADER]


def _messages(paths: list[Path]) -> list[str]:
    with pytest.raises(ImportFailed) as failed:
        shopify.parse(paths)
    return [f"{Path(p.file).name}:{p.where}: {p.message}" for p in failed.value.problems]


# --- what the shop shows after an import (both databases) -----------------------------------


async def test_import_shows_variants_prices_images_and_unicode(
    client: AsyncTestClient[Litestar],
    session: AsyncSession,
    settings: Settings,
    admin_headers: dict[str, str],
) -> None:
    report = await import_shopify(session, settings, CATALOG)
    assert report.counts["products"] == {"created": 3}

    tee = (await client.get("/api/v1/products/classic-tee")).json()
    assert tee["title"] == "Classic Tee"
    assert tee["brand"] == "Emporium Basics"
    assert tee["tags"] == ["Cotton", "Summer", "BESTSELLER"]  # the case given
    assert tee["published"] is True
    assert tee["price_min"] == 1999
    assert _variants(tee) == [
        ("TEE-BLK-M", "Black / M", {"Color": "Black", "Size": "M"}, 1999, 2499, "USD", 5),
        ("TEE-BLK-L", "Black / L", {"Color": "Black", "Size": "L"}, 1999, 2499, "USD", 0),
        ("TEE-WHT-M", "White / M", {"Color": "White", "Size": "M"}, 2150, None, "USD", 12),
        ("TEE-WHT-L", "White / L", {"Color": "White", "Size": "L"}, 2150, None, "USD", 7),
    ]
    assert tee["images"] == [
        {"url": CDN + "tee-black.jpg", "alt": "Classic Tee in black", "position": 1},
        {"url": CDN + "tee-white.jpg", "alt": "Classic Tee in white", "position": 2},
        {"url": CDN + "tee-back.jpg", "alt": "Classic Tee", "position": 3},
        {"url": CDN + "tee-detail.jpg", "alt": "Classic Tee", "position": 4},
    ]
    assert tee["description"] == (
        '<p>Soft <strong>organic</strong> cotton, a "relaxed" fit,\nmade to last.</p>\n'
        "<p>Wash cold, hang dry.</p>"
    )
    categories = (await client.get("/api/v1/categories")).json()
    by_id = {c["id"]: c["name"] for c in categories}
    assert by_id[tee["category_id"]] == "T-Shirts"

    tasse = (await client.get("/api/v1/products/creme-brulee-tasse")).json()
    assert tasse["title"] == "Crème brûlée Tasse ☕"
    assert tasse["brand"] == "Atelier Élise"
    assert tasse["tags"] == ["Café", "Geschenk 🎁"]
    assert tasse["description"] == "<p>Für Crème brûlée &amp; Café au lait.</p>"
    assert _variants(tasse) == [("MUG-CB-01", "Default", {}, 1200, None, "USD", 30)]
    assert by_id[tasse["category_id"]] == "Kitchen"

    assert (await client.get("/api/v1/products/tokyo-mug")).status_code == 404  # unpublished
    mug = (await client.get("/api/v1/products/tokyo-mug", headers=admin_headers)).json()
    assert (mug["title"], mug["published"], mug["brand"]) == ("東京 Mug 🗼", False, None)
    assert mug["tags"] == ["東京", "Souvenir"]
    assert mug["description"] == "<p>東京の朝に。</p>"
    assert mug["images"] == []
    # No quantity and no inventory tracker: not tracked (stock null), not "0 in stock".
    assert _variants(mug) == [("MUG-TKY", "Default", {}, 950, None, "USD", None)]
    assert by_id[mug["category_id"]] == "Uncategorized"


async def test_no_script_or_event_handler_reaches_the_database(
    session: AsyncSession, settings: Settings
) -> None:
    await import_shopify(session, settings, CATALOG)
    stored = await session.scalar(select(Product.description).where(Product.slug == "classic-tee"))
    assert stored is not None
    assert "<script" not in stored
    assert "stolen" not in stored
    assert "onclick" not in stored
    assert "steal()" not in stored


async def test_importing_the_same_file_twice_changes_nothing(
    session: AsyncSession, settings: Settings
) -> None:
    async def snapshot() -> list[list[Any]]:
        tables = (Product, Variant, ProductTag, Category)
        return [
            sorted(tuple(row) for row in await session.execute(select(model.__table__)))
            for model in tables
        ]

    await import_shopify(session, settings, CATALOG)
    before = await snapshot()
    await session.commit()
    second = await import_shopify(session, settings, CATALOG)
    assert second.changed is False
    assert second.counts["products"] == {"unchanged": 3}
    assert "nothing changed" in second.summary()
    assert await snapshot() == before
    await session.commit()


# --- broken input: every problem, with file and line; nothing imported ------------------------


def test_broken_csv_lists_every_problem_with_its_line() -> None:
    with pytest.raises(ImportFailed) as failed:
        shopify.parse([BROKEN])
    assert [(p.file, p.where, p.message) for p in failed.value.problems] == [
        (str(BROKEN), "line 6", "Variant Price '12.345' has fractions of a cent"),
        (str(BROKEN), "line 8", "Variant Compare At Price '4.00' is below the price"),
        (
            str(BROKEN),
            "line 9",
            "Variant Inventory Qty '-3' must be a whole number from 0 to 1000000000",
        ),
    ]


def test_skip_invalid_keeps_only_the_products_without_problems() -> None:
    products, problems = shopify.parse([BROKEN], skip_invalid=True)
    assert [p.external_ref for p in products] == ["shopify:good-hoodie", "shopify:plain-scarf"]
    assert [p.where for p in problems] == ["line 6", "line 8", "line 9"]
    hoodie = products[0]
    assert hoodie.description == '<p>Warm,\nheavy "loopback" fleece,\nbrushed inside.</p>'
    assert [(v.sku, v.title, v.options, v.price) for v in hoodie.variants] == [
        ("HOOD-M", "M", {"Size": "M"}, 4500),
        ("HOOD-L", "L", {"Size": "L"}, 4500),
    ]


async def test_cli_refuses_a_broken_csv_and_imports_nothing(
    client: AsyncTestClient[Litestar], settings: Settings, admin_headers: dict[str, str]
) -> None:
    result = await _cli(settings, str(CATALOG), str(BROKEN))
    assert result.exit_code != 0
    assert f"{BROKEN}:line 6: Variant Price '12.345' has fractions of a cent" in result.stderr
    assert f"{BROKEN}:line 8: Variant Compare At Price '4.00' is below" in result.stderr
    assert f"{BROKEN}:line 9: Variant Inventory Qty '-3'" in result.stderr
    assert "3 problem(s) found; nothing was imported" in result.stderr
    assert await _slugs(client, admin_headers) == set()


async def test_cli_skip_invalid_imports_the_valid_products_only(
    client: AsyncTestClient[Litestar], settings: Settings, admin_headers: dict[str, str]
) -> None:
    result = await _cli(settings, "--skip-invalid", str(BROKEN))
    assert result.exit_code == 0, result.output
    assert f"skipped: {BROKEN}:line 6:" in result.stderr
    assert "products: 2 created" in result.stdout
    assert await _slugs(client, admin_headers) == {"good-hoodie", "plain-scarf"}
    scarf = (await client.get("/api/v1/products/plain-scarf")).json()
    assert _variants(scarf) == [("SCARF-1", "Default", {}, 3000, None, "USD", 9)]


async def test_cli_imports_a_good_file_and_a_second_run_changes_nothing(
    client: AsyncTestClient[Litestar], settings: Settings, admin_headers: dict[str, str]
) -> None:
    first = await _cli(settings, str(CATALOG))
    assert first.exit_code == 0, first.output
    assert "products: 3 created" in first.stdout
    second = await _cli(settings, str(CATALOG))
    assert second.exit_code == 0, second.output
    assert "products: 0 created, 0 updated, 3 unchanged" in second.stdout
    assert "nothing changed" in second.stdout
    assert await _slugs(client, admin_headers) == {"classic-tee", "creme-brulee-tasse", "tokyo-mug"}


# --- the checks, one by one -------------------------------------------------------------------


def test_duplicate_sku_across_two_files_names_both_places() -> None:
    first, second = FIXTURES / "lamps_a.csv", FIXTURES / "lamps_b.csv"
    with pytest.raises(ImportFailed) as failed:
        shopify.parse([first, second])
    assert [(p.file, p.where, p.message) for p in failed.value.problems] == [
        (str(second), "line 3", f"SKU 'LAMP-1' is used twice: here and at {first} line 2")
    ]
    products, _ = shopify.parse([first, second], skip_invalid=True)
    assert [p.external_ref for p in products] == ["shopify:floor-lamp", "shopify:pendant-light"]


def test_missing_required_columns_are_reported_once_on_line_1(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.csv", ["lamp", "Lamp"], header=["Handle", "Title"])
    assert _messages([path]) == ["p.csv:line 1: missing column(s): Variant Price"]


def test_line_numbers_count_physical_lines_of_multi_line_bodies(tmp_path: Path) -> None:
    body = '<p>one,\n"two",\r\nthree</p>'
    path = tmp_path / "p.csv"
    path.write_text("\ufeff", encoding="utf-8")
    with path.open("a", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerows([HEADER, [*_row("a", "A-1")[:2], body, *_row("a", "A-1")[3:]]])
        writer.writerow(_row("b", "B-1", price="abc"))
        f.write("\r\n")  # a blank line is skipped, and still counted
        writer.writerow(_row("c", "C\t1"))
    assert _messages([path]) == [
        "p.csv:line 5: Variant Price 'abc' must be a decimal number like 19.99",
        "p.csv:line 7: Variant SKU 'C\\t1' must be at most 100 printable characters",
    ]


def test_product_rows_and_handles(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "p.csv",
        _row("lamp", "L-1"),
        _row("desk", "D-1", title=""),
        _row("lamp", "L-2", title=""),
        _row("vase", "", price="", title="Vase", Option1_Value="", Image_Src=CDN + "vase.jpg"),
        _row("x" * 10, "X-1", title="T" * 256),
    )
    other = _write(tmp_path / "q.csv", _row("desk", "D-2"))
    assert _messages([path, other]) == [
        "p.csv:line 3: Title is empty on the first row of 'desk'",
        "p.csv:line 4: handle 'lamp' is also used at "
        f"{path} line 2; its rows must be adjacent, in one file",
        f"p.csv:line 4: same options as the variant at {path} line 2",
        "p.csv:line 5: product 'vase' has no variant (no price)",
        "p.csv:line 6: Title is over 255 characters",
        f"q.csv:line 2: handle 'desk' is also used at {path} line 3; "
        "its rows must be adjacent, in one file",
        f"q.csv:line 2: same options as the variant at {path} line 3",
    ]


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ({"Variant_Price": "-1.00"}, "Variant Price '-1.00' must be zero or more"),
        ({"Variant_Price": "1,299.00"}, "Variant Price '1,299.00' must be a decimal number"),
        ({"Variant_Price": "NaN"}, "Variant Price 'NaN' must be a decimal number like 19.99"),
        ({"Variant_Price": "1e3"}, "Variant Price '1e3' must be a decimal number like 19.99"),
        ({"Variant_Compare_At_Price": "9.999"}, "Compare At Price '9.999' has fractions of"),
        ({"Variant_Inventory_Qty": "2.5"}, "Variant Inventory Qty '2.5' must be a whole number"),
        ({"Image_Src": "ftp://example.com/a.jpg"}, "Image Src 'ftp://example.com/a.jpg' is not"),
        ({"Image_Src": "javascript:alert(1)"}, "Image Src 'javascript:alert(1)' is not an http"),
        ({"Image_Position": "first", "Image_Src": CDN + "a.jpg"}, "Image Position 'first' is"),
        ({"Published": "yes"}, "Published must be TRUE or FALSE"),
        ({"Option1_Name": "Size", "Option1_Value": ""}, "Option1 Value (Size) is empty"),
    ],
)
def test_bad_cells_are_reported(tmp_path: Path, cells: dict[str, str], message: str) -> None:
    header = [*HEADER, "Variant Compare At Price", "Variant Inventory Qty"]
    row = dict(zip(header, [*_row("lamp", "L-1"), "", ""], strict=True))
    row |= {k.replace("_", " "): v for k, v in cells.items()}
    path = _write(tmp_path / "p.csv", [row[c] for c in header], header=header)
    messages = _messages([path])
    assert len(messages) == 1
    assert messages[0].startswith("p.csv:line 2: ")
    assert message in messages[0]


@pytest.mark.parametrize(
    ("text", "cents"),
    [("0", 0), ("19.99", 1999), ("21.5", 2150), ("9.990", 999), ("0.01", 1), ("100", 10000)],
)
def test_prices_become_exact_integer_cents(text: str, cents: int) -> None:
    assert common.cents(text) == cents


@pytest.mark.parametrize("text", ["0.001", "-0.01", "abc", "", "Infinity", "1 000", "²", "9.9.9"])
def test_prices_that_are_not_whole_cents_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        common.cents(text)


def test_a_file_that_is_not_utf8_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"Handle,Title,Variant Price\nmug,Caf\xe9 Mug,9.00\n")
    assert _messages([path]) == [
        "latin1.csv:line 2: not UTF-8 text: export or save the file as UTF-8 CSV"
    ]
    with pytest.raises(ImportFailed):
        shopify.parse([path], skip_invalid=True)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    messages = _messages([tmp_path / "gone.csv"])
    assert len(messages) == 1
    assert messages[0].startswith("gone.csv:line 1: cannot read")


@pytest.mark.parametrize(
    ("grams", "taxable", "weight", "tax_class"),
    [
        ("200", "TRUE", 200, "standard"),
        ("200.0", "FALSE", 200, "exempt"),
        ("", "", None, None),
        ("0", "false", 0, "exempt"),
    ],
)
def test_variant_grams_and_taxable_fill_weight_and_tax_class(
    tmp_path: Path, grams: str, taxable: str, weight: int | None, tax_class: str | None
) -> None:
    header = [*HEADER, "Variant Grams", "Variant Taxable"]
    path = _write(tmp_path / "p.csv", [*_row("lamp", "L-1"), grams, taxable], header=header)
    products, problems = shopify.parse([path])
    assert problems == []
    assert products[0].variants[0].weight_grams == weight
    assert products[0].tax_class == tax_class


@pytest.mark.parametrize("grams", ["-5", "1.5", "heavy", "1e3x"])
def test_variant_grams_that_are_not_whole_grams_are_reported(tmp_path: Path, grams: str) -> None:
    header = [*HEADER, "Variant Grams"]
    path = _write(tmp_path / "p.csv", [*_row("lamp", "L-1"), grams], header=header)
    messages = _messages([path])
    assert len(messages) == 1
    assert f"Variant Grams {grams!r} must be a whole number of grams" in messages[0]


async def test_imported_weights_and_tax_classes_are_stored(
    tmp_path: Path, session: AsyncSession, settings: Settings
) -> None:
    header = [*HEADER, "Variant Grams", "Variant Taxable"]
    path = _write(tmp_path / "p.csv", [*_row("gift-card", "GC-1"), "0", "FALSE"], header=header)
    await import_shopify(session, settings, path)
    row = (
        await session.execute(
            select(Product.tax_class, Variant.weight_grams).join(
                Variant, Variant.product_id == Product.id
            )
        )
    ).one()
    assert tuple(row) == ("exempt", 0)
