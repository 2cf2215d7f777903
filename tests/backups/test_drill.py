"""The restore drill (issue 16), on SQLite and PostgreSQL: sell, back up to two folders and
an S3 bucket, destroy the database and the key file, restore from the second copy onto
another path with the operator's identity file, and find every order, the customer's
sign-in with TOTP, their address and every ledger line back."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import make_url

from backups.conftest import AgeKeys, s3_client
from backups.drill import (
    ADDRESS,
    API,
    LEDGER,
    ORDERS,
    STOCK,
    customer_with_totp,
    emporium,
    rows,
    sign_in_with_totp,
)
from conftest import POSTGRES_URL, SignIn
from emporium.app import create_app
from emporium.backups.service import create_backup
from emporium.backups.snapshot import pg_execute
from emporium.core.config import Settings
from emporium.core.db.base import SQLITE_COMPANIONS, create_engine, create_sessionmaker
from emporium.core.db.migrate import upgrade
from factories import Client
from first_sale import first_sale
from runjobs import drain

pytestmark = pytest.mark.slow


async def _destroy(settings: Settings) -> None:
    """The database and the key file are gone (on PostgreSQL: every row deleted)."""
    path = settings.sqlite_path()
    if path is not None:
        for name in (path, *(Path(f"{path}{s}") for s in SQLITE_COMPANIONS)):
            name.unlink(missing_ok=True)
    else:
        await pg_execute(
            settings.database_url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public"
        )
    settings.key_file.unlink()


async def _elsewhere(settings: Settings, tmp_path: Path) -> Settings:
    """Settings for another place: another SQLite file or another PostgreSQL database,
    and another key file path."""
    place = tmp_path / "restored"
    place.mkdir()
    if settings.is_sqlite:
        url = f"sqlite+aiosqlite:///{place / 'shop.db'}"
    else:
        name = f"emporium_drill_{uuid.uuid4().hex[:10]}"
        await pg_execute(settings.database_url, f"CREATE DATABASE {name}")
        url = make_url(settings.database_url).set(database=name).render_as_string(False)
    return Settings.model_validate(
        settings.model_dump() | {"database_url": url, "key_file": place / "keys.json"}
    )


async def test_the_restore_drill(
    client: Client,
    sign_in: SignIn,
    backup_settings: Settings,
    age_keys: AgeKeys,
    bucket: str,
    tmp_path: Path,
) -> None:
    staff = await sign_in(roles=["staff"])
    await first_sale(client, staff, settle=lambda: drain(client), run="drill")
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    secret = await customer_with_totp(client, email)
    before = {q: await rows(backup_settings.database_url, q) for q in (ORDERS, LEDGER, STOCK)}
    assert before[ORDERS]
    assert before[LEDGER]

    engine = create_engine(backup_settings)
    try:
        outcome = await create_backup(backup_settings, create_sessionmaker(engine))
    finally:
        await engine.dispose()
    assert outcome.failures == {}
    assert outcome.copied == backup_settings.backup_destinations
    objects = s3_client(backup_settings.backup_s3_endpoint_url or "").list_objects_v2(Bucket=bucket)
    assert {o["Key"].rsplit("/", 1)[1] for o in objects["Contents"]} == {
        "manifest.json",
        "database.age",
        "keys.age",
    }

    verified = await asyncio.to_thread(
        emporium,
        backup_settings,
        "backup",
        "verify",
        "--from",
        "3",
        "--identity",
        str(age_keys.identity),
        cwd=tmp_path,
    )  # from the bucket: checksums, decryption, invariants on orders and ledger
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"orders: {len(before[ORDERS])} totals add up" in verified.stdout

    await _destroy(backup_settings)
    try:
        await _restore_and_check(backup_settings, age_keys, tmp_path, before, email, secret, staff)
    finally:
        if not backup_settings.is_sqlite:  # the run's shared database, migrated again
            await asyncio.to_thread(upgrade, backup_settings)


async def _restore_and_check(
    backup_settings: Settings,
    age_keys: AgeKeys,
    tmp_path: Path,
    before: dict[str, list[tuple[object, ...]]],
    email: str,
    secret: str,
    staff: dict[str, str],
) -> None:
    other = await _elsewhere(backup_settings, tmp_path)
    done = await asyncio.to_thread(
        emporium,
        other,
        "backup",
        "restore",
        "--from",
        "2",
        "--identity",
        str(age_keys.identity),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert f"from {backup_settings.backup_destinations[1]}" in done.stdout
    assert "queued job(s) will run" in done.stdout
    assert "EMPORIUM_JOBS_EMBEDDED=false" in done.stdout
    assert other.key_file.stat().st_mode & 0o777 == 0o600

    after = {q: await rows(other.database_url, q) for q in (ORDERS, LEDGER, STOCK)}
    assert after == before
    # The audit trail came back whole, and the restore is its newest event (by the CLI).
    trail = await rows(
        other.database_url, "SELECT action, actor_type FROM audit_event ORDER BY seq"
    )
    assert trail[-1] == ("backup.restored", "cli")
    chain = await asyncio.to_thread(emporium, other, "audit", "verify", cwd=tmp_path)
    assert chain.returncode == 0, chain.stdout + chain.stderr
    assert "audit chain intact" in chain.stdout
    async with AsyncTestClient(app=create_app(other)) as restored:
        customer = await sign_in_with_totp(restored, email, secret)
        addresses = (await restored.get(f"{API}/users/me/addresses", headers=customer)).json()
        assert [{k: a[k] for k in ADDRESS} for a in addresses] == [ADDRESS]
        for order_id, *_ in before[ORDERS]:
            # Staff's session and token survive too: same keys, same session rows.
            order = await restored.get(f"{API}/orders/{order_id}", headers=staff)
            assert order.status_code == 200, order.text
            assert order.json()["shipping_address"]["name"]  # sealed, decrypted
    if POSTGRES_URL and not other.is_sqlite:
        name = make_url(other.database_url).database
        await pg_execute(POSTGRES_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
