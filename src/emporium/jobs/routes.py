"""Admin routes of the jobs room: dead letters and manual retries.

The admin check is the application's (``app.state.admin_guard``, set by ``create_app`` from
the accounts room), so this platform room needs no import from accounts.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from litestar import get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import CacheControlHeader
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, QueryParameter

from emporium.core.db.pagination import DEFAULT_LIMIT, Cursor, Limit
from emporium.core.db.uow import DbSession
from emporium.core.http.openapi import BEARER
from emporium.core.http.routing import Audience, audience_router
from emporium.jobs import service
from emporium.jobs.schemas import JobPage, JobRead


async def admin_only(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Route guard: the application's admin check (``app.state.admin_guard``)."""
    await connection.app.state.admin_guard(connection, handler)


ADMIN = Audience(guards=(admin_only,), security=tuple(BEARER), refusals=(401, 403))
"""The admin audience of the platform rooms (jobs, webhooks), which cannot import accounts:
admins with MFA through the application's check; never an API key."""


Status = Literal["queued", "running", "done", "dead"]


@get("/jobs")
async def list_jobs(
    session: DbSession,
    status: Annotated[Status | None, QueryParameter()] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> JobPage:
    """Admin: jobs, oldest first; ``?status=dead`` lists the dead letters."""
    return await service.list_jobs(session, status=status, limit=limit, cursor=cursor)


@post("/jobs/{job_id:uuid}/retry", status_code=202)
async def retry_job(session: DbSession, job_id: FromPath[uuid.UUID]) -> JobRead:
    """Admin: queue a dead job again (409 when it is not dead)."""
    return await service.retry_job(session, job_id)


jobs_router = audience_router(
    ADMIN,
    tags=["admin"],
    refusals=(404, 409),
    route_handlers=[list_jobs, retry_job],
    cache_control=CacheControlHeader(no_store=True),
)
