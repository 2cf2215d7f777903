"""Database plumbing: declarative base, column types, engine and session factories.

One engine per application; one :class:`AsyncSession` (one transaction) per request,
committed by the request boundary (:mod:`emporium.core.db.uow`).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import structlog
from sqlalchemy import DateTime, MetaData, Table, Text, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine, FrozenResult, Result
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, MappedColumn, mapped_column
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql import Executable
from sqlalchemy.types import TypeDecorator

from emporium.core.config import Settings

log = structlog.get_logger("emporium.db")
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
"""Files SQLite keeps beside the database; they hold the same data."""

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table; constraint names follow one convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Reject naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Attach UTC to what SQLite returns naive."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_id() -> uuid.UUID:
    """A new random, non-sequential identifier (UUIDv4)."""
    return uuid.uuid4()


def _sqlite_pragmas(busy_timeout_seconds: float) -> Callable[[Any, Any], None]:
    """The ``connect`` listener of SQLite engines: how long a writer waits for another's
    lock before failing (``database is locked``: a 503), set first so that the statements
    after it wait too; WAL (already stored in the file by :func:`prepare_sqlite_file`, so a
    no-op) and foreign keys."""
    busy_ms = round(busy_timeout_seconds * 1000)

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={busy_ms:d}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return on_connect


def private_sqlite_file(settings: Settings) -> None:
    """Make the SQLite database readable by its owner only (mode 0600), like the key file.

    A missing file is created empty (a valid empty database) with ``O_CREAT | O_EXCL`` and
    mode 0600 before SQLite opens it, whatever the umask (a umask only removes bits); SQLite
    gives its ``-wal``, ``-shm`` and ``-journal`` files the database file's mode. An existing
    file, or companion, that group or others may access loses those bits (logged once per
    file). Nothing happens for PostgreSQL or an in-memory database; not on Windows, where
    POSIX mode bits do not describe access. Raises OSError when the folder is not writable.
    """
    path = settings.sqlite_path()
    if path is None or os.name == "nt":
        return
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    for file in (path, *(Path(f"{path}{suffix}") for suffix in SQLITE_COMPANIONS)):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            file.chmod(mode & 0o700)
            log.warning("sqlite_file_made_private", path=str(file), old_mode=oct(mode))


def sqlite_wal_mode(path: Path, busy_timeout_seconds: float) -> None:
    """Store write-ahead logging (WAL) in the SQLite file ``path``: the mode is a property of
    the file, so every later connection opens in it.

    Switching a file from rollback-journal mode (as a new or migrated file is) needs a read
    lock and then the write lock. When two connections do it at once, or one does while
    another holds the write lock, SQLite fails one at once with ``database is locked``
    without waiting its busy timeout (a deadlock it refuses to wait on). So one connection
    switches here, before an engine opens any, and retries every 20 ms for up to
    ``busy_timeout_seconds`` (seconds). Raises ``sqlite3.OperationalError`` when the lock
    outlasts that, or on any other SQLite error.
    """
    deadline = time.monotonic() + busy_timeout_seconds
    connection = sqlite3.connect(path, timeout=busy_timeout_seconds)
    try:
        while True:
            try:
                connection.execute("PRAGMA journal_mode=WAL").fetchall()
                return
            except sqlite3.OperationalError as error:
                busy = error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() >= deadline:
                    raise
            time.sleep(0.02)
    finally:
        connection.close()


def prepare_sqlite_file(settings: Settings) -> None:
    """Ready the SQLite database file before an engine opens it: owner-only
    (:func:`private_sqlite_file`) and in WAL mode (:func:`sqlite_wal_mode`). Nothing happens
    for PostgreSQL or an in-memory database. Raises OSError when the folder is not
    writable, ``sqlite3.OperationalError`` when the file stays locked past the busy timeout.
    """
    private_sqlite_file(settings)
    path = settings.sqlite_path()
    if path is not None:
        sqlite_wal_mode(path, settings.sqlite_busy_timeout_seconds)


def _unique_statement_name() -> str:
    return f"__emporium_{uuid.uuid4().hex}__"


def postgres_connect_args(settings: Settings) -> dict[str, Any]:
    """Arguments of SQLAlchemy's asyncpg connections: a connect timeout (asyncpg waits 60 s
    for an unresponsive server by default, so an outage would hold every request that long
    before its 503, ``core.db.outages``) and, behind PgBouncer in transaction pooling
    (``database_pgbouncer``), no cached prepared statement and a new name for each one, since
    the next statement may run on another server connection."""
    args: dict[str, Any] = {"timeout": settings.database_connect_timeout_seconds}
    if settings.database_pgbouncer:
        args |= {
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": _unique_statement_name,
        }
    return args


def create_engine(settings: Settings, *, autocommit: bool = False) -> AsyncEngine:
    """The application's engine: pooled asyncpg for PostgreSQL, WAL-mode aiosqlite for SQLite.

    ``autocommit=True``: no transaction around each statement (for reads), up to
    ``database_pool_size`` connections. Otherwise (writes) up to twice that. Neither has
    overflow connections: SQLAlchemy closes an overflow connection as soon as it is
    returned, so under steady load every burst opened and closed PostgreSQL connections
    (measured: connection churn tripled the reads' p99 latency, and a job worker opened a
    new connection for most jobs). A connection, once opened, stays in the pool.
    """
    engine = create_async_engine(
        settings.database_url,
        echo=settings.sql_echo,
        pool_size=settings.database_pool_size * (1 if autocommit else 2),
        max_overflow=0,
        # Behind a transaction-pooling PgBouncer a statement outside a transaction may be
        # prepared on one server connection and run on another: reads run in one then.
        **(
            {"isolation_level": "AUTOCOMMIT", "skip_autocommit_rollback": True}
            if autocommit and not settings.database_pgbouncer
            else {}
        ),
        **({} if settings.is_sqlite else {"connect_args": postgres_connect_args(settings)}),
    )
    if settings.is_sqlite:
        prepare_sqlite_file(settings)
        event.listen(
            engine.sync_engine, "connect", _sqlite_pragmas(settings.sqlite_busy_timeout_seconds)
        )
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def autocommit_session(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> AsyncIterator[AsyncSession]:
    """A session whose statements each commit on their own: no ``BEGIN``, ``COMMIT`` or
    ``ROLLBACK`` round trips (two of the four a job's read-then-insert took). Only for work
    whose statements need no common snapshot and need not fail together (a read, an
    idempotent insert). Behind a transaction-pooling PgBouncer (``database_pgbouncer``)
    it is an ordinary transaction that commits at the end, since a statement outside a
    transaction may be prepared on one server connection and run on another."""
    async with sessionmaker() as session:
        if settings.database_pgbouncer:
            async with session.begin():
                yield session
            return
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session


class Reader:
    """A read-only connection: ``await reader.execute(statement, params)`` on either kind.

    On PostgreSQL it wraps an autocommit :class:`AsyncConnection`. On SQLite it wraps a plain
    ``sqlite3`` connection: :meth:`execute` runs in a worker thread (``sqlite3`` releases the
    GIL while SQLite works), so a costly read, such as a search matching the whole catalog,
    never holds the event loop; :meth:`lookup`, for reads by a unique key, runs on the loop,
    where it takes about 0.1 ms, less than the thread hop (ADR 0004).
    """

    def __init__(self, connection: AsyncConnection | Connection) -> None:
        self._connection = connection
        self.dialect: Dialect = connection.dialect

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Result[Any]:
        """Run one statement of any cost; the result is fully buffered."""
        if isinstance(self._connection, AsyncConnection):
            result: Result[Any] = await self._connection.execute(statement, parameters)
            return result
        frozen = await asyncio.to_thread(self._run_buffered, statement, parameters)
        return frozen()

    async def lookup(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Result[Any]:
        """Run one statement that reads at most a few rows by a unique key (on SQLite on the
        event loop); the result is fully buffered."""
        if isinstance(self._connection, AsyncConnection):
            result: Result[Any] = await self._connection.execute(statement, parameters)
            return result
        return self._run_buffered(statement, parameters)()

    def _run_buffered(
        self, statement: Executable, parameters: Mapping[str, Any] | None
    ) -> FrozenResult[Any]:
        assert isinstance(self._connection, Connection)
        return self._connection.execute(statement, parameters).freeze()


ReadEngine = AsyncEngine | Engine


def create_read_engine(settings: Settings) -> ReadEngine:
    """The engine behind :class:`Reader`: autocommit asyncpg, or synchronous WAL-mode sqlite3."""
    if not settings.is_sqlite:
        return create_engine(settings, autocommit=True)
    prepare_sqlite_file(settings)
    engine = create_sync_engine(
        settings.database_url.replace("sqlite+aiosqlite:", "sqlite:", 1),
        echo=settings.sql_echo,
        isolation_level="AUTOCOMMIT",
        skip_autocommit_rollback=True,
        pool_size=settings.database_pool_size,
        connect_args={"check_same_thread": False},
    )
    event.listen(engine, "connect", _sqlite_pragmas(settings.sqlite_busy_timeout_seconds))
    return engine


_CHECKOUTS: weakref.WeakKeyDictionary[Engine, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _checkouts(engine: Engine) -> asyncio.Semaphore:
    """One slot per connection ``engine``'s pool can hand out: waiting for a slot awaits,
    whereas waiting in the synchronous pool would block the event loop (and the requests
    that would return their connections)."""
    gate = _CHECKOUTS.get(engine)
    if gate is None:
        pool = engine.pool
        size = pool.size() + pool._max_overflow if isinstance(pool, QueuePool) else 1
        gate = _CHECKOUTS[engine] = asyncio.Semaphore(size)
    return gate


@asynccontextmanager
async def read_connection(engine: ReadEngine) -> AsyncIterator[Reader]:
    """A :class:`Reader` on a pooled connection of ``engine``, returned to the pool after."""
    if isinstance(engine, AsyncEngine):
        async with engine.connect() as connection:
            yield Reader(connection)
    else:
        async with _checkouts(engine):
            with engine.connect() as sync_connection:
                yield Reader(sync_connection)


def table_of(model: type[Base]) -> Table:
    """The Core table of an ORM model, typed as such (for fast Core inserts and updates)."""
    table = model.__table__
    if not isinstance(table, Table):  # pragma: no cover - every model maps one table
        raise TypeError(f"{model.__name__} does not map a table")
    return table


T = TypeVar("T")


def per_dialect(build: Callable[[Any], T]) -> dict[str, T]:
    """``build(dialect)`` once for PostgreSQL and once for SQLite (the dialect modules of
    ``sqlalchemy.dialects``): a statement whose SQL differs by database, such as ``INSERT
    ... ON CONFLICT DO NOTHING``, built at import; :func:`for_session` picks one per call."""
    return {"postgresql": build(postgresql), "sqlite": build(sqlite)}


def for_session(statements: Mapping[str, T], session: AsyncSession) -> T:
    """The one of ``statements`` (from :func:`per_dialect`) for ``session``'s database;
    SQLite's for any other."""
    return statements.get(session.get_bind().dialect.name, statements["sqlite"])


SEALED = "sealed"
"""``Column.info`` key of a sealed column: the column name bound into its ciphertexts."""
Sealed = tuple[tuple[Any, dict[str, str]], ...]
"""``(model, {attribute: column name bound into the ciphertext})``; the model's table name
and the row id are bound too."""


def sealed(name: str) -> MappedColumn[Any]:
    """A text column holding values sealed by the vault (``core.crypto.sealing``: AES-256-GCM bound
    to the table, ``name`` and the row id), declared as such so that key rotation, the key-set
    check and the at-rest tests find every one of them (:func:`sealed_columns`). Nullability
    follows the ``Mapped[...]`` annotation."""
    return mapped_column(Text, info={SEALED: name})


def sealed_columns() -> Sealed:
    """Every sealed column of the models mapped so far, by table name (import every room's
    models first: ``emporium.models.import_all_models``)."""
    found = []
    for mapper in sorted(Base.registry.mappers, key=lambda m: str(m.class_.__tablename__)):
        columns = {
            attribute.key: str(attribute.columns[0].info[SEALED])
            for attribute in mapper.column_attrs
            if SEALED in attribute.columns[0].info
        }
        if columns:
            found.append((mapper.class_, columns))
    return tuple(found)
