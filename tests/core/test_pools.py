"""Default connection pools fit a small cluster on PostgreSQL's default ``max_connections``."""

from __future__ import annotations

from pathlib import Path

from litestar.testing import AsyncTestClient
from sqlalchemy.pool import QueuePool

from emporium.app import create_app
from emporium.core.config import Settings
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
        assert state.raw_pool is not None  # PostgreSQL: the raw pool is open
        capacity += state.raw_pool.get_max_size() + 1  # + the LISTEN connection
    assert capacity == settings.connections_per_server == 9
