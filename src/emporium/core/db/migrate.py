"""Schema migrations with Alembic, driven from code (no alembic.ini needed).

Alembic is imported only by :func:`upgrade` and :func:`alembic_config`: a PostgreSQL node
checks its schema with :func:`current_revision` (plain SQL) and never loads Alembic, which
takes a noticeable part of a start.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from emporium.core.config import Settings
from emporium.core.db.base import postgres_connect_args, prepare_sqlite_file

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(settings: Settings) -> Config:
    """An Alembic configuration pointing at Emporium's migrations and database."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the database schema up to ``revision`` (blocking; call outside the event loop).
    A new SQLite file is created owner-only and in WAL mode
    (``core.db.base.prepare_sqlite_file``)."""
    from alembic import command

    prepare_sqlite_file(settings)
    command.upgrade(alembic_config(settings), revision)


def current_revision(settings: Settings) -> str | None:
    """The database's current revision, or None when it was never migrated."""
    import asyncio

    from sqlalchemy import inspect, text
    from sqlalchemy.ext.asyncio import create_async_engine

    prepare_sqlite_file(settings)

    async def _read() -> str | None:
        engine = create_async_engine(
            settings.database_url,
            **({} if settings.is_sqlite else {"connect_args": postgres_connect_args(settings)}),
        )
        try:
            async with engine.connect() as conn:
                has = await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version"))
                if not has:
                    return None
                row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
                return None if row is None else str(row[0])
        finally:
            await engine.dispose()

    return asyncio.run(_read())
