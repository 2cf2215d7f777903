"""API shapes of the webhooks room."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

EventType = Literal[
    "order.created",
    "order.paid",
    "order.cancelled",
    "order.refunded",
    "order.fulfilled",
    "order.delivered",
    "fulfillment.created",
    "return.requested",
    "return.received",
    "refund.created",
    "promotion.redeemed",
    "payment.authorized",
    "payment.captured",
    "payment.failed",
    "payment.refunded",
    "payment.refund_failed",
    "gift_card.created",
    "gift_card.debited",
    "gift_card.credited",
    "product.created",
    "product.updated",
    "product.deleted",
    "inventory.low_stock",
    "review.created",
    "user.created",
]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]
Url = Annotated[str, Meta(min_length=8, max_length=2000)]
Events = Annotated[list[EventType], Meta(min_length=1, max_length=len(EVENT_TYPES))]
Description = Annotated[str, Meta(max_length=500)]


class EventTypeList(Struct):
    """The event types an endpoint may subscribe to (every type Emporium emits)."""

    items: list[EventType]


class WebhookCreate(Struct, forbid_unknown_fields=True):
    """A new endpoint: where, and which events."""

    url: Url
    events: Events
    description: Description | None = None


class WebhookUpdate(Struct, forbid_unknown_fields=True):
    """Changes to an endpoint; absent fields stay as they are."""

    url: Url | UnsetType = UNSET
    events: Events | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    is_active: bool | UnsetType = UNSET


class WebhookRead(Struct):
    """An endpoint (its secret is never shown again)."""

    id: uuid.UUID
    url: str
    events: list[str]
    description: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookRead):
    """A new endpoint with its signing secret (``whsec_...``), shown this once."""

    secret: str = ""


class WebhookPage(Struct):
    """A keyset page of endpoints."""

    items: list[WebhookRead]
    next_cursor: str | None


class AttemptRead(Struct):
    """One HTTP attempt: status code (null when no answer came), error, duration."""

    attempted_at: datetime
    status_code: int | None
    duration_ms: int
    error: str | None


class DeliveryRead(Struct):
    """One event sent to one endpoint, with its attempts; ``next_retry_at`` is null when
    no retry is planned."""

    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    webhook_id: str
    status: str
    attempts: list[AttemptRead]
    next_retry_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(Struct):
    """A keyset page of deliveries, newest first."""

    items: list[DeliveryRead]
    next_cursor: str | None
