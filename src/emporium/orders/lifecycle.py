"""The order status machine: who may move an order where, and what a move does.

``pending → paid → fulfilled → delivered``, ``pending → cancelled``, ``paid → cancelled``,
``paid → refunded``. Every move is one conditional update (``WHERE status = :from``), so two
concurrent moves of one order cannot both happen and stock is returned at most once; every
move is recorded in ``order_status_change`` with who made it and when. Cancelling or refunding
returns the order's units through the ledger (``return`` movements): a refund can only follow
``paid``, before the goods left.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.identity import Caller
from emporium.accounts.protect import Vault
from emporium.core.clock import utcnow
from emporium.core.db.base import table_of
from emporium.inventory.service import return_stock
from emporium.jobs.outbox import emit_event
from emporium.orders.exceptions import CancelNotAllowed, InvalidTransition, OrderNotFound
from emporium.orders.models import Order, OrderLine, OrderStatusChange
from emporium.orders.queries import get_order
from emporium.orders.schemas import OrderRead
from emporium.orders.service import order_event_data

TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"paid", "cancelled"}),
    "paid": frozenset({"fulfilled", "cancelled", "refunded"}),
    "fulfilled": frozenset({"delivered"}),
    "delivered": frozenset(),
    "cancelled": frozenset(),
    "refunded": frozenset(),
}
RETURNS_STOCK = frozenset({"cancelled", "refunded"})
_O, _L = table_of(Order).c, table_of(OrderLine).c
RECORDS: dict[str, dict[str, Any]] = {
    "paid": {"payment_status": "paid", "paid_total": _O.total},
    "refunded": {"payment_status": "refunded", "refunded_total": _O.paid_total},
    "fulfilled": {"fulfillment_status": "fulfilled"},
    "delivered": {"fulfillment_status": "delivered"},
}
"""What a staff move records besides the status: a move to ``paid`` records the whole
total as paid, ``refunded`` the whole paid amount as refunded, ``fulfilled`` every unit as
shipped (``order_line.quantity_fulfilled``)."""


async def _visible(session: AsyncSession, identity: Caller, order_id: uuid.UUID) -> Any:
    row = (
        await session.execute(select(_O.id, _O.status, _O.customer_id).where(_O.id == order_id))
    ).first()
    if row is None or (not identity.is_staff and row.customer_id != identity.user_id):
        raise OrderNotFound("No such order.")
    return row


async def _move(
    session: AsyncSession, identity: Caller, order_id: uuid.UUID, current: str, to: str
) -> None:
    if to not in TRANSITIONS[current]:
        raise InvalidTransition(f"An order that is {current} cannot become {to}.")
    now = utcnow()
    moved = await session.execute(
        update(table_of(Order))
        .where(_O.id == order_id, _O.status == current)
        .values(status=to, updated_at=now, **RECORDS.get(to, {}))
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidTransition("The order changed at the same time; read it again.")
    if to == "fulfilled":
        await session.execute(
            update(table_of(OrderLine))
            .where(_L.order_id == order_id)
            .values(quantity_fulfilled=_L.quantity)
        )
    await session.execute(
        insert(table_of(OrderStatusChange)),
        [
            {
                "id": uuid.uuid4(),
                "order_id": order_id,
                "from_status": current,
                "to_status": to,
                "actor_id": identity.actor_id,
                "actor_role": identity.actor_role,
                "created_at": now,
            }
        ],
    )
    if to in RETURNS_STOCK:
        rows = await session.execute(
            select(_L.variant_id, _L.quantity).where(
                _L.order_id == order_id, _L.variant_id.is_not(None)
            )
        )
        quantities: dict[uuid.UUID, int] = {}
        for r in rows:
            quantities[r.variant_id] = quantities.get(r.variant_id, 0) + r.quantity
        await return_stock(
            session, quantities, order_id=order_id, actor_id=identity.actor_id, reason=f"order {to}"
        )


async def cancel_order(
    session: AsyncSession, vault: Vault, identity: Caller, order_id: uuid.UUID
) -> OrderRead:
    """Cancel an order and return its stock: its owner while ``pending``, staff while
    ``pending`` or ``paid``.

    Raises:
        OrderNotFound: (404) no such order, or another customer's.
        CancelNotAllowed: (403) the owner (not staff) cancelling a paid order.
        InvalidTransition: (409) the order can no longer be cancelled.
    """
    row = await _visible(session, identity, order_id)
    if not identity.is_staff and row.status == "paid":
        raise CancelNotAllowed("A paid order is cancelled by the shop; contact support.")
    await _move(session, identity, order_id, row.status, "cancelled")
    return await _announced(session, vault, identity, order_id)


async def transition_order(
    session: AsyncSession, vault: Vault, identity: Caller, order_id: uuid.UUID, to: str
) -> OrderRead:
    """Staff: move an order to ``to`` (refunding returns the stock).

    Raises:
        OrderNotFound: (404) no such order.
        InvalidTransition: (409) the status machine does not allow the move from the
            order's current status, or the order moved at the same time.
    """
    row = await _visible(session, identity, order_id)
    await _move(session, identity, order_id, row.status, to)
    return await _announced(session, vault, identity, order_id)


async def _announced(
    session: AsyncSession, vault: Vault, identity: Caller, order_id: uuid.UUID
) -> OrderRead:
    """The order after a move, with its ``order.<status>`` event in the same transaction."""
    order = await get_order(session, vault, identity, order_id)
    emit_event(
        session,
        f"order.{order.status}",
        order_event_data(
            order.id,
            order.number,
            order.customer_id,
            order.status,
            order,
            order.currency,
            order.items,
        ),
    )
    return order
