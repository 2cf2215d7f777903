"""Admin routes of the backups room (the admin check, MFA included, is the application's:
``jobs.routes.ADMIN``)."""

from __future__ import annotations

from typing import Annotated

from litestar import get, post
from litestar.datastructures import CacheControlHeader
from litestar.params import QueryParameter

from emporium.backups import service
from emporium.backups.schemas import BackupList, BackupQueued
from emporium.core.db.uow import DbSession
from emporium.core.http.routing import audience_router
from emporium.jobs.routes import ADMIN


@get("/backups")
async def list_backups(
    session: DbSession, limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20
) -> BackupList:
    """Admin: the most recent backups with size, checksum and each destination's status."""
    return await service.list_backups(session, limit=limit)


@post("/backups", status_code=202)
async def create_backup(session: DbSession) -> BackupQueued:
    """Admin: make a backup now (queued as a job; ``GET /backups`` shows it once made)."""
    return await service.request_backup(session)


backups_router = audience_router(
    ADMIN,
    tags=["admin"],
    route_handlers=[list_backups, create_backup],
    cache_control=CacheControlHeader(no_store=True),
)
