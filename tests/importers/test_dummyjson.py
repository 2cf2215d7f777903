"""Importing DummyJSON's product file: what lands in the shop, what a second run does, what
is never stored, and how a broken file is refused (by the parser and by the CLI)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.catalog.models import Category, Product, Variant
from emporium.cli import main
from emporium.core.config import Settings
from emporium.importers import dummyjson
from emporium.importers.common import ImportFailed
from emporium.reviews.models import Review
from factories import (
    API,
    PRODUCTS_FILE,
    Client,
    Json,
    all_products,
    by_sku,
    import_dummyjson,
    source_products,
    walk,
)

EMAIL_DOMAIN = "@x.dummyjson.com"


async def _count(session: AsyncSession, model: type[Any]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _counts(session: AsyncSession) -> dict[str, int]:
    counts = {
        "categories": await _count(session, Category),
        "products": await _count(session, Product),
        "variants": await _count(session, Variant),
        "reviews": await _count(session, Review),
    }
    await session.rollback()
    return counts


async def _dump(session: AsyncSession) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table in the database, as text, in a stable order."""

    def table_names(connection: Any) -> list[str]:
        return sorted(inspect(connection).get_table_names())

    connection = await session.connection()
    names = await connection.run_sync(table_names)
    dump: dict[str, list[tuple[str, ...]]] = {}
    for name in names:
        rows = (await session.execute(text(f'SELECT * FROM "{name}"'))).all()  # noqa: S608
        dump[name] = sorted(tuple(_as_text(v) for v in row) for row in rows)
    await session.rollback()
    return dump


def _as_text(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("latin-1")
    return str(value)


@pytest.mark.slow
async def test_import_brings_the_whole_catalog(
    client: Client, session: AsyncSession, datasets_dir: Path
) -> None:
    """One import creates the 24 categories, 194 products and 582 reviews of the file, and
    the API serves all of them."""
    report = await import_dummyjson(session, datasets_dir)
    assert report.counts["categories"].get("created") == 24
    assert report.counts["products"].get("created") == 194
    assert report.counts["reviews"].get("created") == 582
    assert report.changed
    assert not report.problems
    assert await _counts(session) == {
        "categories": 24,
        "products": 194,
        "variants": 194,
        "reviews": 582,
    }

    source = source_products(datasets_dir)
    categories = (await client.get(f"{API}/categories")).json()
    assert {c["slug"] for c in categories} == {s["category"] for s in source}
    products = by_sku(await all_products(client))
    assert products.keys() == {s["sku"] for s in source}
    assert sum(p["review_count"] for p in products.values()) == 582
    sample = products[source[0]["sku"]]
    reviews = await walk(client, f"{API}/products/{sample['id']}/reviews")
    assert len(reviews) == len(source[0]["reviews"])
    weights = {sku: p["variants"][0]["weight_grams"] for sku, p in products.items()}
    assert weights == {s["sku"]: s["weight"] * 1000 for s in source}  # kilograms in the file


@pytest.mark.slow
async def test_second_import_changes_nothing(
    client: Client, session: AsyncSession, datasets_dir: Path
) -> None:
    """Importing the same file again reports nothing changed and leaves every row, every
    timestamp included, exactly as it was."""
    await import_dummyjson(session, datasets_dir)
    before = await _dump(session)
    api_before = await all_products(client)

    report = await import_dummyjson(session, datasets_dir)
    assert not report.changed
    assert report.counts["products"] == {"unchanged": 194}
    assert report.counts["reviews"] == {"unchanged": 582}
    assert report.counts["categories"].get("created", 0) == 0
    assert report.counts["categories"].get("unchanged") == 24
    assert "nothing changed" in report.summary()

    assert await _dump(session) == before
    assert await all_products(client) == api_before


@pytest.mark.slow
async def test_reviewer_emails_are_never_stored(
    client: Client, session: AsyncSession, datasets_dir: Path
) -> None:
    """Reviewer e-mail addresses from the file appear in no column of any table, nor in any
    API answer; reviewer names are kept."""
    await import_dummyjson(session, datasets_dir)
    source = source_products(datasets_dir)
    emails = {r["reviewerEmail"].lower() for s in source for r in s["reviews"]}
    assert len(emails) > 10
    assert all(e.endswith(EMAIL_DOMAIN) for e in emails)

    dump = await _dump(session)
    assert dump["review"]
    everything = "\n".join("\t".join(row) for rows in dump.values() for row in rows).lower()
    assert EMAIL_DOMAIN not in everything
    assert not any(email in everything for email in emails)
    assert not any(e.split("@")[0] + "@" in everything for e in emails)
    names = {r["reviewerName"] for s in source for r in s["reviews"]}
    assert any(name.lower() in everything for name in names)

    products = await all_products(client)
    served = json.dumps(products).lower()
    for product in products[::10]:
        reviews = await walk(client, f"{API}/products/{product['id']}/reviews")
        assert reviews
        assert all(not any("mail" in key for key in review) for review in reviews)
        served += json.dumps(reviews).lower()
    assert EMAIL_DOMAIN not in served
    assert not any(email in served for email in emails)


def _broken_copy(datasets_dir: Path, tmp_path: Path) -> tuple[Path, list[Json]]:
    """A copy of the file with a negative price at $[3] and no title at $[10]."""
    data = json.loads((datasets_dir / PRODUCTS_FILE).read_text(encoding="utf-8"))
    products: list[Json] = data["products"] if isinstance(data, dict) else data
    products[3]["price"] = -4.99
    del products[10]["title"]
    (tmp_path / PRODUCTS_FILE).write_text(json.dumps(data), encoding="utf-8")
    return tmp_path, products


def test_broken_file_is_refused_naming_each_problem(datasets_dir: Path, tmp_path: Path) -> None:
    """A negative price and a missing title are both reported, each with its JSON path, and
    the parser returns nothing to import."""
    directory, _ = _broken_copy(datasets_dir, tmp_path)
    with pytest.raises(ImportFailed) as caught:
        dummyjson.parse(directory)
    problems = caught.value.problems
    assert len(problems) == 2, [str(p) for p in problems]
    (price,) = [p for p in problems if p.where.endswith(".price")]
    (title,) = [p for p in problems if p.where.endswith(".title")]
    assert price.where.startswith("$[3]")
    assert "zero or more" in price.message or "negative" in price.message
    assert title.where.startswith("$[10]")
    assert all(p.file.endswith(PRODUCTS_FILE) for p in problems)

    products, reviews, skipped = dummyjson.parse(directory, skip_invalid=True)
    assert len(products) == 192
    assert len(skipped) == 2
    assert {p.external_ref for p in products}.isdisjoint({"dummyjson:4", "dummyjson:11"})
    assert len(reviews) == 582 - 6


def test_weights_are_read_as_kilograms_and_stored_in_grams(datasets_dir: Path) -> None:
    """The file's ``weight`` is a bare whole number from 1 to 10 (the shape the importer's
    docstring describes); each variant weighs that many kilograms, in grams."""
    source = source_products(datasets_dir)
    weights = [s["weight"] for s in source]
    assert all(type(w) is int and 1 <= w <= 10 for w in weights)
    products, _, _ = dummyjson.parse(datasets_dir)
    parsed = {p.variants[0].sku: p.variants[0].weight_grams for p in products}
    assert parsed == {s["sku"]: s["weight"] * 1000 for s in source}


def test_a_weight_that_is_not_kilograms_is_refused_and_fractions_round(
    datasets_dir: Path, tmp_path: Path
) -> None:
    """A weight that is text, negative or a boolean is a problem at its JSON path; a
    fraction of a gram rounds half up; no weight (or null) means none."""
    data = json.loads((datasets_dir / PRODUCTS_FILE).read_text(encoding="utf-8"))
    products: list[Json] = data["products"] if isinstance(data, dict) else data
    for index, weight in ((5, "4 kg"), (6, -1), (7, True)):
        products[index]["weight"] = weight
    products[8]["weight"] = 0.0125  # 12.5 g
    products[9]["weight"] = 0.0124  # 12.4 g
    del products[10]["weight"]
    products[11]["weight"] = None
    (tmp_path / PRODUCTS_FILE).write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ImportFailed) as caught:
        dummyjson.parse(tmp_path)
    wheres = sorted(p.where for p in caught.value.problems)
    assert wheres == [f"$[{n}](id {products[n]['id']}).weight" for n in (5, 6, 7)]
    assert all("kilograms" in p.message for p in caught.value.problems)
    parsed, _, _ = dummyjson.parse(tmp_path, skip_invalid=True)
    grams = {p.external_ref: p.variants[0].weight_grams for p in parsed}
    assert [grams[f"dummyjson:{products[n]['id']}"] for n in (8, 9, 10, 11)] == [13, 12, None, None]


def _run_cli(args: list[str], settings: Settings) -> Any:
    runner = CliRunner()
    return runner.invoke(
        main, args, env={"EMPORIUM_DATABASE_URL": settings.database_url}, catch_exceptions=False
    )


@pytest.mark.slow
async def test_cli_refuses_a_broken_file_and_imports_nothing(
    session: AsyncSession, settings: Settings, datasets_dir: Path, tmp_path: Path
) -> None:
    """`emporium import dummyjson` on a broken file exits non-zero, names both problems and
    leaves the database empty; with --skip-invalid it imports the 192 good products."""
    directory, products = _broken_copy(datasets_dir, tmp_path)

    result = await asyncio.to_thread(_run_cli, ["import", "dummyjson", str(directory)], settings)
    assert result.exit_code != 0
    assert "$[3]" in result.output
    assert "$[10]" in result.output
    assert "price" in result.output
    assert "title" in result.output
    assert await _counts(session) == {"categories": 0, "products": 0, "variants": 0, "reviews": 0}

    result = await asyncio.to_thread(
        _run_cli, ["import", "dummyjson", "--skip-invalid", str(directory)], settings
    )
    assert result.exit_code == 0, result.output
    counts = await _counts(session)
    assert counts["products"] == counts["variants"] == 192
    assert counts["reviews"] == 582 - 6
    assert counts["categories"] == 24
    skus = set(await session.scalars(select(Variant.sku)))
    await session.rollback()
    assert products[3]["sku"] not in skus
    assert products[10]["sku"] not in skus
    assert products[4]["sku"] in skus
