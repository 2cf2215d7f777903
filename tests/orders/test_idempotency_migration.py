"""Migration 0006: stored idempotent answers that held a shipping address in clear
become references to their orders, and the clear text is gone from the database file (and
its WAL) or a pg_dump afterwards."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from conftest import POSTGRES_URL
from emporium.core.clock import utcnow
from emporium.core.config import Settings
from emporium.core.db.migrate import upgrade

CANARY_STREET = "Canary Wharf Lane 4417"
CANARY_PHONE = "+44 20 7946 0958"
_ORDERS = sa.table(
    "customer_order",
    *(sa.column(name, sa.Uuid) for name in ("id", "customer_id")),
    *(
        sa.column(name, sa.String)
        for name in ("number", "status", "currency", "shipping_address_enc", "external_ref")
    ),
    *(sa.column(name, sa.BigInteger) for name in ("subtotal", "total")),
    *(sa.column(name, sa.DateTime(timezone=True)) for name in ("created_at", "updated_at")),
)
_KEYS_0005 = sa.table(
    "idempotency_key",
    *(sa.column(name, sa.String) for name in ("scope", "key", "fingerprint", "claim")),
    sa.column("status_code", sa.Integer),
    sa.column("body", sa.LargeBinary),
    *(
        sa.column(name, sa.DateTime(timezone=True))
        for name in ("locked_until", "created_at", "expires_at")
    ),
)


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind, for migrating step by step."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("EMPORIUM_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped")
    name = f"emporium_idem_migration_{uuid.uuid4().hex[:8]}"
    admin = make_url(POSTGRES_URL)
    _admin(str(admin.render_as_string(hide_password=False)), f"CREATE DATABASE {name}")
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        _admin(admin.render_as_string(hide_password=False), f"DROP DATABASE {name} WITH (FORCE)")


def _admin(url: str, statement: str) -> None:
    async def run() -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(sa.text(statement))
        await engine.dispose()

    asyncio.run(run())


def _body(order_id: uuid.UUID) -> bytes:
    """What 0005 stored: the whole order as POST /orders answered it."""
    address = {"name": "Cora Canary", "line1": CANARY_STREET, "phone": CANARY_PHONE}
    return json.dumps({"id": str(order_id), "shipping_address": address}).encode()


async def _store_old_answers(url: str) -> uuid.UUID:
    """One order with its stored answer, and one answer whose order is missing."""
    engine = create_async_engine(url)
    order_id, now = uuid.uuid4(), utcnow()
    key = {
        "fingerprint": "f" * 64,
        "claim": None,
        "locked_until": None,
        "status_code": 201,
        "created_at": now,
        "expires_at": now + timedelta(hours=24),
    }
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(_ORDERS).values(
                id=order_id,
                customer_id=None,
                number="TEST-0006-ID",
                status="pending",
                currency="USD",
                shipping_address_enc="v1.sealed",
                external_ref=None,
                subtotal=100,
                total=100,
                created_at=now,
                updated_at=now,
            )
        )
        await conn.execute(
            sa.insert(_KEYS_0005),
            [
                key | {"scope": "orders:a", "key": "kept", "body": _body(order_id)},
                key | {"scope": "orders:a", "key": "orphan", "body": _body(uuid.uuid4())},
            ],
        )
    await engine.dispose()
    return order_id


async def _keys(url: str) -> list[tuple[str, uuid.UUID | None]]:
    table = sa.table("idempotency_key", sa.column("key", sa.String), sa.column("order_id", sa.Uuid))
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(table.c.key, table.c.order_id))).all()
    await engine.dispose()
    return [(r.key, r.order_id) for r in rows]


def _contains(stored: bytes, canary: str) -> bool:
    """In clear, or as pg_dump writes a ``bytea`` value (hex)."""
    raw = canary.encode()
    return raw in stored or raw.hex().encode() in stored


def _stored_bytes(url: str) -> bytes:
    settings = Settings(database_url=url)
    path = settings.sqlite_path()
    if path is not None:
        return b"".join(f.read_bytes() for f in sorted(path.parent.glob(path.name + "*")))
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        pytest.skip("pg_dump is not on PATH: the dump of the PostgreSQL database is not checked")
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    done = subprocess.run([pg_dump, "--no-owner", dsn], capture_output=True, check=True)
    return done.stdout


@pytest.mark.slow
def test_stored_answers_become_order_references_and_the_clear_text_goes(
    old_database: str,
) -> None:
    """At 0005 two stored answers hold a street and a phone in clear; after the upgrade the
    one whose order exists points at it, the other is dropped, and neither the street nor
    the phone is anywhere in the file, its WAL or the dump."""
    settings = Settings(database_url=old_database)
    upgrade(settings, "0005")
    order_id = asyncio.run(_store_old_answers(old_database))
    assert _contains(_stored_bytes(old_database), CANARY_STREET), "the canary was not stored"
    upgrade(settings)
    assert asyncio.run(_keys(old_database)) == [("kept", order_id)]
    stored = _stored_bytes(old_database)
    assert b"TEST-0006-ID" in stored, "not the database the migration ran on"
    for canary in (CANARY_STREET, CANARY_PHONE, "Cora Canary"):
        assert not _contains(stored, canary), canary
