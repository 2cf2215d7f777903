"""``autocommit_session``: a job's read-then-insert without ``BEGIN``/``COMMIT`` round trips,
and an ordinary transaction behind a transaction-pooling PgBouncer."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from emporium.core.config import Settings
from emporium.core.db.base import autocommit_session, create_engine, create_sessionmaker
from emporium.jobs.models import OutboxEvent
from emporium.jobs.outbox import record_event


async def _events(maker: async_sessionmaker[AsyncSession]) -> int:
    """How many events another connection sees committed."""
    async with maker() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxEvent)) or 0)


@pytest.mark.parametrize("pgbouncer", [False, True], ids=["direct", "pgbouncer"])
async def test_each_statement_commits_on_its_own_unless_behind_pgbouncer(
    settings: Settings, pgbouncer: bool
) -> None:
    """Each write is committed as soon as it ran (another connection sees it while the
    session is still open); with ``database_pgbouncer`` the session is one transaction
    that commits when it ends."""
    if pgbouncer and not settings.database_url.startswith("postgresql"):
        pytest.skip("database_pgbouncer is a PostgreSQL setting")
    configured = settings.model_copy(update={"database_pgbouncer": pgbouncer})
    engine = create_engine(configured)
    maker = create_sessionmaker(engine)
    try:
        async with autocommit_session(maker, configured) as session:
            await record_event(session, "test.autocommit", {"n": 1})
            seen_inside = await _events(maker)
        seen_after = await _events(maker)
    finally:
        await engine.dispose()
    assert (seen_inside, seen_after) == ((0, 1) if pgbouncer else (1, 1))
