"""Staff ship a paid order in parcels with tracking (../shared/API.md, Fulfilment and
returns): the lines' ``quantity_fulfilled`` and the order's ``fulfillment_status`` and
``status`` follow, never more than ordered ships, and the order is delivered with its last
parcel."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.fulfilment.models import Fulfillment
from factories import API, Client, assert_problem
from fulfilment.support import TRACKING, paid_order, read_order, ship, ship_body
from orders.support import balance, ledger
from payments.support import guest_order


def _shipped(order: dict[str, Any]) -> list[int]:
    return [item["quantity_fulfilled"] for item in order["items"]]


async def test_partial_then_full_fulfilment_then_delivery_move_the_order(
    client: Client, admin_headers: dict[str, str]
) -> None:
    order, guest = await paid_order(client, admin_headers, quantity=3)
    line = order["items"][0]["id"]

    first = await ship(client, order["id"], admin_headers, ship_body(line, 1, tracking=TRACKING))
    assert first.status_code == 201, first.text
    parcel = first.json()
    assert parcel["status"] == "shipped"
    assert parcel["lines"] == [{"order_line_id": line, "quantity": 1}]
    assert (parcel["carrier"], parcel["tracking_url"]) == ("DHL", TRACKING["tracking_url"])
    assert parcel["delivered_at"] is None
    after_one = await read_order(client, order["id"], guest)
    assert (after_one["status"], after_one["fulfillment_status"]) == (
        "paid",
        "partially_fulfilled",
    )
    assert _shipped(after_one) == [1]

    second = await ship(client, order["id"], admin_headers, ship_body(line, 2))
    assert second.status_code == 201, second.text
    after_all = await read_order(client, order["id"], guest)
    assert (after_all["status"], after_all["fulfillment_status"]) == ("fulfilled", "fulfilled")
    assert _shipped(after_all) == [3]
    moves = [(m["from_status"], m["to_status"], m["by"]) for m in after_all["status_history"]]
    assert moves[-1] == ("paid", "fulfilled", "staff")

    listed = await client.get(f"{API}/orders/{order['id']}/fulfillments", headers=admin_headers)
    assert listed.status_code == 200, listed.text
    assert [p["id"] for p in listed.json()["items"]] == [parcel["id"], second.json()["id"]]

    delivered = await client.post(
        f"{API}/fulfillments/{parcel['id']}/delivered", headers=admin_headers
    )
    assert delivered.status_code == 200, delivered.text
    assert delivered.json()["status"] == "delivered"
    assert delivered.json()["delivered_at"] is not None
    one_left = await read_order(client, order["id"], guest)
    assert one_left["status"] == "fulfilled"  # the second parcel is still on its way

    last = await client.post(
        f"{API}/fulfillments/{second.json()['id']}/delivered", headers=admin_headers
    )
    assert last.status_code == 200, last.text
    done = await read_order(client, order["id"], guest)
    assert (done["status"], done["fulfillment_status"]) == ("delivered", "delivered")
    assert done["status_history"][-1]["to_status"] == "delivered"

    again = await client.post(f"{API}/fulfillments/{parcel['id']}/delivered", headers=admin_headers)
    assert_problem(again, 409, "fulfillment_already_delivered")


async def test_parcels_delivered_before_the_last_one_ships_leave_the_order_fulfilled(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """A parcel delivered while units still wait does not deliver the order; once the last
    unit ships the order is ``fulfilled`` (its last parcel still on the way)."""
    order, _ = await paid_order(client, admin_headers, quantity=2)
    line = order["items"][0]["id"]
    first = await ship(client, order["id"], admin_headers, ship_body(line, 1))
    await client.post(f"{API}/fulfillments/{first.json()['id']}/delivered", headers=admin_headers)
    assert (await read_order(client, order["id"], admin_headers))["status"] == "paid"
    await ship(client, order["id"], admin_headers, ship_body(line, 1))
    shown = await read_order(client, order["id"], admin_headers)
    assert (shown["status"], shown["fulfillment_status"]) == ("fulfilled", "fulfilled")


async def test_shipping_more_than_ordered_is_refused_naming_the_line_and_changes_nothing(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    order, _ = await paid_order(client, admin_headers, quantity=3)
    line = order["items"][0]["id"]
    assert (await ship(client, order["id"], admin_headers, ship_body(line, 2))).status_code == 201

    refused = await ship(client, order["id"], admin_headers, ship_body(line, 2, tracking=TRACKING))
    problem = assert_problem(refused, 409, "fulfillment_exceeds_ordered")
    assert problem["lines"] == [
        {"order_line_id": line, "sku": order["items"][0]["sku"], "requested": 2, "available": 1}
    ]
    # The same line named twice counts once, with the sum.
    twice = {
        "lines": [{"order_line_id": line, "quantity": 1}, {"order_line_id": line, "quantity": 1}],
        "notify_customer": False,
    }
    assert_problem(await ship(client, order["id"], admin_headers, twice), 409)
    shown = await read_order(client, order["id"], admin_headers)
    assert _shipped(shown) == [2]
    assert (shown["status"], shown["fulfillment_status"]) == ("paid", "partially_fulfilled")
    parcels = (await session.scalars(select(Fulfillment.id))).all()
    assert len(parcels) == 1


async def test_a_line_of_another_order_is_refused(
    client: Client, admin_headers: dict[str, str]
) -> None:
    order, _ = await paid_order(client, admin_headers, quantity=1)
    other, _ = await paid_order(client, admin_headers, quantity=1)
    refused = await ship(client, order["id"], admin_headers, ship_body(other["items"][0]["id"], 1))
    assert_problem(refused, 422, "order_line_not_found")
    assert _shipped(await read_order(client, other["id"], admin_headers)) == [0]


async def test_an_unpaid_order_does_not_ship(client: Client, admin_headers: dict[str, str]) -> None:
    order, guest = await guest_order(client, admin_headers, quantity=1)
    refused = await ship(client, order["id"], admin_headers, ship_body(order["items"][0]["id"], 1))
    assert_problem(refused, 409, "order_not_fulfillable")
    shown = await read_order(client, order["id"], guest)
    assert (shown["status"], shown["fulfillment_status"]) == ("pending", "unfulfilled")
    assert _shipped(shown) == [0]

    cancelled = await client.post(f"{API}/orders/{order['id']}/cancel", headers=admin_headers)
    assert cancelled.status_code == 200, cancelled.text
    again = await ship(client, order["id"], admin_headers, ship_body(order["items"][0]["id"], 1))
    assert_problem(again, 409, "order_not_fulfillable")


async def test_missing_orders_and_parcels_are_404(
    client: Client, admin_headers: dict[str, str]
) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    body = ship_body(missing, 1)
    assert_problem(await ship(client, missing, admin_headers, body), 404, "order_not_found")
    listed = await client.get(f"{API}/orders/{missing}/fulfillments", headers=admin_headers)
    assert_problem(listed, 404, "order_not_found")
    delivered = await client.post(f"{API}/fulfillments/{missing}/delivered", headers=admin_headers)
    assert_problem(delivered, 404, "fulfillment_not_found")


@pytest.mark.parametrize(
    "url",
    [
        "http://www.dhl.com/track?id=1",
        "javascript:alert(1)",
        "https://",
        "https://user:secret@www.dhl.com/track",
        "https://www.dhl.com/track id=1",
        "https://www.dhl.com/\u00e9",
        "https://www.dhl.com/track\r\nX: y",
        "ftp://www.dhl.com/track",
        "//www.dhl.com/track",
        "https://www.dhl.com/" + "a" * 2000,
    ],
)
async def test_a_tracking_url_is_https_and_sane_or_refused(
    client: Client, admin_headers: dict[str, str], url: str
) -> None:
    order, _ = await paid_order(client, admin_headers, quantity=1)
    body = ship_body(order["items"][0]["id"], 1, tracking={"tracking_url": url})
    assert_problem(await ship(client, order["id"], admin_headers, body), 422)
    shown = await read_order(client, order["id"], admin_headers)
    assert (_shipped(shown), shown["fulfillment_status"]) == ([0], "unfulfilled")


async def test_a_staff_fulfilled_move_ships_every_unit_so_nothing_more_ships(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """The v1 staff transition and fulfilments agree: ``fulfilled`` by hand records every
    unit as shipped, and a parcel after it would ship more than was ordered."""
    order, _ = await paid_order(client, admin_headers, quantity=2)
    moved = await client.post(
        f"{API}/orders/{order['id']}/transitions",
        json={"to": "fulfilled"},
        headers=admin_headers,
    )
    assert moved.status_code == 200, moved.text
    assert _shipped(moved.json()) == [2]
    refused = await ship(client, order["id"], admin_headers, ship_body(order["items"][0]["id"], 1))
    assert_problem(refused, 409, "fulfillment_exceeds_ordered")


async def test_an_order_with_shipped_units_is_not_cancelled(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """Cancelling returns every unit to stock: once a parcel left, staff cannot cancel (the
    contract: staff cancel while nothing is fulfilled)."""
    order, _ = await paid_order(client, admin_headers, quantity=2)
    shipped = await ship(client, order["id"], admin_headers, ship_body(order["items"][0]["id"], 1))
    assert shipped.status_code == 201, shipped.text
    refused = await client.post(f"{API}/orders/{order['id']}/cancel", headers=admin_headers)
    assert_problem(refused, 409, "invalid_transition")
    shown = await read_order(client, order["id"], admin_headers)
    assert (shown["status"], shown["fulfillment_status"]) == ("paid", "partially_fulfilled")


async def test_refunding_a_partly_shipped_order_restocks_only_what_never_shipped(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """3 units of a line of 10 in stock (7 left), 1 shipped; staff refund everything: the
    order is ``refunded`` and the 2 units that never left come back (9 in stock), not the
    one in the parcel, which comes back only through a return."""
    order, _ = await paid_order(client, admin_headers, quantity=3)
    line = order["items"][0]
    shipped = await ship(client, order["id"], admin_headers, ship_body(line["id"], 1))
    assert shipped.status_code == 201, shipped.text
    refunded = await client.post(
        f"{API}/orders/{order['id']}/refunds",
        json={"amount": order["total"], "reason": "customer changed their mind"},
        headers=admin_headers,
    )
    assert refunded.status_code == 201, refunded.text
    shown = await read_order(client, order["id"], admin_headers)
    assert (shown["status"], shown["payment_status"]) == ("refunded", "refunded")
    movements = balance(await ledger(client, admin_headers, line["variant_id"]))
    assert sum(movements.values()) == 9
    assert movements["sale"] == -3
