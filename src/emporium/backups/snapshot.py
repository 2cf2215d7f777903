"""Consistent snapshots with the engines' own tools, and their restore.

SQLite: the online backup API (``sqlite3.Connection.backup``) copies the database page by
page under SQLite's own locking, so a write in flight is either wholly in the copy or not at
all (a plain file copy of a live database, with its ``-wal`` file, is not: it lost 8 of 794
orders in a drill). PostgreSQL: ``pg_dump -Fc`` (custom format, restored with
``pg_restore``), run with ``--snapshot`` on a snapshot exported by a ``REPEATABLE READ``
transaction, in which the manifest's row counts and schema version are read too: they
describe exactly what the dump holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Select, func, make_url, select, table, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from emporium.backups.exceptions import BackupError
from emporium.core.config import Settings

SKIPPED = frozenset({"sqlite_sequence", "sqlite_stat1"})


@dataclass(frozen=True)
class Snapshot:
    """What a snapshot holds: engine, Alembic revision, rows per table."""

    engine: str
    schema_version: str | None
    row_counts: dict[str, int]


def count_rows(name: str, schema: str | None = None) -> Select[int]:
    """``SELECT count(*)`` of the table ``name`` (quoted by SQLAlchemy, never pasted)."""
    return select(func.count()).select_from(table(name, schema=schema))


def sqlite_counts(path: Path) -> tuple[str | None, dict[str, int]]:
    """The Alembic revision and rows per table of a SQLite file."""
    engine = sa_create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            names = conn.scalars(
                text("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            ).all()
            counts = {n: int(conn.scalar(count_rows(n)) or 0) for n in names if n not in SKIPPED}
            version = None
            if "alembic_version" in counts:
                version = conn.scalar(text("SELECT version_num FROM alembic_version"))
    finally:
        engine.dispose()
    return version, counts


def sqlite_copy(source: Path, target: Path) -> None:
    """Copy the SQLite database ``source`` into ``target`` with the online backup API
    (``target`` is replaced page by page; other connections see the old or the new one)."""
    with (
        contextlib.closing(sqlite3.connect(source, timeout=30)) as src,
        contextlib.closing(sqlite3.connect(target, timeout=30)) as dst,
    ):
        src.backup(dst)


def snapshot_sqlite(settings: Settings, target: Path) -> Snapshot:
    """Snapshot the embedded database into ``target``; raises BackupError without a file."""
    path = settings.sqlite_path()
    if path is None or not path.exists():
        raise BackupError("the SQLite database file does not exist (nothing to back up)")
    sqlite_copy(path, target)
    version, counts = sqlite_counts(target)
    return Snapshot("sqlite", version, counts)


def libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI for ``pg_dump``/``pg_restore`` and the environment with its password
    (``PGPASSWORD``: never on a command line, where ``ps`` shows it)."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None, query={})
    return plain.render_as_string(hide_password=False), env


def pg_tool(settings: Settings, name: str) -> str:
    """The path of ``pg_dump`` or ``pg_restore``: in ``EMPORIUM_BACKUP_PG_BIN_DIR`` or the
    PATH's."""
    if settings.backup_pg_bin_dir is not None:
        return str(settings.backup_pg_bin_dir / name)
    return name


async def run_tool(args: list[str], env: dict[str, str]) -> None:
    """Run a PostgreSQL client tool; raises BackupError with its last error line."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
    except FileNotFoundError as exc:
        raise BackupError(
            f"{args[0]} not found: install the PostgreSQL client (postgresql-client) or set "
            "EMPORIUM_BACKUP_PG_BIN_DIR"
        ) from exc
    _, err = await proc.communicate()
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines() or ["no message"]
        raise BackupError(f"{Path(args[0]).name} failed: {lines[-1]}")


async def pg_counts(conn: AsyncConnection) -> tuple[str | None, dict[str, int]]:
    """The Alembic revision and rows per table of the ``public`` schema, in ``conn``'s
    transaction."""
    names = (
        await conn.scalars(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        )
    ).all()
    counts = {}
    for name in names:
        counts[name] = int(await conn.scalar(count_rows(name, "public")) or 0)
    version = None
    if "alembic_version" in counts:
        version = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    return version, counts


async def snapshot_postgres(settings: Settings, target: Path) -> Snapshot:
    """``pg_dump -Fc`` into ``target`` on a snapshot exported by the transaction that
    counts the rows; raises BackupError when pg_dump fails or is missing."""
    engine = create_async_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                snapshot_id = await conn.scalar(text("SELECT pg_export_snapshot()"))
                version, counts = await pg_counts(conn)
                uri, env = libpq(settings.database_url)
                tool = pg_tool(settings, "pg_dump")
                await run_tool(
                    [
                        tool,
                        "-Fc",
                        f"--snapshot={snapshot_id}",
                        f"--file={target}",
                        f"--dbname={uri}",
                    ],
                    env,
                )
    finally:
        await engine.dispose()
    return Snapshot("postgresql", version, counts)


async def take_snapshot(settings: Settings, target: Path) -> Snapshot:
    """Snapshot the configured database into the file ``target``."""
    if settings.is_sqlite:
        return await asyncio.to_thread(snapshot_sqlite, settings, target)
    return await snapshot_postgres(settings, target)


async def pg_execute(url: str, *statements: str) -> None:
    """Run statements outside a transaction (CREATE/DROP DATABASE, DROP SCHEMA)."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def pg_restore_into(settings: Settings, url: str, dump: Path) -> None:
    """Empty the ``public`` schema of the database at ``url`` and ``pg_restore`` the dump
    into it in one transaction (objects owned by the connecting role)."""
    await pg_execute(url, "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public")
    uri, env = libpq(url)
    tool = pg_tool(settings, "pg_restore")
    args = [tool, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
    await run_tool([*args, f"--dbname={uri}", str(dump)], env)
