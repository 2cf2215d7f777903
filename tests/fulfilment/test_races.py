"""Two staff shipping the same line at once can never ship it twice: real concurrent
clients on a real database (both kinds)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.core.config import Settings
from emporium.fulfilment.models import Fulfillment, FulfillmentLine
from emporium.orders.models import OrderStatusChange
from factories import Client, assert_problem, at_once
from fulfilment.support import paid_order, read_order, ship, ship_body

STAFF_AT_ONCE = 10
UNITS = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test settings without the general rate limit (every racer is 127.0.0.1)."""
    return settings.model_copy(update={"rate_limit_general": ""})


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(2))
async def test_ten_staff_shipping_one_unit_of_a_three_unit_line_ship_exactly_three(
    client: Client, admin_headers: dict[str, str], session: AsyncSession, round_: int
) -> None:
    order, _ = await paid_order(client, admin_headers, quantity=UNITS)
    body = ship_body(order["items"][0]["id"], 1)
    path = f"/orders/{order['id']}/fulfillments"
    answers = await at_once(client, *(("POST", path, admin_headers, body),) * STAFF_AT_ONCE)

    assert sorted(a.status_code for a in answers) == [201] * UNITS + [409] * (STAFF_AT_ONCE - UNITS)
    for answer in answers:
        if answer.status_code == 409:
            assert_problem(answer, 409, "fulfillment_exceeds_ordered")
    shown = await read_order(client, order["id"], admin_headers)
    assert [i["quantity_fulfilled"] for i in shown["items"]] == [UNITS]
    assert (shown["status"], shown["fulfillment_status"]) == ("fulfilled", "fulfilled")
    order_id = uuid.UUID(order["id"])
    parcels = await session.scalar(
        select(func.count()).select_from(Fulfillment).where(Fulfillment.order_id == order_id)
    )
    assert parcels == UNITS
    units = await session.scalar(select(func.sum(FulfillmentLine.quantity)))
    assert units == UNITS
    moves = await session.scalar(
        select(func.count())
        .select_from(OrderStatusChange)
        .where(OrderStatusChange.order_id == order_id, OrderStatusChange.to_status == "fulfilled")
    )
    assert moves == 1


@pytest.mark.slow
async def test_the_last_two_parcels_delivered_at_once_deliver_the_order_once(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    """Two staff mark the two parcels of a fulfilled order delivered at the same moment:
    each sees the other's parcel either on its way or delivered, never both missed, so the
    order becomes ``delivered`` exactly once."""
    order, _ = await paid_order(client, admin_headers, quantity=2)
    line = order["items"][0]["id"]
    parcels = []
    for _ in range(2):
        made = await ship(client, order["id"], admin_headers, ship_body(line, 1))
        assert made.status_code == 201, made.text
        parcels.append(made.json()["id"])
    calls = [("POST", f"/fulfillments/{p}/delivered", admin_headers, None) for p in parcels]
    answers = await at_once(client, *calls, *calls)
    assert sorted(a.status_code for a in answers) == [200, 200, 409, 409]
    shown = await read_order(client, order["id"], admin_headers)
    assert (shown["status"], shown["fulfillment_status"]) == ("delivered", "delivered")
    moves = await session.scalar(
        select(func.count())
        .select_from(OrderStatusChange)
        .where(
            OrderStatusChange.order_id == uuid.UUID(order["id"]),
            OrderStatusChange.to_status == "delivered",
        )
    )
    assert moves == 1
