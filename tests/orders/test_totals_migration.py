"""Migration 0009: v1 orders are carried over (zero discount, shipping and tax, their
``line_total`` kept as ``subtotal``), the tables then match the models, and the database
itself refuses rows that break the contract's money equations."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from emporium.core.config import Settings
from emporium.core.db.base import Base
from emporium.core.db.migrate import alembic_config, upgrade

POSTGRES_URL = os.environ.get("EMPORIUM_TEST_POSTGRES_URL")


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(statement))
    await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables yet, of each supported kind."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("EMPORIUM_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped")
    name = f"emporium_migration_{os.getpid()}"
    asyncio.run(_admin(POSTGRES_URL, f"DROP DATABASE IF EXISTS {name}"))
    asyncio.run(_admin(POSTGRES_URL, f"CREATE DATABASE {name}"))
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_admin(POSTGRES_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def _run(url: str, statements: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Run ``statements`` in one transaction; the rows of each SELECT (None for others)."""
    engine = create_async_engine(url)
    answers: list[Any] = []
    try:
        async with engine.begin() as conn:
            for sql, params in statements:
                result = await conn.execute(text(sql), params)
                answers.append(result.all() if sql.startswith("SELECT") else None)
    finally:
        await engine.dispose()
    return answers


def _v1_order(order_id: str) -> list[tuple[str, dict[str, Any]]]:
    """A v1 order of 3 x 12.50 and 1 x 4.99 (``total = subtotal = 4249``)."""
    order = (
        "INSERT INTO customer_order (id, number, status, subtotal, total, currency, "
        "shipping_address_enc, created_at, updated_at) VALUES (:id, :number, 'paid', 4249, 4249, "
        "'USD', 'sealed', CURRENT_TIMESTAMP, "
        "CURRENT_TIMESTAMP)"
    )
    line = (
        "INSERT INTO order_line (id, order_id, position, sku, title, quantity, unit_price, "
        "line_total) VALUES (:id, :order_id, :position, :sku, 'Thing', :quantity, :price, :total)"
    )
    return [
        (order, {"id": order_id, "number": order_id[:12]}),
        (
            line,
            {
                "id": str(uuid.uuid4()),
                "order_id": order_id,
                "position": 0,
                "sku": f"A-{order_id}",
                "quantity": 3,
                "price": 1250,
                "total": 3750,
            },
        ),
        (
            line,
            {
                "id": str(uuid.uuid4()),
                "order_id": order_id,
                "position": 1,
                "sku": f"B-{order_id}",
                "quantity": 1,
                "price": 499,
                "total": 499,
            },
        ),
    ]


def _uuid(value: str, url: str) -> str | uuid.UUID:
    # SQLAlchemy's Uuid type stores 32 hex digits on SQLite and a native uuid on PostgreSQL.
    return uuid.UUID(value).hex if url.startswith("sqlite") else uuid.UUID(value)


def test_v1_orders_are_carried_over_with_zero_tax_shipping_and_discount(empty_url: str) -> None:
    settings = Settings(database_url=empty_url)
    upgrade(settings, "0005")
    order_id = str(uuid.uuid4())
    asyncio.run(
        _run(
            empty_url,
            [
                (sql, p | {k: _uuid(v, empty_url) for k, v in p.items() if k in ("id", "order_id")})
                for sql, p in _v1_order(order_id)
            ],
        )
    )
    upgrade(settings)
    (order,), lines = asyncio.run(
        _run(
            empty_url,
            [
                (
                    "SELECT subtotal, discount_total, shipping_total, shipping_tax_total, "
                    "tax_total, total, prices_include_tax FROM customer_order",
                    {},
                ),
                (
                    "SELECT subtotal, discount_total, tax_rate, tax_total, total, "
                    "prices_include_tax FROM order_line ORDER BY position",
                    {},
                ),
            ],
        )
    )
    assert tuple(order) == (4249, 0, 0, 0, 0, 4249, False)
    assert [tuple(r) for r in lines] == [(3750, 0, 0, 0, 3750, False), (499, 0, 0, 0, 499, False)]
    [[paid]] = asyncio.run(
        _run(
            empty_url,
            [
                (
                    "SELECT payment_status, paid_total, refunded_total, fulfillment_status, "
                    "email_enc FROM customer_order",
                    {},
                ),
            ],
        )
    )
    assert tuple(paid) == ("paid", 4249, 0, "unfulfilled", None)  # a v1 'paid' order was paid
    command.downgrade(alembic_config(settings), "0005")
    (back,) = asyncio.run(_run(empty_url, [("SELECT line_total FROM order_line", {})]))
    assert sorted(r[0] for r in back) == [499, 3750]


def _v1_cart(url: str) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any]]:
    """A customer with a v1 cart line (``cart_item.customer_id``), and the ids."""
    ids = {
        k: _uuid(str(uuid.uuid4()), url) for k in ("user", "category", "product", "variant", "item")
    }
    return [
        (
            "INSERT INTO user_account (id, email_index, email_enc, roles, is_active, "
            "email_verified, mfa_enabled, created_at, updated_at) VALUES "
            "(:user, 'ix', 'enc', '[]', TRUE, TRUE, FALSE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            ids,
        ),
        (
            "INSERT INTO category (id, name, slug, description, created_at, updated_at) VALUES "
            "(:category, 'C', 'c', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            ids,
        ),
        (
            "INSERT INTO product (id, slug, title, description, category_id, tags, search_title, "
            "keywords, search_text, published, images, rating_average, review_count, price_min, "
            "currency, created_at, updated_at) VALUES (:product, 'p', 'P', '', :category, '[]', "
            "'p', '', '', TRUE, '[]', 0, 0, 100, 'EUR', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            ids,
        ),
        (
            "INSERT INTO variant (id, product_id, sku, title, options, price, currency, stock, "
            "position, created_at, updated_at) VALUES (:variant, :product, 'S', 'Default', '{}', "
            "100, 'EUR', 5, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            ids,
        ),
        (
            "INSERT INTO cart_item (id, customer_id, variant_id, quantity, created_at, updated_at) "
            "VALUES (:item, :user, :variant, 3, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            ids,
        ),
    ], ids


def test_v1_cart_lines_move_into_their_customers_cart(empty_url: str) -> None:
    settings = Settings(database_url=empty_url)
    upgrade(settings, "0005")
    statements, ids = _v1_cart(empty_url)
    asyncio.run(_run(empty_url, statements))
    upgrade(settings)
    carts, lines = asyncio.run(
        _run(
            empty_url,
            [
                ("SELECT id, customer_id, currency, token_hash FROM cart", {}),
                ("SELECT cart_id, variant_id, quantity FROM cart_item", {}),
            ],
        )
    )
    [(cart_id, customer_id, currency, token_hash)] = carts
    assert (str(customer_id).replace("-", ""), currency, token_hash) == (
        str(ids["user"]).replace("-", ""),
        "EUR",
        None,
    )
    assert [(str(c), q) for c, _, q in lines] == [(str(cart_id), 3)]


def _drift(conn: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


def test_the_migrated_tables_match_the_models(empty_url: str) -> None:
    upgrade(Settings(database_url=empty_url))

    async def diff() -> list[Any]:
        engine = create_async_engine(empty_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(_drift)
        finally:
            await engine.dispose()

    # Full-text search lives in each engine's own objects (migration 0001): SQLite's FTS5
    # tables, PostgreSQL's tsvector column and its index; the models do not declare them.
    engine_own = ("product_fts", "search_vector")
    drift = [d for d in asyncio.run(diff()) if not any(n in repr(d) for n in engine_own)]
    assert drift == []
