"""API shapes of the returns room (``../shared/API.md``, Fulfilment and returns). Quantities
are whole units (at least 1); amounts are integers in the order's currency's minor unit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct

ReturnStatus = Literal["requested", "received", "refunded"]
Units = Annotated[int, Meta(ge=1, le=1_000_000, description="whole units, >= 1")]
Reason = Annotated[str, Meta(max_length=500)]
MAX_LINES = 200


class ReturnLineCreate(Struct, forbid_unknown_fields=True):
    """Units of one order line to send back, and why."""

    order_line_id: uuid.UUID
    quantity: Units
    reason: Reason = ""


class ReturnCreate(Struct, forbid_unknown_fields=True):
    """``POST /orders/{id}/returns``: the lines to send back (each order line once) and,
    optionally, a reason for the whole return."""

    lines: Annotated[list[ReturnLineCreate], Meta(min_length=1, max_length=MAX_LINES)]
    reason: Reason | None = None


class ReceiveLine(Struct, forbid_unknown_fields=True):
    """Units of one order line counted in: ``restock`` puts them back on the shelf (a
    ``returned`` stock movement); false for damaged units."""

    order_line_id: uuid.UUID
    quantity: Units
    restock: bool = True


class ReturnReceive(Struct, forbid_unknown_fields=True):
    """``POST /returns/{id}/receive``: what arrived, line by line. Lines of the return not
    listed arrived with nothing; units asked for and not received are released."""

    lines: Annotated[list[ReceiveLine], Meta(min_length=1, max_length=MAX_LINES)]


class ReturnRefund(Struct, forbid_unknown_fields=True):
    """``POST /returns/{id}/refund``: ``include_shipping`` gives the order's shipping back
    too (its price, and its tax when prices exclude tax), once per order."""

    include_shipping: bool = False


class ReturnLineRead(Struct):
    """A line of a return: units asked for, received, and restocked."""

    order_line_id: uuid.UUID
    quantity: int
    quantity_received: int
    restocked: int
    reason: str


class ReturnRead(Struct):
    """A return. ``amount_refunded`` is in minor units of ``currency``; ``refund_id`` is
    the first refund sent for it (``GET /orders/{id}/refunds`` lists every one)."""

    id: uuid.UUID
    order_id: uuid.UUID
    status: ReturnStatus
    requested_by: str
    reason: str | None
    lines: list[ReturnLineRead]
    amount_refunded: int
    currency: str
    include_shipping: bool
    refund_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class ReturnList(Struct):
    """An order's returns, oldest first (an order has a handful: no pagination)."""

    items: list[ReturnRead]
