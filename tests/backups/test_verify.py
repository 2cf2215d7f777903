"""Verify and restore refuse what they must: a tampered or truncated part fails verify
naming the part, a wrong identity fails cleanly and writes nothing, and a restore over a
database holding data is refused unless ``--force``, which backs that data up first."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from backups.conftest import AgeKeys, make_age_keys
from backups.drill import ORDERS, emporium, rows
from conftest import SignIn
from emporium.backups.archive import new_backup_id
from emporium.backups.destinations import open_destination
from emporium.backups.exceptions import NotEmpty, PartCorrupt, WrongIdentity
from emporium.backups.restore import migrate_forward, restore_backup, verify_backup
from emporium.backups.service import Outcome, create_backup, make_archive, put_all
from emporium.core.clock import utcnow
from emporium.core.config import Settings
from emporium.core.db.base import create_engine, create_sessionmaker
from emporium.core.db.migrate import current_revision, upgrade
from factories import Client, create_category, create_product

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _backup(settings: Settings) -> Outcome:
    engine = create_engine(settings)
    try:
        return await create_backup(settings, create_sessionmaker(engine))
    finally:
        await engine.dispose()


def _part(settings: Settings, outcome: Outcome, part: str, copy: int = 1) -> Path:
    root = Path(settings.backup_destinations[copy].removeprefix("file://"))
    return root / outcome.backup_id / part


@sqlite_only
async def test_verify_passes_a_good_copy_and_names_a_tampered_or_truncated_part(
    backup_settings: Settings, sign_in: SignIn, age_keys: AgeKeys, tmp_path: Path
) -> None:
    await sign_in(roles=["customer"])  # personal data, sealed
    outcome = await _backup(backup_settings)
    good = await asyncio.to_thread(
        emporium,
        backup_settings,
        "backup",
        "verify",
        "--from",
        "1",
        "--identity",
        str(age_keys.identity),
        cwd=tmp_path,
    )
    assert good.returncode == 0, good.stderr
    assert "key file: belongs to this database" in good.stdout
    assert f"backup {outcome.backup_id} verified" in good.stdout

    tampered = _part(backup_settings, outcome, "database.age")
    data = bytearray(tampered.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    bad = await asyncio.to_thread(
        emporium,
        backup_settings,
        "backup",
        "verify",
        "--from",
        "2",
        "--identity",
        str(age_keys.identity),
        cwd=tmp_path,
    )
    assert bad.returncode == 1
    assert "part database.age: SHA-256 differs from the manifest" in bad.stderr

    truncated = _part(backup_settings, outcome, "keys.age", copy=0)
    truncated.write_bytes(truncated.read_bytes()[:100])
    source = open_destination(backup_settings.backup_destinations[0], backup_settings)
    with pytest.raises(PartCorrupt, match=r"part keys\.age: truncated \(100 of"):
        await verify_backup(backup_settings, source, None, age_keys.identity, tmp_path / "v")


@sqlite_only
async def test_a_wrong_identity_fails_cleanly_and_writes_nothing(
    backup_settings: Settings, age_keys: AgeKeys, tmp_path: Path
) -> None:
    await _backup(backup_settings)
    stranger = make_age_keys(tmp_path / "stranger")
    target = tmp_path / "elsewhere"
    other = Settings.model_validate(
        backup_settings.model_dump()
        | {"database_url": f"sqlite+aiosqlite:///{target / 'shop.db'}", "key_file": target / "k"}
    )
    done = await asyncio.to_thread(
        emporium,
        other,
        "backup",
        "restore",
        "--from",
        "2",
        "--identity",
        str(stranger.identity),
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "emporium: error: restore refused: part database.age: the identity file holds none "
        "of the keys this backup was encrypted to"
    )
    assert not (target / "k").exists()
    # The refusal comes before anything is restored: no table, no row (the file itself may
    # exist: checking whether the target holds data opens it, an empty WAL-mode database).
    if (target / "shop.db").exists():
        assert await rows(other.database_url, "SELECT name FROM sqlite_master") == []
    source = open_destination(backup_settings.backup_destinations[1], backup_settings)
    with pytest.raises(WrongIdentity):
        await verify_backup(backup_settings, source, None, stranger.identity, tmp_path / "v")


async def test_restore_refuses_a_database_holding_data_unless_forced(
    backup_settings: Settings, sign_in: SignIn, age_keys: AgeKeys, tmp_path: Path
) -> None:
    await sign_in(roles=["customer"], email="before@example.com")
    first = await _backup(backup_settings)
    await sign_in(roles=["customer"], email="after@example.com")  # made after the backup
    users = "SELECT count(*) FROM user_account"
    assert await rows(backup_settings.database_url, users) == [(2,)]
    source = open_destination(backup_settings.backup_destinations[1], backup_settings)
    engine = create_engine(backup_settings)
    sessions = create_sessionmaker(engine)
    try:
        with pytest.raises(NotEmpty, match="--force"):
            await restore_backup(
                backup_settings,
                sessions,
                source,
                first.backup_id,
                age_keys.identity,
                tmp_path / "r1",
                force=False,
            )
        assert await rows(backup_settings.database_url, users) == [(2,)]
        report = await restore_backup(
            backup_settings,
            sessions,
            source,
            first.backup_id,
            age_keys.identity,
            tmp_path / "r2",
            force=True,
        )
    finally:
        await engine.dispose()
    assert await rows(backup_settings.database_url, users) == [(1,)]
    ids = source.backup_ids()
    assert len(ids) == 2  # the replaced database was backed up first
    assert any(f"backup {ids[-1]} of the replaced database" in line for line in report.lines)
    assert await rows(backup_settings.database_url, ORDERS) == []


async def test_verify_fails_a_backup_whose_ledger_does_not_add_up(
    backup_settings: Settings, client: Client, sign_in: SignIn, age_keys: AgeKeys, tmp_path: Path
) -> None:
    """A stock level changed behind the ledger's back (a hand-edited row) is caught by the
    invariant check on the scratch copy, on SQLite and PostgreSQL (a scratch database is
    created and dropped on the server)."""
    staff = await sign_in(roles=["staff"])
    category = await create_category(client, staff)
    await create_product(client, staff, category["id"])  # 5 received: the ledger says 5
    source = open_destination(backup_settings.backup_destinations[2], backup_settings)
    await _backup(backup_settings)
    good = await verify_backup(backup_settings, source, None, age_keys.identity, tmp_path / "1")
    assert good.ok, good.failed
    assert "orders: 0 totals add up" in good.lines

    engine = create_engine(backup_settings)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE variant SET stock = 4"))
    finally:
        await engine.dispose()
    await _backup(backup_settings)
    bad = await verify_backup(backup_settings, source, None, age_keys.identity, tmp_path / "2")
    assert bad.failed == [
        "ledger: 1 variant(s) whose stock differs from the sum of their movements"
    ]


@pytest.mark.slow
@sqlite_only
async def test_a_backup_older_than_the_code_is_migrated_forward_on_restore(
    backup_settings: Settings, age_keys: AgeKeys, tmp_path: Path
) -> None:
    old_path = tmp_path / "old.db"
    old = Settings.model_validate(
        backup_settings.model_dump() | {"database_url": f"sqlite+aiosqlite:///{old_path}"}
    )
    await asyncio.to_thread(upgrade, old, "0015")  # the release before backups
    backup_id = new_backup_id(utcnow())
    folder, _, _ = await make_archive(old, backup_id, utcnow())
    url = backup_settings.backup_destinations[0]
    await asyncio.to_thread(put_all, old, folder, backup_id, url)

    target = tmp_path / "new"
    new = Settings.model_validate(
        backup_settings.model_dump()
        | {"database_url": f"sqlite+aiosqlite:///{target / 'shop.db'}", "key_file": target / "k"}
    )
    target.mkdir()
    engine = create_engine(new)
    try:
        report = await restore_backup(
            new,
            create_sessionmaker(engine),
            open_destination(url, new),
            None,
            age_keys.identity,
            tmp_path / "r",
            force=False,
        )
    finally:
        await engine.dispose()
    await migrate_forward(new, report)
    head = await asyncio.to_thread(current_revision, new)
    assert f"schema migrated forward: 0015 -> {head}" in report.lines
    assert head != "0015"
