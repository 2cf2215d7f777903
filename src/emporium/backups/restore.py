"""Fetch a backup from one destination, check it, and verify or restore it.

Both start the same way: fetch the manifest and the parts, compare each part's size and
SHA-256 with the manifest (a tampered or truncated part is named before anything is
decrypted), decrypt with the operator's identity file and compare the plain checksums.
``verify`` then restores into a scratch database (a temporary SQLite file, or a temporary
PostgreSQL database created and dropped on the configured server) and checks the
invariants; ``restore`` writes into the configured database and key file.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from emporium.audit.chain import record_audit
from emporium.backups import archive
from emporium.backups.checks import check_invariants, key_file_matches
from emporium.backups.destinations import Destination
from emporium.backups.exceptions import BackupError, NotEmpty
from emporium.backups.service import SessionMaker, create_backup
from emporium.backups.snapshot import pg_execute, pg_restore_into, sqlite_copy, sqlite_counts
from emporium.core.config import Settings
from emporium.core.crypto.keys import parse_keyring, write_key_file

IGNORED_WHEN_EMPTY = frozenset({"alembic_version", "key_set"})


@dataclass
class Opened:
    """A fetched, checked and decrypted backup in a temporary folder."""

    manifest: dict[str, Any]
    database: Path
    key_file: bytes


@dataclass
class Report:
    """What verify or restore did, line by line; ``ok`` is False when a check failed."""

    backup_id: str
    lines: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No check failed."""
        return not self.failed


def _latest(source: Destination) -> str:
    ids = source.backup_ids()
    if not ids:
        raise BackupError(f"{source.name}: holds no complete backup")
    return ids[-1]


def fetch_and_open(
    source: Destination, backup_id: str | None, identity: Path, into: Path
) -> Opened:
    """Fetch a backup (default the newest) into ``into``, check and decrypt it (blocking).
    Raises PartCorrupt naming the part, WrongIdentity, DestinationError or BackupError."""
    identities = archive.identities_in(identity)
    into.mkdir(parents=True, exist_ok=True)
    backup_id = backup_id or _latest(source)
    source.get(backup_id, archive.MANIFEST, into / archive.MANIFEST)
    manifest = archive.read_manifest(into / archive.MANIFEST)
    for part in archive.PARTS:
        source.get(backup_id, part, into / part)
        archive.check_part(into, part, manifest)
    plain = {}
    for part in archive.PARTS:
        plain[part] = into / f"{part}.plain"
        archive.decrypt(into / part, plain[part], identities, part)
        archive.check_plain(plain[part], part, manifest)
    return Opened(manifest, plain[archive.DATABASE], plain[archive.KEYS].read_bytes())


@contextlib.asynccontextmanager
async def scratch_database(
    settings: Settings, opened: Opened, folder: Path
) -> AsyncIterator[AsyncEngine]:
    """An engine on a scratch copy of the backup: the decrypted SQLite file, or a temporary
    PostgreSQL database on the configured server, dropped on exit."""
    if opened.manifest["engine"] == "sqlite":
        path = folder / "scratch.sqlite"
        shutil.copyfile(opened.database, path)
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
        try:
            yield engine
        finally:
            await engine.dispose()
        return
    if settings.is_sqlite:
        raise BackupError(
            "a PostgreSQL backup is checked on a PostgreSQL server: set EMPORIUM_DATABASE_URL"
        )
    name = f"emporium_verify_{secrets.token_hex(6)}"
    url = make_url(settings.database_url).set(database=name).render_as_string(hide_password=False)
    await pg_execute(settings.database_url, f"CREATE DATABASE {name}")
    try:
        await pg_restore_into(settings, url, opened.database)
        engine = create_async_engine(url)
        try:
            yield engine
        finally:
            await engine.dispose()
    finally:
        await pg_execute(settings.database_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def verify_backup(
    settings: Settings, source: Destination, backup_id: str | None, identity: Path, folder: Path
) -> Report:
    """Fetch, check, decrypt, restore into a scratch database and check the invariants and
    the key file against it. Raises BackupError subclasses for a backup that cannot be
    opened; a restored backup whose checks fail gives a report with ``failed`` lines."""
    opened = await asyncio.to_thread(fetch_and_open, source, backup_id, identity, folder)
    manifest = opened.manifest
    report = Report(str(manifest["id"]))
    sizes = ", ".join(f"{name} {part['size']} bytes" for name, part in manifest["parts"].items())
    report.lines += [
        f"backup {manifest['id']} from {source.name}",
        f"made {manifest['created_at']}, {manifest['engine']}, schema {manifest['schema_version']}",
        f"parts: {sizes}",
        "checksums: every part matches the manifest; decrypted with the identity file",
    ]
    async with scratch_database(settings, opened, folder) as engine, engine.connect() as conn:
        found = await check_invariants(conn, dict(manifest["row_counts"]))
        recorded = await conn.scalar(text("SELECT fingerprint FROM key_set"))
    report.lines += found.passed
    report.failed += found.failed
    if key_file_matches(opened.key_file, recorded):
        keys = parse_keyring(opened.key_file.decode("utf-8"))
        report.lines.append(
            f"key file: belongs to this database ({len(keys.data_keys)} data key(s))"
        )
    else:
        report.failed.append("key file: does not belong to this database")
    return report


async def holds_data(settings: Settings) -> bool:
    """Whether the configured database has a row in any table (the schema's bookkeeping
    aside): restoring over it would lose them."""
    path = settings.sqlite_path()
    if settings.is_sqlite:
        if path is None or not path.exists():
            return False
        _, counts = await asyncio.to_thread(sqlite_counts, path)
    else:
        from emporium.backups.snapshot import pg_counts

        engine = create_async_engine(settings.database_url)
        try:
            async with engine.connect() as conn:
                _, counts = await pg_counts(conn)
        finally:
            await engine.dispose()
    return any(n for table, n in counts.items() if table not in IGNORED_WHEN_EMPTY)


async def _write_database(settings: Settings, opened: Opened) -> None:
    if opened.manifest["engine"] == "sqlite":
        path = settings.sqlite_path()
        if path is None:
            raise BackupError("EMPORIUM_DATABASE_URL names no SQLite file to restore into")
        path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(sqlite_copy, opened.database, path)
        path.chmod(0o600)
    else:
        await pg_restore_into(settings, settings.database_url, opened.database)


def _write_key_file(settings: Settings, key_file: bytes) -> str:
    """Write the backup's key file (0600), setting aside a different one found there."""
    target = settings.key_file
    target.parent.mkdir(parents=True, exist_ok=True)
    note = ""
    if target.exists() and target.read_bytes() != key_file:
        aside = target.with_name(f"{target.name}.before-restore-{secrets.token_hex(3)}")
        target.replace(aside)
        note = f" (the key file found there was moved to {aside})"
    write_key_file(target, parse_keyring(key_file.decode("utf-8")), overwrite=True)
    return f"key file written to {target} (mode 0600){note}"


async def restore_backup(
    settings: Settings,
    sessions: SessionMaker,
    source: Destination,
    backup_id: str | None,
    identity: Path,
    folder: Path,
    *,
    force: bool,
) -> Report:
    """Restore a backup into the configured database and key file. Raises NotEmpty when
    the database holds data and ``force`` is false; with ``force`` a backup of what is
    replaced is made first. Migrations are run forward by the caller (``migrate_forward``)."""
    opened = await asyncio.to_thread(fetch_and_open, source, backup_id, identity, folder)
    manifest = opened.manifest
    engine = "sqlite" if settings.is_sqlite else "postgresql"
    if manifest["engine"] != engine:
        raise BackupError(f"a {manifest['engine']} backup cannot be restored into {engine}")
    report = Report(str(manifest["id"]))
    report.lines.append(f"backup {manifest['id']} from {source.name}: checksums match, decrypted")
    if await holds_data(settings):
        if not force:
            raise NotEmpty(
                "the database holds data: restore refuses to replace it (--force "
                "backs it up first, then replaces it)"
            )
        before = await create_backup(settings, sessions)
        report.lines.append(f"backup {before.backup_id} of the replaced database made first")
    await _write_database(settings, opened)
    report.lines.append(f"database restored ({sum(manifest['row_counts'].values())} rows)")
    report.lines.append(_write_key_file(settings, opened.key_file))
    return report


async def queued_jobs(settings: Settings) -> int:
    """Jobs waiting in the restored database (they run once a runner starts)."""
    engine = create_async_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            return int(
                await conn.scalar(
                    text("SELECT count(*) FROM job WHERE status IN ('queued', 'running')")
                )
                or 0
            )
    finally:
        await engine.dispose()


async def _record_restore(settings: Settings, report: Report) -> None:
    """The restore's audit event, the first of the restored chain's continuation (by the
    caller's actor: ``cli`` on the command line)."""
    from emporium.core.db.base import create_engine, create_sessionmaker

    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await record_audit(
                session,
                action="backup.restored",
                object_type="backup",
                object_id=report.backup_id,
            )
    finally:
        await engine.dispose()


async def migrate_forward(settings: Settings, report: Report) -> None:
    """Run the migrations a backup older than this version lacks, then say what happens
    next: the queued jobs will run (e-mails and webhooks may go out again) and how to hold
    them."""
    from emporium.core.db import migrate

    before = await asyncio.to_thread(migrate.current_revision, settings)
    await asyncio.to_thread(migrate.upgrade, settings)
    after = await asyncio.to_thread(migrate.current_revision, settings)
    if before != after:
        report.lines.append(f"schema migrated forward: {before} -> {after}")
    else:
        report.lines.append(f"schema: {after} (current)")
    await _record_restore(settings, report)
    waiting = await queued_jobs(settings)
    report.lines += [
        f"next: {waiting} queued job(s) will run once a job runner starts: order e-mails and "
        "webhooks among them may be sent again.",
        "To hold them, start the API with EMPORIUM_JOBS_EMBEDDED=false and no `emporium "
        "worker`; look at GET /jobs?status=queued, then start a worker.",
    ]
