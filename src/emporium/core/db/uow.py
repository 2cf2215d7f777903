"""One unit of work per request: a session that the request boundary commits.

Services only ``flush``; :func:`provide_session` commits after the handler returned and its
answer was serialised, before the response is sent, and rolls back on any exception. The
changes a transaction recorded go out on the change feed with it (``core.db.changes``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TypeAlias

from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.core.db.base import Reader, read_connection
from emporium.core.errors import DomainError
from emporium.core.resources import Resources, resources_of


async def commit(resources: Resources, session: AsyncSession) -> None:
    """Commit the request's transaction now and publish its changes on the change feed.

    For a handler that must know the outcome before it answers (checkout frees its
    ``Idempotency-Key`` when the commit fails); :func:`provide_session` then has nothing
    left to commit. Raises what the database raises; the caller rolls back.
    """
    if session.in_transaction():
        changes = await resources.change_feed.before_commit(session)
        await session.commit()
        resources.change_feed.deliver(changes)


async def provide_session(state: State) -> AsyncGenerator[AsyncSession, None]:
    """Yield the request's session; commit on success, roll back on error."""
    resources = resources_of(state)
    session = resources.sessionmaker()
    try:
        yield session
        await commit(resources, session)
    except DomainError as exc:
        if exc.keep_changes:
            await session.commit()
        else:
            await session.rollback()
        raise
    except BaseException:
        await session.rollback()
        raise
    finally:
        await session.close()


async def provide_reader(state: State) -> AsyncGenerator[Reader, None]:
    """Yield a read-only connection in autocommit mode for requests that only read.

    No ``BEGIN``/``COMMIT`` round trips: each statement sees its own consistent snapshot,
    which is all a single-statement read needs.
    """
    async with read_connection(resources_of(state).read_engine) as reader:
        yield reader


DbReader: TypeAlias = NamedDependency[Reader]
"""Route parameter type of the request's read-only connection (``reader: DbReader``)."""

DbSession: TypeAlias = NamedDependency[AsyncSession]
"""Route parameter type of the request's session (inject as ``session: DbSession``)."""
