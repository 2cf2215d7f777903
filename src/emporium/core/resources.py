"""The application's process-wide resources, typed, in one object.

``create_app`` builds one :class:`Resources` when the application starts (its lifespan: the
engines, the raw pool and Redis open there) and closes them when it stops. Handlers ask for
it as a dependency (``resources: ResourcesDep``) instead of reading attributes off the
untyped ``app.state``; guards and dependency providers, which get a connection rather than
parameters, use :func:`resources_of`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidation

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from emporium.core.clock import Clock
    from emporium.core.config import Settings
    from emporium.core.db.base import ReadEngine
    from emporium.core.db.changes import ChangeFeed
    from emporium.core.db.fair_pool import FairPool
    from emporium.core.http.ratelimit import RateLimiter


@dataclass(frozen=True, slots=True)
class Resources:
    """What every request may use, opened once per application.

    ``engine``/``sessionmaker``: the write side (``core.db.uow``); ``read_engine``: autocommit
    reads (``core.db.base.Reader``); ``raw_pool``: an asyncpg pool on PostgreSQL for the
    hottest reads, None on SQLite; ``change_feed``: commits' changes to every process;
    ``redis``: the shared store when configured, else None.
    """

    settings: Settings
    clock: Clock
    engine: AsyncEngine
    read_engine: ReadEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    change_feed: ChangeFeed
    rate_limiter: RateLimiter
    raw_pool: FairPool | None = None
    redis: Any = None


def resources_of(state: State) -> Resources:
    """The running application's :class:`Resources` (``app.state`` of a started app).

    Raises AttributeError before the application started.
    """
    resources: Resources = state.resources
    return resources


def _provide(state: State) -> Resources:
    return resources_of(state)


def provide_resources() -> Provide:
    """The ``resources`` dependency (registered by ``create_app``)."""
    return Provide(_provide, sync_to_thread=False)


ResourcesDep: TypeAlias = NamedDependency[SkipValidation[Resources]]
"""Route parameter type of the application's resources (inject as ``resources: ResourcesDep``);
the value is passed as is, not validated (its engines are no schema)."""
