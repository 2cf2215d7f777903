"""Helpers for returns tests: a shop with tax, a sale and a shipping method; a paid order;
and, until fulfilments merge, shipping and delivering an order straight in the database."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.core.clock import utcnow
from emporium.core.db.base import table_of
from emporium.orders.models import Order, OrderLine, OrderStatusChange
from factories import API, Client
from orders.support import order, stocked_variants
from payments.support import pay_in_full

Json = dict[str, Any]
STOCK = 10


async def set_up_shop(client: Client, staff: dict[str, str]) -> str:
    """A 20 % tax rate for GB (shop prices exclude tax), a 10 % sale on everything, and a
    4.90 shipping method to GB; returns the method's id."""
    made = await client.post(
        f"{API}/tax-rates",
        json={"country": "GB", "rate_bp": 2000, "name": "VAT"},
        headers=staff,
    )
    assert made.status_code == 201, made.text
    sale = {"name": "Sale", "type": "percentage", "value": 1000, "combinable": True}
    made = await client.post(f"{API}/promotions", json=sale, headers=staff)
    assert made.status_code == 201, made.text
    zone = await client.post(
        f"{API}/shipping-zones", json={"name": "UK", "countries": ["GB"]}, headers=staff
    )
    assert zone.status_code == 201, zone.text
    method = await client.post(
        f"{API}/shipping-methods",
        json={"zone_id": zone.json()["id"], "name": "Royal Mail", "price": 490, "active": True},
        headers=staff,
    )
    assert method.status_code == 201, method.text
    return str(method.json()["id"])


async def paid_customer_order(
    client: Client,
    staff: dict[str, str],
    customer: dict[str, str],
    units: tuple[tuple[int, int], ...] = ((1999, 3), (500, 2)),
    method_id: str | None = None,
) -> tuple[Json, list[Json]]:
    """The customer's order of ``units`` (``(price, quantity)`` per line, each its own
    product stocked with :data:`STOCK`), paid in full by staff (``manual``). Returns the
    order as read after payment and the variants."""
    variants = []
    for price, _ in units:
        variants += await stocked_variants(client, staff, STOCK, price=price)
    extra = {"shipping_method_id": method_id} if method_id else {}
    placed = await order(
        client,
        customer,
        [(v["id"], q) for v, (_, q) in zip(variants, units, strict=True)],
        **extra,
    )
    assert placed.status_code == 201, placed.text
    await pay_in_full(client, placed.json()["id"], staff)
    return await read_order(client, placed.json()["id"], customer), variants


async def read_order(client: Client, order_id: str, headers: dict[str, str]) -> Json:
    """The order as its holder reads it."""
    read = await client.get(f"{API}/orders/{order_id}", headers=headers)
    assert read.status_code == 200, read.text
    body: Json = read.json()
    return body


async def ship_everything_in_db(
    session: AsyncSession, order_id: str, *, delivered_at: datetime | None = None
) -> None:
    """A shortcut for return tests that need a delivery at a chosen time (the window): every
    unit of the order shipped (``quantity_fulfilled = quantity``) and the order delivered at
    ``delivered_at`` (default now), written straight to the database with its status change.
    The fulfilment routes themselves are tested in tests/fulfilment and, end to end with a
    return, by the first-sale test."""
    oid = uuid.UUID(order_id)
    lines, orders = table_of(OrderLine), table_of(Order)
    await session.execute(
        update(lines).where(lines.c.order_id == oid).values(quantity_fulfilled=lines.c.quantity)
    )
    await session.execute(
        update(orders)
        .where(orders.c.id == oid)
        .values(status="delivered", fulfillment_status="delivered")
    )
    await session.execute(
        insert(table_of(OrderStatusChange)),
        [
            {
                "id": uuid.uuid4(),
                "order_id": oid,
                "from_status": "paid",
                "to_status": "delivered",
                "actor_id": None,
                "actor_role": "system",
                "created_at": delivered_at or utcnow(),
            }
        ],
    )
    await session.commit()


def return_body(*lines: tuple[str, int]) -> Json:
    """``POST /orders/{id}/returns`` for ``(order_line_id, quantity)`` pairs."""
    return {"lines": [{"order_line_id": i, "quantity": q, "reason": "too big"} for i, q in lines]}


async def ask_return(
    client: Client, order_id: str, headers: dict[str, str], *lines: tuple[str, int]
) -> Any:
    """POST /orders/{id}/returns."""
    return await client.post(
        f"{API}/orders/{order_id}/returns", json=return_body(*lines), headers=headers
    )


async def receive(
    client: Client, staff: dict[str, str], return_id: str, *lines: tuple[str, int, bool]
) -> Json:
    """Staff receive ``(order_line_id, quantity, restock)`` lines of a return."""
    body = {"lines": [{"order_line_id": i, "quantity": q, "restock": r} for i, q, r in lines]}
    answer = await client.post(f"{API}/returns/{return_id}/receive", json=body, headers=staff)
    assert answer.status_code == 200, answer.text
    result: Json = answer.json()
    return result


async def refund(
    client: Client, staff: dict[str, str], return_id: str, include_shipping: bool = False
) -> Any:
    """Staff refund a received return."""
    return await client.post(
        f"{API}/returns/{return_id}/refund",
        json={"include_shipping": include_shipping},
        headers=staff,
    )
