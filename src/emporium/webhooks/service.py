"""Admin verbs of the webhooks room: endpoints, their deliveries, manual retries."""

from __future__ import annotations

import base64
import secrets
import uuid

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.audit.chain import record_audit
from emporium.core.clock import utcnow
from emporium.core.config import Settings
from emporium.core.crypto.sealing import encrypt_field
from emporium.core.db.pagination import by_created_at, created_at_cursor
from emporium.core.errors import NotFound
from emporium.jobs.outbox import enqueue
from emporium.webhooks.addresses import split_url
from emporium.webhooks.delivery import DELIVER, PENDING, WebhooksContext
from emporium.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from emporium.webhooks.schemas import (
    AttemptRead,
    DeliveryPage,
    DeliveryRead,
    WebhookCreate,
    WebhookCreated,
    WebhookPage,
    WebhookRead,
    WebhookUpdate,
)

SECRET_BYTES = 32


def _read(endpoint: WebhookEndpoint) -> WebhookRead:
    return WebhookRead(
        id=endpoint.id,
        url=endpoint.url,
        events=list(endpoint.events),
        description=endpoint.description,
        is_active=endpoint.is_active,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def new_secret() -> str:
    """A signing secret in the Standard Webhooks form: ``whsec_`` + base64 of 256 bits."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


async def create_endpoint(
    session: AsyncSession, ctx: WebhooksContext, settings: Settings, data: WebhookCreate
) -> WebhookCreated:
    """Register an endpoint; the answer carries its secret, shown once. Raises
    AddressRefused (422 ``webhook_url_refused``) for localhost or a private literal address."""
    split_url(data.url, allow_private=settings.webhooks_allow_private)
    now = utcnow()
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        url=data.url,
        events=sorted(set(data.events)),
        description=data.description,
        is_active=True,
        created_at=now,
        updated_at=now,
    )
    secret = new_secret()
    endpoint.secret_enc = encrypt_field(
        ctx.ring, secret, table="webhook_endpoint", column="secret", row_id=str(endpoint.id)
    )
    session.add(endpoint)
    await session.flush()
    await record_audit(
        session,
        action="webhook.created",
        object_type="webhook",
        object_id=endpoint.id,
        details={"events": list(endpoint.events)},
    )
    return WebhookCreated(**msgspec.structs.asdict(_read(endpoint)), secret=secret)


async def _endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound("No such webhook.")
    return endpoint


async def update_endpoint(
    session: AsyncSession, settings: Settings, endpoint_id: uuid.UUID, data: WebhookUpdate
) -> WebhookRead:
    """Change an endpoint. Raises NotFound (404), AddressRefused (422)."""
    endpoint = await _endpoint(session, endpoint_id)
    if data.url is not msgspec.UNSET:
        split_url(data.url, allow_private=settings.webhooks_allow_private)
        endpoint.url = data.url
    if data.events is not msgspec.UNSET:
        endpoint.events = sorted(set(data.events))
    if data.description is not msgspec.UNSET:
        endpoint.description = data.description
    if data.is_active is not msgspec.UNSET:
        endpoint.is_active = data.is_active
    endpoint.updated_at = utcnow()
    await session.flush()
    changed = sorted(k for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET)
    await record_audit(
        session,
        action="webhook.updated",
        object_type="webhook",
        object_id=endpoint.id,
        details={"changed": changed},
    )
    return _read(endpoint)


async def delete_endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> None:
    """Delete an endpoint and its delivery history. Raises NotFound (404)."""
    await session.delete(await _endpoint(session, endpoint_id))
    await session.flush()
    await record_audit(
        session, action="webhook.deleted", object_type="webhook", object_id=endpoint_id
    )


async def get_endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> WebhookRead:
    """One endpoint. Raises NotFound (404)."""
    return _read(await _endpoint(session, endpoint_id))


async def list_endpoints(session: AsyncSession, *, limit: int, cursor: str | None) -> WebhookPage:
    """Endpoints, oldest first, as a keyset page."""
    stmt = by_created_at(
        select(WebhookEndpoint),
        "created_at",
        WebhookEndpoint.created_at,
        WebhookEndpoint.id,
        cursor,
    )
    rows = list(await session.scalars(stmt.limit(limit + 1)))
    items = [_read(e) for e in rows[:limit]]
    more = len(rows) > limit
    return WebhookPage(items=items, next_cursor=created_at_cursor(items, more, "created_at"))


def _delivery_read(delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryRead:
    return DeliveryRead(
        id=delivery.id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        webhook_id=delivery.msg_id,
        status=delivery.status,
        attempts=[
            AttemptRead(a.attempted_at, a.status_code, a.duration_ms, a.error) for a in attempts
        ],
        next_retry_at=delivery.next_retry_at,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
    )


async def list_deliveries(
    session: AsyncSession, endpoint_id: uuid.UUID, *, limit: int, cursor: str | None
) -> DeliveryPage:
    """An endpoint's deliveries with their attempts, newest first. Raises NotFound (404)."""
    await _endpoint(session, endpoint_id)
    stmt = by_created_at(
        select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id),
        "-created_at",
        WebhookDelivery.created_at,
        WebhookDelivery.id,
        cursor,
    )
    rows = list(await session.scalars(stmt.limit(limit + 1)))
    page = rows[:limit]
    attempts: dict[uuid.UUID, list[WebhookAttempt]] = {d.id: [] for d in page}
    found = await session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(list(attempts)))
        .order_by(WebhookAttempt.attempted_at)
    )
    for attempt in found:
        attempts[attempt.delivery_id].append(attempt)
    items = [_delivery_read(d, attempts[d.id]) for d in page]
    more = len(rows) > limit
    return DeliveryPage(items=items, next_cursor=created_at_cursor(items, more, "-created_at"))


async def retry_delivery(
    session: AsyncSession, settings: Settings, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryRead:
    """Queue one more delivery run at once, with the same ``webhook-id`` and body.
    Raises NotFound (404)."""
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint_id:
        raise NotFound("No such delivery.")
    delivery.status, delivery.next_retry_at = PENDING, utcnow()
    await enqueue(
        session,
        DELIVER,
        {"delivery_id": str(delivery.id)},
        dedupe_key=f"delivery:{delivery.id}:manual:{uuid.uuid4()}",
        max_attempts=settings.jobs_max_attempts,
    )
    await session.flush()
    await record_audit(
        session,
        action="webhook.delivery_retried",
        object_type="webhook_delivery",
        object_id=delivery.id,
        details={"webhook_id": endpoint_id},
    )
    attempts = await session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id == delivery.id)
        .order_by(WebhookAttempt.attempted_at)
    )
    return _delivery_read(delivery, list(attempts))
