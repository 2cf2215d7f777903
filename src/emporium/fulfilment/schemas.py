"""API shapes of the fulfilment room (``../shared/API.md``, Fulfilment and returns).

A tracking URL is an absolute ``https`` URL of at most 2000 characters: a host name (or
address) without user information, an optional port, then printable ASCII only; anything
else (``http``, ``javascript:``, spaces, control characters) is refused with 422, since the
link is put in front of the customer in an e-mail (OWASP ASVS 5.1.4)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct

from emporium.fulfilment.models import TRACKING_URL_MAX

FulfillmentStatus = Literal["shipped", "delivered"]
HTTPS_URL = (
    r"^https://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
    r"(?::[0-9]{1,5})?(?:[/?#][!-~]*)?$"
)
TrackingUrl = Annotated[
    str,
    Meta(
        min_length=9,
        max_length=TRACKING_URL_MAX,
        pattern=HTTPS_URL,
        description="an https URL (at most 2000 characters) where the parcel is tracked",
    ),
]
Label = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
Quantity = Annotated[int, Meta(ge=1, le=1_000_000, description="units, >= 1")]


class FulfillmentLineIn(Struct, forbid_unknown_fields=True):
    """``quantity`` units of the order's line ``order_line_id`` go into the parcel."""

    order_line_id: uuid.UUID
    quantity: Quantity


class FulfillmentCreate(Struct, forbid_unknown_fields=True):
    """``POST /orders/{id}/fulfillments``: the units in the parcel (a line named twice
    counts once with the sum), how to track it, and whether the customer is told by
    e-mail."""

    lines: Annotated[list[FulfillmentLineIn], Meta(min_length=1, max_length=100)]
    notify_customer: bool
    carrier: Label | None = None
    tracking_number: Label | None = None
    tracking_url: TrackingUrl | None = None


class FulfillmentLineRead(Struct):
    """Units of one order line in a parcel."""

    order_line_id: uuid.UUID
    quantity: int


class FulfillmentRead(Struct):
    """A parcel of an order: what it carries and how to track it; ``delivered_at`` is null
    until it is delivered."""

    id: uuid.UUID
    order_id: uuid.UUID
    status: FulfillmentStatus
    carrier: str | None
    tracking_number: str | None
    tracking_url: str | None
    lines: list[FulfillmentLineRead]
    shipped_at: datetime
    delivered_at: datetime | None
    created_at: datetime


class FulfillmentList(Struct):
    """An order's parcels, oldest first."""

    items: list[FulfillmentRead]
