"""Helpers for fulfilment tests: a paid guest order and shipping some of it.

Imported by tests as ``fulfilment.support``."""

from __future__ import annotations

from typing import Any

from factories import API, Client
from payments.support import guest_order, pay_in_full

Json = dict[str, Any]
TRACKING = {
    "carrier": "DHL",
    "tracking_number": "JD014600006281230704",
    "tracking_url": "https://www.dhl.com/track?id=JD014600006281230704",
}


async def paid_order(
    client: Client, staff: dict[str, str], quantity: int = 3
) -> tuple[Json, dict[str, str]]:
    """A guest's order of one line of ``quantity`` units, paid in full: the order (as
    staff read it after payment) and the guest's ``Order-Token`` headers."""
    order, guest = await guest_order(client, staff, quantity=quantity)
    await pay_in_full(client, order["id"], staff)
    return await read_order(client, order["id"], staff), guest


async def read_order(client: Client, order_id: str, headers: dict[str, str]) -> Json:
    """GET /orders/{id}."""
    response = await client.get(f"{API}/orders/{order_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


def ship_body(
    line_id: str, quantity: int, *, notify: bool = False, tracking: dict[str, str] | None = None
) -> Json:
    """The body of POST /orders/{id}/fulfillments for ``quantity`` units of one line, with
    ``tracking`` (carrier, tracking number, tracking URL)."""
    return {
        "lines": [{"order_line_id": line_id, "quantity": quantity}],
        "notify_customer": notify,
        **(tracking or {}),
    }


async def ship(client: Client, order_id: str, staff: dict[str, str], body: Json) -> Any:
    """POST /orders/{id}/fulfillments with ``body``."""
    return await client.post(f"{API}/orders/{order_id}/fulfillments", json=body, headers=staff)
