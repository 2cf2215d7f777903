"""Seed a fresh PostgreSQL database for the catalog read benchmark.

Steps: drop and create the database, ``emporium db upgrade``, ``emporium import dummyjson``
(the real 194-product catalog, skipped with a message when the data set is absent), then a
generated catalog of ``--count`` products (100,000 by default) bulk-loaded with asyncpg
``COPY`` into ``category``, ``product``, ``product_tag`` and ``variant``, then ``ANALYZE``.

The generated rows come from ``emporium.importers.demo.iter_products``, and their column
values from the importer's own field builders (``emporium.catalog.upsert._product_fields``
and ``_variant_fields``: sanitised description, search columns, normalised tags,
``price_min`` = cheapest variant), so they are the rows ``emporium import`` would store; only
the write path is the bulk one, because the row-by-row importer would take many minutes for
100,000 products. ``product.search_vector`` is a generated column, left to PostgreSQL;
``created_at`` is 7 minutes apart per product, so keyset pages deep in the catalog are real.

Run on its own::

    .venv/bin/python bench/seed.py [--db emporium_bench] [--count 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from sqlalchemy import JSON, FromClause, Table

from emporium.catalog.content import make_slug
from emporium.catalog.models import Product, Variant
from emporium.catalog.upsert import _product_fields, _variant_fields
from emporium.importers.demo import TREE, iter_products

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432"
DEFAULT_DB = "emporium_bench"
DEFAULT_DATASETS = REPO.parent / "shared" / "datasets"
CURRENCY = "USD"
Rows = tuple[list[str], list[tuple[Any, ...]]]

CATEGORY_COLUMNS = ("id", "name", "slug", "parent_id", "description", "created_at", "updated_at")


def dsn(pg: str, database: str) -> str:
    """A plain libpq/asyncpg DSN for ``database`` on the server ``pg``."""
    return f"{pg.rstrip('/')}/{database}"


def sqlalchemy_url(pg: str, database: str) -> str:
    """The ``EMPORIUM_DATABASE_URL`` for ``database``."""
    return "postgresql+asyncpg://" + dsn(pg, database).split("://", 1)[1]


def emporium_command() -> list[str]:
    """The ``emporium`` console script of the running virtualenv."""
    script = Path(sys.executable).parent / "emporium"
    if script.exists():
        return [str(script)]
    found = shutil.which("emporium")
    if found is None:
        raise SystemExit("the emporium command is not installed (pip install -e . in the venv)")
    return [found]


def key_file(database: str) -> Path:
    """The bench database's key file (versions with accounts need one; it stays with the
    database, so ``--skip-seed`` reuses it). ``bench/results/`` is git-ignored."""
    return REPO / "bench" / "results" / f"{database}-keys.json"


def emporium_env(pg: str, database: str) -> dict[str, str]:
    """Environment for ``emporium`` subprocesses on the bench database."""
    env = dict(os.environ)
    env.update(
        EMPORIUM_DATABASE_URL=sqlalchemy_url(pg, database),
        EMPORIUM_LOG_LEVEL="WARNING",
        # wrk sends everything from one address: the per-client limit would measure 429s.
        EMPORIUM_RATE_LIMIT_GENERAL="",
        EMPORIUM_KEY_FILE=str(key_file(database)),
    )
    return env


def ensure_key_file(pg: str, database: str, *, fresh: bool) -> None:
    """Create the key file with ``emporium keys init`` when this version has the command."""
    path = key_file(database)
    if fresh:
        path.unlink(missing_ok=True)
    if path.exists():
        return
    cli = emporium_command()
    env = emporium_env(pg, database)
    probe = subprocess.run([*cli, "keys", "--help"], env=env, capture_output=True, check=False)
    if probe.returncode == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([*cli, "keys", "init"], env=env, check=True, cwd=REPO)


async def recreate_database(pg: str, database: str) -> None:
    """Drop ``database`` (closing its sessions) and create it empty."""
    conn = await asyncpg.connect(dsn(pg, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()


async def drop_database(pg: str, database: str) -> None:
    """Drop ``database`` if it exists."""
    conn = await asyncpg.connect(dsn(pg, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await conn.close()


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _category_rows(
    existing: dict[str, uuid.UUID], now: datetime
) -> tuple[list[tuple[Any, ...]], dict[tuple[str, ...], uuid.UUID]]:
    """Rows for the generated category tree (slugs as the importer makes them)."""
    rows: list[tuple[Any, ...]] = []
    ids: dict[tuple[str, ...], uuid.UUID] = {}
    for root, leaves in TREE.items():
        paths: list[tuple[str, ...]] = [(root,)] + [(root, leaf) for leaf in leaves]
        for path in paths:
            slug = make_slug("-".join(path))
            parent = ids[path[:-1]] if len(path) > 1 else None
            if slug in existing:
                ids[path] = existing[slug]
                continue
            ids[path] = uuid.uuid4()
            rows.append((ids[path], path[-1], slug, parent, "", now, now))
    return rows, ids


def _json_columns(table: FromClause) -> set[str]:
    return {c.name for c in table.columns if isinstance(c.type, JSON)}


def generate_rows(
    count: int,
    categories: dict[tuple[str, ...], uuid.UUID],
    taken_slugs: set[str],
    *,
    prefix: str = "bench",
) -> tuple[Rows, Rows, Rows]:
    """(columns, rows) for product, product_tag and variant: ``count`` generated products.

    Field values come from the importer's own ``_product_fields`` / ``_variant_fields``
    (sanitised description, accent-folded search columns, normalised tags, ``price_min``),
    so the bulk rows are the rows ``emporium import`` would write.
    """
    product_json = _json_columns(Product.__table__)
    variant_json = _json_columns(Variant.__table__)
    product_columns: list[str] = []
    variant_columns: list[str] = []
    products: list[tuple[Any, ...]] = []
    tags_rows: list[tuple[Any, ...]] = []
    variants: list[tuple[Any, ...]] = []
    for item in iter_products(count, prefix=prefix):
        pid = uuid.uuid4()
        slug = make_slug(item.slug or item.title)
        if slug in taken_slugs:
            slug = f"{slug}-{prefix}"
        taken_slugs.add(slug)
        created = item.created_at or datetime.now(UTC)
        fields = _product_fields(item, categories[tuple(item.category_path)])
        row = {
            "id": pid,
            "slug": slug,
            "external_ref": item.external_ref,
            "currency": CURRENCY,
            "rating_average": 0.0,
            "review_count": 0,
            "created_at": created,
            "updated_at": created,
            **fields,
        }
        if not product_columns:
            product_columns = list(row)
        products.append(
            tuple(_json(row[c]) if c in product_json else row[c] for c in product_columns)
        )
        tags_rows.extend((pid, t) for t in fields["tags"])
        for n, v in enumerate(item.variants):
            vrow = {
                "id": uuid.uuid4(),
                "product_id": pid,
                "sku": v.sku,
                "currency": CURRENCY,
                "created_at": created,
                "updated_at": created,
                **_variant_fields(v, n),
            }
            if not variant_columns:
                variant_columns = list(vrow)
            variants.append(
                tuple(_json(vrow[c]) if c in variant_json else vrow[c] for c in variant_columns)
            )
    return (
        (product_columns, products),
        (["product_id", "tag"], tags_rows),
        (variant_columns, variants),
    )


async def _check_columns(conn: asyncpg.Connection, table: str, columns: Sequence[str]) -> None:
    """Fail clearly when the schema wants a column the bench does not write."""
    required = {
        r["column_name"]
        for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = $1 "
            "AND is_nullable = 'NO' AND column_default IS NULL AND is_generated = 'NEVER'",
            table,
        )
    }
    missing = required - set(columns)
    if missing:
        raise SystemExit(f"bench/seed.py does not fill {table}.{', '.join(sorted(missing))}")


async def _copy(
    conn: asyncpg.Connection, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
) -> None:
    await conn.copy_records_to_table(table, records=rows, columns=list(columns))


async def bulk_seed(pg: str, database: str, count: int, *, prefix: str = "bench") -> dict[str, int]:
    """COPY ``count`` generated products into ``database``; return row counts written."""
    conn = await asyncpg.connect(dsn(pg, database))
    try:
        existing = {r["slug"]: r["id"] for r in await conn.fetch("SELECT slug, id FROM category")}
        taken = {r["slug"] for r in await conn.fetch("SELECT slug FROM product")}
        refs = await conn.fetchval(
            "SELECT count(*) FROM product WHERE external_ref LIKE $1", prefix + ":%"
        )
        if refs:
            raise SystemExit(f"{refs} products with external_ref {prefix}:* exist already")
        category_rows, category_ids = _category_rows(existing, datetime.now(UTC))
        started = time.perf_counter()
        product, tag, variant = generate_rows(count, category_ids, taken, prefix=prefix)
        products, tag_rows, variant_rows = product[1], tag[1], variant[1]
        print(
            f"  generated {len(products):,} products, {len(variant_rows):,} variants "
            f"in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        for table, (columns, _) in (("product", product), ("variant", variant)):
            await _check_columns(conn, table, columns)
        started = time.perf_counter()
        async with conn.transaction():
            await _copy(conn, "category", CATEGORY_COLUMNS, category_rows)
            for table, (columns, rows) in (
                ("product", product),
                ("product_tag", tag),
                ("variant", variant),
            ):
                await _copy(conn, table, columns, rows)
        print(f"  COPY done in {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        print(f"  VACUUM ANALYZE in {time.perf_counter() - started:.1f} s", flush=True)
        return {
            "categories": len(category_rows),
            "products": len(products),
            "product_tags": len(tag_rows),
            "variants": len(variant_rows),
        }
    finally:
        await conn.close()


SQLITE_TABLES = ("category", "product", "product_tag", "variant")


def sqlite_path(database: str) -> Path:
    """The SQLite copy of the bench catalog (``bench/results/`` is git-ignored)."""
    return REPO / "bench" / "results" / f"{database}.sqlite3"


async def _pg_rows(pg: str, database: str, table: Table) -> list[dict[str, Any]]:
    json_columns = _json_columns(table)
    names = [c.name for c in table.columns]
    conn = await asyncpg.connect(dsn(pg, database))
    try:
        select = f"SELECT {', '.join(names)} FROM {table.name}"  # noqa: S608 (model names)
        rows = await conn.fetch(select)
    finally:
        await conn.close()
    return [
        {
            n: msgspec.json.decode(r[n]) if n in json_columns and r[n] is not None else r[n]
            for n in names
        }
        for r in rows
    ]


def seed_sqlite(pg: str, database: str) -> Path:
    """Copy the bench catalog (categories, products, tags, variants) from PostgreSQL into a
    fresh, migrated SQLite file, the embedded default: the FTS5 index is filled by its
    triggers as the rows go in. Returns the file's path."""
    from sqlalchemy import create_engine, insert

    from emporium.core.db.base import Base
    from emporium.models import import_all_models

    import_all_models()
    path = sqlite_path(database)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    env = emporium_env(pg, database)
    env["EMPORIUM_DATABASE_URL"] = f"sqlite+aiosqlite:///{path}"
    started = time.perf_counter()
    subprocess.run([*emporium_command(), "db", "upgrade"], env=env, check=True, cwd=REPO)
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        for name in SQLITE_TABLES:
            table = Base.metadata.tables[name]
            rows = asyncio.run(_pg_rows(pg, database, table))
            for start in range(0, len(rows), 5000):
                conn.execute(insert(table), rows[start : start + 5000])
    engine.dispose()
    print(f"  SQLite copy {path.name} in {time.perf_counter() - started:.1f} s", flush=True)
    return path


def prepare(
    pg: str = DEFAULT_PG,
    database: str = DEFAULT_DB,
    *,
    count: int = 100_000,
    datasets: Path = DEFAULT_DATASETS,
) -> dict[str, Any]:
    """Create, migrate and fill the bench database; return what was done, with timings."""
    total = time.perf_counter()
    env = emporium_env(pg, database)
    cli = emporium_command()
    print(f"seeding database {database!r}", flush=True)
    asyncio.run(recreate_database(pg, database))
    ensure_key_file(pg, database, fresh=True)
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, cwd=REPO)
    info: dict[str, Any] = {"database": database}
    if (datasets / "dummyjson-products.json").exists():
        started = time.perf_counter()
        subprocess.run([*cli, "import", "dummyjson", str(datasets)], env=env, check=True, cwd=REPO)
        info["dummyjson_seconds"] = round(time.perf_counter() - started, 1)
    else:
        print(f"  no dummyjson data set in {datasets}: skipping the real catalog", flush=True)
        info["dummyjson_seconds"] = None
    started = time.perf_counter()
    info["generated"] = asyncio.run(bulk_seed(pg, database, count))
    info["bulk_seconds"] = round(time.perf_counter() - started, 1)
    info["seed_seconds"] = round(time.perf_counter() - total, 1)
    print(f"seeded in {info['seed_seconds']} s", flush=True)
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", default=DEFAULT_PG, help="server DSN without database")
    parser.add_argument("--db", default=DEFAULT_DB, help="database to (re)create")
    parser.add_argument("--count", type=int, default=100_000, help="generated products")
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    args = parser.parse_args()
    prepare(args.pg, args.db, count=args.count, datasets=args.datasets)


if __name__ == "__main__":
    main()
