"""Admin routes of the webhooks room (the admin check is the application's, see
``jobs.routes.ADMIN``)."""

from __future__ import annotations

import uuid

from litestar import delete, get, patch, post
from litestar.datastructures import CacheControlHeader, State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from emporium.core.config import SettingsDep
from emporium.core.db.pagination import DEFAULT_LIMIT, Cursor, Limit
from emporium.core.db.uow import DbSession
from emporium.core.http.routing import audience_router
from emporium.jobs.routes import ADMIN
from emporium.webhooks import service
from emporium.webhooks.delivery import WebhooksContext
from emporium.webhooks.schemas import (
    EVENT_TYPES,
    DeliveryPage,
    DeliveryRead,
    EventTypeList,
    WebhookCreate,
    WebhookCreated,
    WebhookPage,
    WebhookRead,
    WebhookUpdate,
)

Ctx = NamedDependency[WebhooksContext]


@post("/webhooks")
async def create_webhook(
    session: DbSession, webhooks: Ctx, settings: SettingsDep, data: JSONBody[WebhookCreate]
) -> WebhookCreated:
    """Admin: register an endpoint; ``secret`` is shown once (422 ``webhook_url_refused``)."""
    return await service.create_endpoint(session, webhooks, settings, data)


@get("/webhooks")
async def list_webhooks(
    session: DbSession, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> WebhookPage:
    """Admin: all endpoints."""
    return await service.list_endpoints(session, limit=limit, cursor=cursor)


@get("/webhooks/events", sync_to_thread=False)
def list_event_types() -> EventTypeList:
    """Admin: every event type an endpoint may subscribe to (every one Emporium emits)."""
    return EventTypeList(items=list(EVENT_TYPES))  # type: ignore[arg-type]


@get("/webhooks/{webhook_id:uuid}")
async def get_webhook(session: DbSession, webhook_id: FromPath[uuid.UUID]) -> WebhookRead:
    """Admin: one endpoint."""
    return await service.get_endpoint(session, webhook_id)


@patch("/webhooks/{webhook_id:uuid}")
async def update_webhook(
    session: DbSession,
    settings: SettingsDep,
    webhook_id: FromPath[uuid.UUID],
    data: JSONBody[WebhookUpdate],
) -> WebhookRead:
    """Admin: change an endpoint's URL, events, description or ``is_active``."""
    return await service.update_endpoint(session, settings, webhook_id, data)


@delete("/webhooks/{webhook_id:uuid}")
async def delete_webhook(session: DbSession, webhook_id: FromPath[uuid.UUID]) -> None:
    """Admin: delete an endpoint and its delivery history."""
    await service.delete_endpoint(session, webhook_id)


@get("/webhooks/{webhook_id:uuid}/deliveries")
async def list_deliveries(
    session: DbSession,
    webhook_id: FromPath[uuid.UUID],
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> DeliveryPage:
    """Admin: deliveries, newest first, with status codes, durations and next retry."""
    return await service.list_deliveries(session, webhook_id, limit=limit, cursor=cursor)


@post("/webhooks/{webhook_id:uuid}/deliveries/{delivery_id:uuid}/retry", status_code=202)
async def retry_delivery(
    session: DbSession,
    settings: SettingsDep,
    webhook_id: FromPath[uuid.UUID],
    delivery_id: FromPath[uuid.UUID],
) -> DeliveryRead:
    """Admin: deliver again now, with the same ``webhook-id``."""
    return await service.retry_delivery(session, settings, webhook_id, delivery_id)


def _context(state: State) -> WebhooksContext:
    context: WebhooksContext = state.webhooks
    return context


webhooks_router = audience_router(
    ADMIN,
    tags=["webhooks"],
    refusals=(404,),
    route_handlers=[
        create_webhook,
        list_webhooks,
        list_event_types,
        get_webhook,
        update_webhook,
        delete_webhook,
        list_deliveries,
        retry_delivery,
    ],
    dependencies={"webhooks": Provide(_context, sync_to_thread=False)},
    cache_control=CacheControlHeader(no_store=True),
)
