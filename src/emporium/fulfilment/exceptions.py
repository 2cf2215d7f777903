"""Errors of the fulfilment room, each with a stable code."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from emporium.core.errors import Conflict, InvalidInput, NotFound


class FulfillmentNotFound(NotFound):
    """No such parcel."""

    code = "fulfillment_not_found"


class OrderNotFulfillable(Conflict):
    """The order is not paid (pending, cancelled or refunded): nothing of it may ship."""

    code, title = "order_not_fulfillable", "Order not fulfillable"


class FulfillmentExceedsOrdered(Conflict):
    """A line would ship more units than were ordered (counting those already shipped);
    ``lines`` names each such line as ``{order_line_id, sku, requested, available}``."""

    code, title = "fulfillment_exceeds_ordered", "More than ordered"

    def __init__(self, detail: str, *, lines: Sequence[dict[str, Any]]) -> None:
        super().__init__(detail, extra={"lines": [dict(line) for line in lines]})


class UnknownOrderLine(InvalidInput):
    """A line of the request is not a line of the order."""

    code = "order_line_not_found"


class AlreadyDelivered(Conflict):
    """The parcel was marked delivered before."""

    code, title = "fulfillment_already_delivered", "Already delivered"
