"""Admin route of the audit room: reading the trail. Nothing changes or deletes an event.

The admin check is the application's (``app.state.admin_guard``), as for the jobs room, so
this platform room needs no import from accounts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import get
from litestar.connection import ASGIConnection
from litestar.datastructures import CacheControlHeader
from litestar.handlers.base import BaseRouteHandler
from litestar.params import QueryParameter

from emporium.audit import service
from emporium.audit.schemas import AuditEventPage
from emporium.core.db.pagination import DEFAULT_LIMIT, Cursor, Limit
from emporium.core.db.uow import DbSession
from emporium.core.errors import InvalidInput
from emporium.core.http.openapi import BEARER
from emporium.core.http.routing import Audience, audience_router


async def admin_only(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Route guard: the application's admin check (``app.state.admin_guard``)."""
    await connection.app.state.admin_guard(connection, handler)


ADMIN = Audience(guards=(admin_only,), security=tuple(BEARER), refusals=(401, 403))
"""Admins with MFA through the application's check; never an API key."""

Text = Annotated[str | None, QueryParameter(max_length=100)]
Instant = Annotated[
    datetime | None, QueryParameter(description="RFC 3339 date-time with a zone offset")
]


def _zoned(name: str, value: datetime | None) -> datetime | None:
    """``value`` when it carries a zone. Raises InvalidInput (422) for a naive instant."""
    if value is not None and value.tzinfo is None:
        raise InvalidInput(
            f"{name} needs a zone offset (RFC 3339), such as 2026-01-31T00:00:00Z.",
            errors=[{"loc": ["query", name], "msg": "no zone offset"}],
        )
    return value


@get("/audit-events", summary="List audit events")
async def list_audit_events(
    session: DbSession,
    actor_id: Text = None,
    action: Text = None,
    object_type: Text = None,
    object_id: Text = None,
    since: Instant = None,
    until: Instant = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> AuditEventPage:
    """Admin: audit events, newest first, filtered by actor, action, object and time
    (``since`` inclusive, ``until`` exclusive). ``ip`` is a keyed pseudonym of the address."""
    where = service.EventFilter(
        actor_id=actor_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        since=_zoned("since", since),
        until=_zoned("until", until),
    )
    return await service.list_events(session, where=where, limit=limit, cursor=cursor)


audit_router = audience_router(
    ADMIN,
    tags=["admin"],
    route_handlers=[list_audit_events],
    cache_control=CacheControlHeader(no_store=True),
)
