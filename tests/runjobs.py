"""Run an app's jobs from a test (the embedded runner is off in tests).

Imported by tests as ``runjobs``.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from emporium.core.clock import use
from emporium.core.config import Settings
from emporium.core.db.base import create_engine, create_sessionmaker
from emporium.jobs.runner import Runner


async def drain(client: AsyncTestClient[Litestar]) -> int:
    """Run every due job with the app's handlers, on this test's event loop (the app's own
    engine lives on the client's loop); returns how many jobs ran."""
    return await drain_app(client.app)


async def drain_app(app: Litestar) -> int:
    """:func:`drain` for an app served otherwise (its lifespan running)."""
    settings: Settings = app.state.settings
    engine = create_engine(settings)
    try:
        runner = Runner(
            app.state.job_runner.registry,
            create_sessionmaker(engine),
            settings,
            clock=app.state.clock,
        )
        return await runner.drain()
    finally:
        await engine.dispose()


async def run_schedules(client: AsyncTestClient[Litestar]) -> int:
    """Enqueue the app's periodic jobs for the current period (as a runner does each poll),
    then :func:`drain`; returns how many jobs ran."""
    app: Litestar = client.app
    settings: Settings = app.state.settings
    engine = create_engine(settings)
    try:
        runner = Runner(
            app.state.job_runner.registry,
            create_sessionmaker(engine),
            settings,
            clock=app.state.clock,
        )
        with use(app.state.clock):
            await runner.enqueue_schedules()
        return await runner.drain()
    finally:
        await engine.dispose()
