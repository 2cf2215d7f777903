"""Recognise a database outage in an exception, and log outages without flooding the logs.

While the database cannot be reached (PostgreSQL down, refusing connections, restarting or
out of connection slots; SQLite locked by another writer past its busy timeout, unopenable,
failing I/O or full) a request that needs it answers ``503 service_unavailable`` with
``Retry-After`` (contract, Conventions), not a 500 with a traceback. The error mapping asks
:func:`outage_kind`; :func:`report_outage` logs one line per kind of failure and interval,
however many requests fail. Nothing needs restarting: pooled connections broken by the
outage are discarded by SQLAlchemy and asyncpg, and the next checkout connects again.
"""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator

import asyncpg
import structlog
from sqlalchemy import exc as sa_exc

RETRY_AFTER_SECONDS = 5
"""What a ``503 service_unavailable`` tells clients to wait (``Retry-After``)."""
LOG_INTERVAL_SECONDS = 60.0
"""One log line per kind of outage per this interval (with the count of failures since)."""

_SQLITE_OUTAGES = {
    5: "database_locked",  # SQLITE_BUSY: another writer held the lock past busy_timeout
    6: "database_locked",  # SQLITE_LOCKED
    8: "database_read_only",  # SQLITE_READONLY: file or directory not writable
    10: "database_io_error",  # SQLITE_IOERR
    13: "database_full",  # SQLITE_FULL: disk full
    14: "database_cannot_open",  # SQLITE_CANTOPEN: file missing or unreadable
}
_POSTGRES_OUTAGES: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # class 08, connection exceptions
    asyncpg.exceptions.OperatorInterventionError,  # 57P01-03: shutdown, cannot connect now
    asyncpg.exceptions.TooManyConnectionsError,  # 53300: no connection slot left
)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: SQLAlchemy's ``orig``, ``__cause__``, ``__context__``."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        pending += [orig if isinstance(orig, BaseException) else None]
        pending += [current.__cause__, current.__context__]


def _from_database(exc: BaseException) -> bool:
    """True when ``exc`` was raised inside the database drivers (a connection attempt that
    timed out), not by some other awaited operation."""
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.startswith(("asyncpg", "sqlalchemy")):
            return True
        tb = tb.tb_next
    return False


def outage_kind(exc: BaseException) -> str | None:
    """The kind of database outage behind ``exc`` (``database_unreachable``,
    ``database_refused``, ``database_timeout``, ``database_connection_lost``,
    ``database_pool_exhausted``, ``database_locked``, ...),
    or None when ``exc`` is not one (a bug, a constraint, a schema problem)."""
    for cause in _causes(exc):
        if isinstance(cause, sa_exc.TimeoutError):  # no pooled connection came free in time
            return "database_pool_exhausted"
        if isinstance(cause, sa_exc.DBAPIError) and cause.connection_invalidated:
            return "database_connection_lost"
        if isinstance(cause, sqlite3.OperationalError):
            code = getattr(cause, "sqlite_errorcode", 0) & 0xFF
            if code in _SQLITE_OUTAGES:
                return _SQLITE_OUTAGES[code]
        if isinstance(cause, _POSTGRES_OUTAGES):
            return "database_refused"
        if isinstance(cause, ConnectionError | socket.gaierror):  # refused, reset, no host
            return "database_unreachable"
        if isinstance(cause, TimeoutError) and _from_database(cause):
            return "database_timeout"
    return None


class _OutageLog:
    """When each kind was last logged, and how many failures went unlogged since."""

    def __init__(self) -> None:
        self.logged_at: dict[str, float] = {}
        self.unlogged: dict[str, int] = {}


_OUTAGES = _OutageLog()


def report_outage(kind: str, exc: BaseException) -> None:
    """Log ``database_unavailable`` (kind, the error's one-line message, failures since the
    last line) once per kind per ``LOG_INTERVAL_SECONDS``; never a traceback."""
    now = time.monotonic()
    last = _OUTAGES.logged_at.get(kind)
    if last is not None and now - last < LOG_INTERVAL_SECONDS:
        _OUTAGES.unlogged[kind] = _OUTAGES.unlogged.get(kind, 0) + 1
        return
    _OUTAGES.logged_at[kind] = now
    structlog.get_logger("emporium.database").error(
        "database_unavailable",
        kind=kind,
        error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300],
        failures_since_last_line=_OUTAGES.unlogged.pop(kind, 0),
        retry_after_seconds=RETRY_AFTER_SECONDS,
    )


def reset_outage_log() -> None:
    """Forget what was logged (each test starts with an empty log)."""
    _OUTAGES.logged_at.clear()
    _OUTAGES.unlogged.clear()
