"""SQLite runs in write-ahead-log (WAL) mode, and the switch to it never fails a process.

Every engine connection used to switch a rollback-journal file (which is what a migration
left) to WAL on connect. Switching needs the write lock after a read lock, and when another
connection holds the write lock SQLite fails the switch at once with ``database is locked``,
busy timeout or not: two workers starting together on a freshly migrated file (CI saw it:
tests/backups/test_destinations.py, two runners and the app's engine) lost the race. Now the
file is switched once, before an engine opens a connection, waiting out such a lock.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from emporium.core.config import Settings
from emporium.core.db.base import create_engine
from emporium.core.db.migrate import upgrade


def _settings(path: Path, busy_timeout: float = 10.0) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{path}", sqlite_busy_timeout_seconds=busy_timeout
    )


def _journal_mode(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        connection.close()


def _rollback_journal_file(path: Path) -> None:
    """A database in rollback-journal mode, as SQLite makes one, with one table."""
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE t (x INTEGER)")
    connection.commit()
    connection.close()
    assert _journal_mode(path) == "delete"


def _hold_write_lock(path: Path, seconds: float) -> threading.Thread:
    """Another process's writer: holds the write lock (an uncommitted insert) for ``seconds``."""
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN")
    writer.execute("INSERT INTO t VALUES (1)")

    def release() -> None:
        time.sleep(seconds)
        writer.execute("COMMIT")
        writer.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def test_a_migrated_database_is_in_wal_mode(tmp_path: Path) -> None:
    """``emporium db upgrade`` leaves the file in WAL mode (it was left in rollback mode)."""
    database = tmp_path / "emporium.db"
    upgrade(_settings(database))
    assert _journal_mode(database) == "wal"


async def test_an_engine_waits_out_a_writer_holding_the_lock_while_it_switches(
    tmp_path: Path,
) -> None:
    """A writer holds the lock of a rollback-journal file for 0.3 s while an engine starts:
    the engine's first write succeeds (it failed at once with ``database is locked``)."""
    database = tmp_path / "emporium.db"
    _rollback_journal_file(database)
    holder = _hold_write_lock(database, 0.3)
    try:
        engine = create_engine(_settings(database))
        try:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (2)"))
        finally:
            await engine.dispose()
    finally:
        holder.join()
    assert _journal_mode(database) == "wal"
    connection = sqlite3.connect(database)
    assert sorted(connection.execute("SELECT x FROM t").fetchall()) == [(1,), (2,)]
    connection.close()


def test_a_lock_held_past_the_busy_timeout_is_reported(tmp_path: Path) -> None:
    """A lock held longer than ``sqlite_busy_timeout_seconds`` fails the engine's start with
    SQLite's own error after about that long, not at once and not never."""
    database = tmp_path / "emporium.db"
    _rollback_journal_file(database)
    holder = _hold_write_lock(database, 1.5)
    try:
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            create_engine(_settings(database, busy_timeout=0.3))
        waited = time.monotonic() - started
    finally:
        holder.join()
    assert 0.3 <= waited < 1.5
    assert _journal_mode(database) == "delete"
