"""Default connection pools fit a small cluster on PostgreSQL's default ``max_connections``."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import asyncpg
from litestar.testing import AsyncTestClient
from sqlalchemy import make_url
from sqlalchemy.pool import QueuePool

from emporium.app import create_app
from emporium.core.config import Settings
from emporium.core.db.fair_pool import FairPool
from emporium.core.resources import resources_of

POSTGRES_MAX_CONNECTIONS = 100  # PostgreSQL's default max_connections
SUPERUSER_RESERVED = 3  # and its default superuser_reserved_connections


def test_default_pools_fit_three_nodes() -> None:
    """Three nodes of two server workers each, plus one job worker, stay under PostgreSQL's
    default 100 connections with room left for administrators' tools (the README's formula)."""
    default = Settings.model_fields["database_pool_size"].default
    settings = Settings(database_pool_size=default)  # whatever the environment says
    nodes, workers, job_workers = 3, 2, 1
    used = nodes * workers * settings.connections_per_server
    used += job_workers * settings.connections_per_worker
    assert used <= POSTGRES_MAX_CONNECTIONS - SUPERUSER_RESERVED - 10, used


async def test_the_formula_counts_every_pool_of_a_server(
    postgres_migrated: str, key_file: Path
) -> None:
    """``connections_per_server`` is what a server process can really open: the write pool
    and its overflow, the read pool, the raw asyncpg pool and the change feed's connection."""
    settings = Settings(
        database_url=postgres_migrated,
        key_file=key_file,
        database_pool_size=2,
        jobs_embedded=False,
        log_level="WARNING",
    )
    app = create_app(settings)
    async with AsyncTestClient(app=app):
        state = resources_of(app.state)
        write, read = state.engine.pool, state.read_engine.pool
        assert isinstance(write, QueuePool)
        assert isinstance(read, QueuePool)
        capacity = write.size() + write._max_overflow + read.size() + read._max_overflow
        assert isinstance(state.raw_pool, FairPool)  # PostgreSQL: the raw pool is open
        capacity += state.raw_pool.get_max_size() + 1  # + the LISTEN connection
    assert capacity == settings.connections_per_server == 9


async def test_the_raw_pool_serves_callers_in_the_order_they_came(
    postgres_migrated: str,
) -> None:
    """Twelve readers keep coming back to a raw pool of one connection, as requests do on
    a busy server: every read is served in the order it asked, so nobody is overtaken by a
    newcomer while waiting (asyncpg's own pool lets a newcomer take a connection handed
    back to a waiter, which sends the waiter to the back of the line)."""
    dsn = make_url(postgres_migrated).set(drivername="postgresql").render_as_string(False)
    pool = FairPool(await asyncpg.create_pool(dsn, min_size=1, max_size=1))
    tickets = itertools.count()
    served: list[int] = []

    async def reader(pause: int) -> None:
        for turn in range(15):
            served.append(await pool.fetchval("SELECT $1::int", next(tickets)))
            await asyncio.sleep((pause + turn) % 4 / 10_000)  # the client's next request

    try:
        await asyncio.gather(*(reader(pause) for pause in range(12)))
    finally:
        await pool.close()
    assert len(served) == 12 * 15
    assert served == sorted(served)
