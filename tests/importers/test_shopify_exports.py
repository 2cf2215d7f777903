"""Shopify's own export layouts import: the sample files' quirks (no SKUs, untracked
inventory, image-only rows, variant images, multi-line HTML) and the current layout's
``Status``. The fixtures are generated equivalents of Shopify's samples (see
fixtures/shopify/generate.py: the samples carry no licence); the counts each test expects
are read from the files with the csv module, independently of the importer."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import SignIn
from emporium.catalog.models import Product, Variant
from emporium.cli import main
from emporium.core.config import Settings
from emporium.importers import shopify
from emporium.importers.common import ImportFailed
from factories import API, assert_problem, create_category, product_body, variant_body
from importers.support import import_shopify
from orders.support import balance, ledger, order

SHOPIFY = Path(__file__).parent / "fixtures" / "shopify"
SAMPLES = [SHOPIFY / name for name in ("apparel.csv", "home-and-garden.csv", "jewelery.csv")]
CURRENT = SHOPIFY / "current_export.csv"
Json = dict[str, Any]


def _census(path: Path) -> dict[str, int]:
    """What a file holds, counted with the csv module alone: products (handles), variants
    (rows with a price), images (distinct Image Src and Variant Image URLs per product),
    variants without SKU and untracked variants (empty Variant Inventory Tracker)."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    handles = {row["Handle"] for row in rows}
    variants = [row for row in rows if row["Variant Price"]]
    images = {
        (row["Handle"], url) for row in rows for url in (row["Image Src"], row["Variant Image"])
    }
    return {
        "products": len(handles),
        "variants": len(variants),
        "images": len({pair for pair in images if pair[1]}),
        "no_sku": sum(1 for row in variants if not row["Variant SKU"]),
        "untracked": sum(1 for row in variants if not row["Variant Inventory Tracker"]),
    }


async def _product(client: AsyncTestClient[Litestar], slug: str, headers: Json) -> Json:
    response = await client.get(f"{API}/products/{slug}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (SAMPLES[0], {"products": 20, "variants": 22, "images": 20, "no_sku": 22}),
        (SAMPLES[1], {"products": 20, "variants": 21, "images": 21, "no_sku": 21}),
        (SAMPLES[2], {"products": 20, "variants": 22, "images": 48, "no_sku": 22}),
    ],
    ids=["apparel", "home-and-garden", "jewelery"],
)
def test_every_product_of_shopifys_sample_layouts_parses(
    path: Path, expected: dict[str, int]
) -> None:
    census = _census(path)
    assert census.items() >= expected.items()  # the file is what the fixture promises
    products, problems = shopify.parse([path])
    assert problems == []
    variants = [v for p in products for v in p.variants]
    assert len(products) == census["products"]
    assert len(variants) == census["variants"]
    assert sum(len(p.images) for p in products) == census["images"]
    assert sum(v.sku is None for v in variants) == census["no_sku"]
    assert sum(v.stock is None for v in variants) == census["untracked"]


async def test_the_samples_import_and_show_in_the_shop(
    client: AsyncTestClient[Litestar],
    session: AsyncSession,
    settings: Settings,
    admin_headers: dict[str, str],
) -> None:
    report = await import_shopify(session, settings, *SAMPLES)
    expected = sum(_census(path)["products"] for path in SAMPLES)
    assert report.counts["products"] == {"created": expected}
    listing = await client.get(f"{API}/products", params={"limit": 100})
    assert len(listing.json()["items"]) == expected  # all published

    rowing = await _product(client, "rowing-top", {})
    assert [(v["sku"], v["title"], v["price"], v["stock"]) for v in rowing["variants"]] == [
        (None, "Small", 6000, None),
        (None, "Medium", 6000, None),
        (None, "Large", 6000, None),
    ]
    assert rowing["tags"] == ["women"]
    pots = await _product(client, "paper-pots", {})
    assert pots["variants"][0]["stock"] == 8  # the one variant Shopify tracks
    pot = await _product(client, "terracotta-pot", {})
    assert pot["tags"] == ["Pot", "Plants"]
    assert [v["price"] for v in pot["variants"]] == [999, 1599]
    tagged = await client.get(f"{API}/products", params={"tag": "PLANTS", "limit": 100})
    assert {"terracotta-pot", "paper-pots"} <= {p["slug"] for p in tagged.json()["items"]}
    beads = await _product(client, "bead-bracelet", {})
    cdn = "https://cdn.example.com/s/files/"
    assert [(v["title"], v["image_url"]) for v in beads["variants"]] == [
        ("Blue", cdn + "bead-bracelet_925x.jpg"),
        ("Black", cdn + "bead-black_925x.jpg"),
    ]
    assert [i["url"] for i in beads["images"]] == [
        cdn + "bead-bracelet_925x.jpg",
        cdn + "bead-black_925x.jpg",
    ]
    gem = await _product(client, "gem-pendant", {})
    assert gem["description"] == (
        '<p>Pendant on a chain,\n"sterling" silver.</p>\n<p>Gift boxed.</p>'
    )
    assert [i["position"] for i in gem["images"]] == [1, 2, 3, 4]
    assert gem["variants"][1]["options"] == {"Colour": "Purple"}

    await session.commit()
    again = await import_shopify(session, settings, *SAMPLES)  # variants without SKU are matched
    assert again.counts["products"] == {"unchanged": expected}
    await session.commit()


async def test_the_samples_weights_and_tax_classes_come_from_their_columns(
    client: AsyncTestClient[Litestar], session: AsyncSession, settings: Settings
) -> None:
    """``Variant Grams`` is each variant's ``weight_grams`` whatever ``Variant Weight Unit``
    shows (the earrings' ``28`` with ``oz`` is 28 g); ``Variant Taxable`` true leaves a
    product ``standard``. What to expect is read from the files with the csv module."""
    await import_shopify(session, settings, *SAMPLES)
    grams: dict[str, list[int]] = {}
    taxable: dict[str, set[str]] = {}
    for path in SAMPLES:
        with path.open(encoding="utf-8-sig", newline="") as f:
            for row in csv.DictReader(f):
                if row["Variant Price"]:
                    grams.setdefault(row["Handle"], []).append(int(row["Variant Grams"]))
                    taxable.setdefault(row["Handle"], set()).add(row["Variant Taxable"].lower())
    assert grams["globe-earrings"] == [28]
    for handle, weights in grams.items():
        product = await _product(client, handle, {})
        assert [v["weight_grams"] for v in product["variants"]] == weights, handle
        exempt = taxable[handle] == {"false"}
        assert product["tax_class"] == ("exempt" if exempt else "standard"), handle


async def test_the_current_layout_honours_status_tracker_and_skus_with_spaces(
    client: AsyncTestClient[Litestar],
    session: AsyncSession,
    settings: Settings,
    admin_headers: dict[str, str],
) -> None:
    await import_shopify(session, settings, CURRENT)
    throw = await _product(client, "linen-throw", {})
    assert throw["published"] is True
    assert throw["tags"] == ["Linen", "Eco-Friendly", "SALE"]
    assert [(v["sku"], v["stock"], v["compare_at_price"]) for v in throw["variants"]] == [
        ("LT 01 SAND", 4, 4500),
        ("LT 01 SLATE", None, None),
    ]
    for slug in ("clay-vase", "old-lantern"):  # draft, archived
        hidden = await client.get(f"{API}/products/{slug}")
        assert hidden.status_code == 404
        assert (await _product(client, slug, admin_headers))["published"] is False
    vase = await _product(client, "clay-vase", admin_headers)
    assert vase["variants"][0]["sku"] is None


def test_a_compare_at_price_below_the_price_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(
        "Handle,Title,Variant SKU,Variant Price,Variant Compare At Price\n"
        "lamp,Lamp,L 1,20.00,19.99\nvase,Vase,,20.00,20.00\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportFailed) as failed:
        shopify.parse([path])
    assert [str(p) for p in failed.value.problems] == [
        f"{path}:line 2: Variant Compare At Price '19.99' is below the price"
    ]


async def test_skip_invalid_that_skipped_everything_says_so_and_fails(
    tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "Handle,Title,Variant Price,Status\nlamp,Lamp,1.001,active\nvase,Vase,-1,active\n",
        encoding="utf-8",
    )
    env = {"EMPORIUM_DATABASE_URL": settings.database_url}
    command = ["import", "shopify-csv", "--skip-invalid", str(path)]
    result = await asyncio.to_thread(CliRunner().invoke, main, command, env=env)
    assert result.exit_code == 1, result.output
    assert "every row had a problem (2 skipped); nothing was imported" in result.stderr
    assert "products:" not in result.stdout


async def test_an_untracked_variant_sells_without_stock_and_the_tracked_ledger_holds(
    client: AsyncTestClient[Litestar],
    session: AsyncSession,
    settings: Settings,
    admin_headers: dict[str, str],
    sign_in: SignIn,
) -> None:
    await import_shopify(session, settings, CURRENT)
    sand, slate = (await _product(client, "linen-throw", {}))["variants"]
    buyer = await sign_in()
    placed = await order(client, buyer, [(slate["id"], 7), (sand["id"], 3)])
    assert placed.status_code == 201, placed.text
    assert placed.json()["subtotal"] == 10 * 3900
    short = await order(client, buyer, [(slate["id"], 1), (sand["id"], 2)])
    problem = assert_problem(short, 409, "insufficient_stock")
    assert [line["variant_id"] for line in problem["lines"]] == [sand["id"]]
    after = {v["sku"]: v["stock"] for v in (await _product(client, "linen-throw", {}))["variants"]}
    assert after == {"LT 01 SAND": 1, "LT 01 SLATE": None}
    assert balance(await ledger(client, admin_headers, sand["id"])) == {"received": 4, "sale": -3}
    assert await ledger(client, admin_headers, slate["id"]) == []
    cancel = await client.post(f"{API}/orders/{placed.json()['id']}/cancel", headers=buyer)
    assert cancel.status_code == 200, cancel.text
    after = {v["sku"]: v["stock"] for v in (await _product(client, "linen-throw", {}))["variants"]}
    assert after == {"LT 01 SAND": 4, "LT 01 SLATE": None}
    assert await ledger(client, admin_headers, slate["id"]) == []
    adjust = await client.post(
        f"{API}/variants/{slate['id']}/stock-adjustments",
        json={"delta": 5, "reason": "count"},
        headers=admin_headers,
    )
    assert_problem(adjust, 409, "inventory_not_tracked")


async def test_skus_are_optional_and_unique_when_given(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str], session: AsyncSession
) -> None:
    category = await create_category(client, admin_headers)
    bare = {"title": "Default", "price": 500, "stock": None}
    for _ in range(2):  # two products whose variants have no SKU
        body = product_body(category["id"], variants=[bare, bare | {"title": "Large"}])
        created = await client.post(f"{API}/products", json=body, headers=admin_headers)
        assert created.status_code == 201, created.text
        assert [v["sku"] for v in created.json()["variants"]] == [None, None]
    spaced = product_body(category["id"], variants=[variant_body(sku="MUG 01 BLUE")])
    first = await client.post(f"{API}/products", json=spaced, headers=admin_headers)
    assert first.status_code == 201, first.text
    again = await client.post(f"{API}/products", json=spaced, headers=admin_headers)
    assert_problem(again, 409, "sku_taken")
    for sku in (" lead", "trail ", "tab\there", ""):
        bad = product_body(category["id"], variants=[variant_body() | {"sku": sku}])
        refused = await client.post(f"{API}/products", json=bad, headers=admin_headers)
        assert refused.status_code in (400, 422), (sku, refused.text)
    below = product_body(category["id"], variants=[variant_body(price=900, compare_at_price=800)])
    refused = await client.post(f"{API}/products", json=below, headers=admin_headers)
    assert refused.status_code in (400, 422), refused.text
    assert "compare_at_price" in refused.text


async def test_the_database_allows_many_null_skus_and_one_of_each_sku(
    session: AsyncSession, settings: Settings
) -> None:
    """The unique constraint itself (after migration 0006), on SQLite and PostgreSQL."""
    await import_shopify(session, settings, CURRENT)
    await session.commit()
    product = await session.scalar(select(Product.id).where(Product.slug == "linen-throw"))
    assert product is not None

    def row(sku: str | None, title: str) -> Variant:
        return Variant(
            product_id=product,
            sku=sku,
            title=title,
            price=1,
            currency="USD",
            stock=None,
            options={},
        )

    session.add_all([row(None, "a"), row(None, "b")])
    await session.commit()
    session.add(row("LT 01 SAND", "c"))
    with pytest.raises(IntegrityError):
        await session.commit()
    await session.rollback()
