"""Shipping parcels and marking them delivered (staff verbs).

Every write locks the order first (``orders.lifecycle.lock_order``), so the fulfilments and
status moves of one order run one after the other and never deadlock. Units ship by one
conditional update per line (``orders.lifecycle.ship_units``): two staff shipping the same
line at once can never ship more than was ordered, and the table's CHECK backs it. The order
follows through ``orders.lifecycle``: ``partially_fulfilled`` while units wait, ``fulfilled``
(``order.fulfilled``) when the last unit ships, ``delivered`` (``order.delivered``) when the
last parcel of a fulfilled order is delivered. ``fulfillment.created`` carries the parcel
(ids, carrier and tracking, no personal data) and whether the customer is to be told.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.identity import Caller
from emporium.accounts.protect import Vault
from emporium.core.clock import utcnow
from emporium.core.db.base import table_of
from emporium.fulfilment.exceptions import (
    AlreadyDelivered,
    FulfillmentExceedsOrdered,
    FulfillmentNotFound,
    OrderNotFulfillable,
    UnknownOrderLine,
)
from emporium.fulfilment.models import Fulfillment, FulfillmentLine
from emporium.fulfilment.queries import get_fulfillment
from emporium.fulfilment.schemas import FulfillmentCreate, FulfillmentLineIn, FulfillmentRead
from emporium.jobs.outbox import emit_event
from emporium.orders import lifecycle
from emporium.orders.exceptions import OrderNotFound
from emporium.orders.models import OrderLine

CREATED_EVENT = "fulfillment.created"
_F, _FL, _L = table_of(Fulfillment).c, table_of(FulfillmentLine).c, table_of(OrderLine).c


def _merged(lines: list[FulfillmentLineIn]) -> dict[uuid.UUID, int]:
    """Units per order line, a line named twice counted once with the sum; sorted by id,
    so concurrent multi-line shipments touch lines in one order."""
    units: dict[uuid.UUID, int] = {}
    for line in lines:
        units[line.order_line_id] = units.get(line.order_line_id, 0) + line.quantity
    return dict(sorted(units.items()))


async def _refuse(
    session: AsyncSession, order_id: uuid.UUID, wanted: dict[uuid.UUID, int], short: list[uuid.UUID]
) -> None:
    """Raise the answer to a shipment some lines of which could not take their units:
    UnknownOrderLine (422) for a line that is not the order's, else
    FulfillmentExceedsOrdered (409) naming each line short of units."""
    rows = {
        r.id: r
        for r in await session.execute(
            select(_L.id, _L.sku, _L.quantity, _L.quantity_fulfilled).where(
                _L.id.in_(short), _L.order_id == order_id
            )
        )
    }
    unknown = [line for line in short if line not in rows]
    if unknown:
        raise UnknownOrderLine(
            f"Order line {unknown[0]} is not a line of this order.",
            errors=[{"loc": ["body", "lines"], "msg": f"no order line {unknown[0]}"}],
        )
    lines = [
        {
            "order_line_id": str(line),
            "sku": rows[line].sku,
            "requested": wanted[line],
            "available": rows[line].quantity - rows[line].quantity_fulfilled,
        }
        for line in short
    ]
    named = ", ".join(f"{rows[line].sku or line}" for line in short)
    raise FulfillmentExceedsOrdered(f"More units than are left to ship: {named}.", lines=lines)


async def _event_data(
    session: AsyncSession, order: Any, order_id: uuid.UUID, parcel: FulfillmentRead, notify: bool
) -> dict[str, Any]:
    """The data of ``fulfillment.created``: the parcel, its lines with SKU and title, the
    order's number and customer, and ``notify_customer``."""
    titles = {
        r.id: r
        for r in await session.execute(
            select(_L.id, _L.sku, _L.title).where(
                _L.id.in_([line.order_line_id for line in parcel.lines])
            )
        )
    }
    return {
        "fulfillment_id": str(parcel.id),
        "order_id": str(order_id),
        "number": order.number,
        "customer_id": str(order.customer_id) if order.customer_id else None,
        "status": parcel.status,
        "carrier": parcel.carrier,
        "tracking_number": parcel.tracking_number,
        "tracking_url": parcel.tracking_url,
        "notify_customer": notify,
        "lines": [
            {
                "order_line_id": str(line.order_line_id),
                "sku": titles[line.order_line_id].sku,
                "title": titles[line.order_line_id].title,
                "quantity": line.quantity,
            }
            for line in parcel.lines
        ],
    }


async def create_fulfillment(
    session: AsyncSession,
    vault: Vault,
    caller: Caller,
    order_id: uuid.UUID,
    data: FulfillmentCreate,
) -> FulfillmentRead:
    """Staff: ship ``data.lines`` of a paid order in one parcel, with its tracking.

    The order becomes ``partially_fulfilled``, or ``fulfilled`` when no unit is left to ship
    (``order.fulfilled``); ``fulfillment.created`` is announced (and e-mailed to the
    customer when ``data.notify_customer``).

    Raises:
        OrderNotFound: (404) no such order.
        OrderNotFulfillable: (409) the order is not paid (pending, cancelled, refunded).
        UnknownOrderLine: (422) a line is not the order's.
        FulfillmentExceedsOrdered: (409) a line would ship more than was ordered, counting
            what shipped before; nothing changes.
    """
    order = await lifecycle.lock_order(session, order_id)
    if order is None:
        raise OrderNotFound("No such order.")
    if order.status not in lifecycle.FULFILLABLE:
        raise OrderNotFulfillable(f"An order that is {order.status} does not ship.")
    wanted = _merged(data.lines)
    short = [
        line
        for line, units in wanted.items()
        if not await lifecycle.ship_units(session, order_id, line, units)
    ]
    if short:
        await _refuse(session, order_id, wanted, short)
    parcel = await _record_parcel(session, caller, order_id, data, wanted)
    emit_event(
        session,
        CREATED_EVENT,
        await _event_data(session, order, order_id, parcel, data.notify_customer),
    )
    actor = (caller.actor_id, caller.actor_role)
    if await lifecycle.units_left(session, order_id) == 0:
        await lifecycle.record_fulfilled(session, vault, order_id, actor=actor)
    else:
        await lifecycle.set_fulfillment_status(session, order_id, "partially_fulfilled")
    return parcel


async def _record_parcel(
    session: AsyncSession,
    caller: Caller,
    order_id: uuid.UUID,
    data: FulfillmentCreate,
    wanted: dict[uuid.UUID, int],
) -> FulfillmentRead:
    """Write the ``fulfillment`` row and its lines; returns the parcel as the API shows it."""
    parcel_id, now = uuid.uuid4(), utcnow()
    await session.execute(
        insert(table_of(Fulfillment)),
        [
            {
                "id": parcel_id,
                "order_id": order_id,
                "carrier": data.carrier,
                "tracking_number": data.tracking_number,
                "tracking_url": data.tracking_url,
                "status": "shipped",
                "shipped_at": now,
                "delivered_at": None,
                "created_by": caller.actor_id,
                "created_at": now,
            }
        ],
    )
    await session.execute(
        insert(table_of(FulfillmentLine)),
        [
            {"fulfillment_id": parcel_id, "order_line_id": line, "quantity": units}
            for line, units in wanted.items()
        ],
    )
    parcel = await get_fulfillment(session, parcel_id)
    assert parcel is not None  # written just above, in this transaction
    return parcel


async def mark_delivered(
    session: AsyncSession, vault: Vault, caller: Caller, fulfillment_id: uuid.UUID
) -> FulfillmentRead:
    """Staff: the parcel arrived. When it was the last parcel on its way of a ``fulfilled``
    order, the order becomes ``delivered`` (``order.delivered``).

    Raises:
        FulfillmentNotFound: (404) no such parcel.
        AlreadyDelivered: (409) it was marked delivered before; nothing changes.
    """
    moved = await session.execute(
        update(table_of(Fulfillment))
        .where(_F.id == fulfillment_id, _F.status == "shipped")
        .values(status="delivered", delivered_at=utcnow())
    )
    order_id = await session.scalar(select(_F.order_id).where(_F.id == fulfillment_id))
    if order_id is None:
        raise FulfillmentNotFound("No such fulfillment.")
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise AlreadyDelivered("This parcel was marked delivered before.")
    await lifecycle.lock_order(session, order_id)
    on_the_way = await session.scalar(
        select(func.count()).where(_F.order_id == order_id, _F.status == "shipped")
    )
    if not on_the_way:
        actor = (caller.actor_id, caller.actor_role)
        await lifecycle.record_delivered(session, vault, order_id, actor=actor)
    parcel = await get_fulfillment(session, fulfillment_id)
    assert parcel is not None  # read just above, in this transaction
    return parcel
