"""Order, stock and review events reach the outbox in the transaction of their change,
and only if it committed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import SignIn
from emporium.jobs.models import OutboxEvent
from factories import API, Client, assert_problem
from orders.support import order, stocked_variants
from payments.support import pay_in_full


async def _events(session: AsyncSession, prefix: str) -> list[tuple[str, dict[str, Any]]]:
    rows = await session.execute(
        select(OutboxEvent.type, OutboxEvent.data)
        .where(OutboxEvent.type.like(f"{prefix}%"))
        .order_by(OutboxEvent.occurred_at)
    )
    events = [(t, d) for t, d in rows]
    await session.rollback()
    return events


async def test_orders_announce_each_move_and_refusals_announce_nothing(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn, session: AsyncSession
) -> None:
    """order.created with the server's amounts (no address); paid and cancelled follow; a
    checkout refused for stock leaves no event."""
    (variant,) = await stocked_variants(client, admin_headers, 3, price=700)
    buyer = await sign_in()
    assert_problem(await order(client, buyer, [(variant["id"], 4)]), 409, "insufficient_stock")
    assert await _events(session, "order.") == []
    placed = (await order(client, buyer, [(variant["id"], 2)])).json()
    url = f"{API}/orders/{placed['id']}"
    await pay_in_full(client, placed["id"], admin_headers)
    await client.post(f"{url}/cancel", headers=admin_headers)
    events = await _events(session, "order.")
    assert [t for t, _ in events] == ["order.created", "order.paid", "order.cancelled"]
    created = events[0][1]
    assert created["order_id"] == placed["id"]
    assert created["customer_id"] == placed["customer_id"]
    assert created["total"] == 1400
    assert created["items"][0]["quantity"] == 2
    assert "London" not in str(created)


async def test_low_stock_is_announced_once_when_stock_crosses_the_threshold(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn, session: AsyncSession
) -> None:
    """Stock 7 to 5 (no event), to 4 (event), to 2 (no second event)."""
    (variant,) = await stocked_variants(client, admin_headers, 7)
    buyer = await sign_in()
    for quantity in (2, 1, 2):
        assert (await order(client, buyer, [(variant["id"], quantity)])).status_code == 201
    events = await _events(session, "inventory.")
    assert [(t, d["stock"]) for t, d in events] == [("inventory.low_stock", 4)]
    assert events[0][1]["variant_id"] == variant["id"]


async def test_a_posted_review_is_announced(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn, session: AsyncSession
) -> None:
    """review.created carries the review and product ids."""
    (variant,) = await stocked_variants(client, admin_headers, 5)
    response = await client.post(
        f"{API}/products/{variant['product_id']}/reviews",
        json={"rating": 5, "body": "Great."},
        headers=await sign_in(),
    )
    assert response.status_code == 201
    events = await _events(session, "review.")
    assert [(t, d["review_id"]) for t, d in events] == [("review.created", response.json()["id"])]
