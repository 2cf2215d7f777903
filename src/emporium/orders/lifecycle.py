"""The order status machine: who may move an order where, and what a move does.

``pending → paid → fulfilled → delivered``, ``pending → cancelled``, ``paid → cancelled``,
``paid → refunded``. Staff move orders along :data:`STAFF_TRANSITIONS`; ``paid`` and
``refunded`` are reached only through payments (:func:`record_paid`, :func:`record_refunded`,
called by the payments room when money is captured or given back); an unpaid order past its
``expires_at`` is cancelled by payments' expiry job (:func:`record_expired`). The fulfilment
room ships units with :func:`ship_units` (one conditional update per line) and moves the
order with :func:`record_fulfilled` and :func:`record_delivered`; a staff ``fulfilled`` move
records every unit as shipped, so the two ways agree. Every move is one
conditional update (``WHERE status = :from``), so two concurrent moves of one order cannot
both happen and stock is returned at most once; every move is recorded in
``order_status_change`` with who made it and when. Cancelling or refunding returns the
order's units through the ledger (``return`` movements): a refund can only follow ``paid``,
before the goods left.
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
from emporium.inventory.service import return_stock
from emporium.jobs.outbox import emit_event
from emporium.orders.exceptions import CancelNotAllowed, InvalidTransition, OrderNotFound
from emporium.orders.models import Order, OrderLine, OrderStatusChange
from emporium.orders.promoting import give_back
from emporium.orders.queries import get_order, read_order
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
STAFF_TRANSITIONS: dict[str, frozenset[str]] = {
    status: targets - {"paid", "refunded"} for status, targets in TRANSITIONS.items()
}
"""The moves staff make by hand: every move but to ``paid`` and ``refunded``, which only
payments make (a staff-recorded ``manual`` payment included)."""
RETURNS_STOCK = frozenset({"cancelled", "refunded"})
_O, _L = table_of(Order).c, table_of(OrderLine).c
RECORDS: dict[str, dict[str, Any]] = {
    "fulfilled": {"fulfillment_status": "fulfilled"},
    "delivered": {"fulfillment_status": "delivered"},
}
"""What a staff move records besides the status: ``fulfilled`` every unit as shipped
(``order_line.quantity_fulfilled``)."""


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
    if to in ("paid", "refunded"):
        raise InvalidTransition(
            f"An order becomes {to} only through payments (POST /orders/{{id}}/payments, "
            "POST /orders/{id}/refunds)."
        )
    if to not in STAFF_TRANSITIONS[current]:
        raise InvalidTransition(f"An order that is {current} cannot become {to}.")
    now = utcnow()
    moved = await session.execute(
        update(table_of(Order))
        .where(_O.id == order_id, _O.status == current, *_CONDITIONS.get(to, ()))
        .values(status=to, updated_at=now, **RECORDS.get(to, {}))
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        if to == "cancelled" and await _has_shipped(session, order_id):
            raise InvalidTransition("Units of this order have shipped: it cannot be cancelled.")
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
        await _return_units(session, order_id, identity.actor_id, f"order {to}")
    if to == "cancelled":
        await give_back(session, order_id)


_CONDITIONS: dict[str, tuple[Any, ...]] = {
    "cancelled": (_O.fulfillment_status == "unfulfilled",),
}
"""What a staff move needs besides the status, checked in its conditional update: an order
is cancelled only while nothing of it has shipped (a fulfilment holds the order's lock
while it ships, so the two never cross)."""


async def _has_shipped(session: AsyncSession, order_id: uuid.UUID) -> bool:
    """Whether any unit of the order has shipped."""
    status = await session.scalar(select(_O.fulfillment_status).where(_O.id == order_id))
    return status not in (None, "unfulfilled")


async def _return_units(
    session: AsyncSession, order_id: uuid.UUID, actor_id: uuid.UUID | None, reason: str
) -> None:
    """Return every unit of the order that never shipped to stock through the ledger
    (shipped units come back only through a return, when received)."""
    rows = await session.execute(
        select(_L.variant_id, _L.quantity - _L.quantity_fulfilled).where(
            _L.order_id == order_id, _L.variant_id.is_not(None)
        )
    )
    quantities: dict[uuid.UUID, int] = {}
    for variant_id, unshipped in rows:
        if unshipped > 0:
            quantities[variant_id] = quantities.get(variant_id, 0) + unshipped
    if not quantities:
        return
    await return_stock(session, quantities, order_id=order_id, actor_id=actor_id, reason=reason)


async def cancel_order(
    session: AsyncSession, vault: Vault, identity: Caller, order_id: uuid.UUID
) -> OrderRead:
    """Cancel an order and return its stock: its owner while ``pending``, staff while
    ``pending`` or ``paid`` and nothing of it has shipped.

    Raises:
        OrderNotFound: (404) no such order, or another customer's.
        CancelNotAllowed: (403) the owner (not staff) cancelling a paid order.
        InvalidTransition: (409) the order can no longer be cancelled (or units of it have
            shipped).
    """
    row = await _visible(session, identity, order_id)
    if not identity.is_staff and row.status == "paid":
        raise CancelNotAllowed("A paid order is cancelled by the shop; contact support.")
    await _move(session, identity, order_id, row.status, "cancelled")
    return await _announced(session, vault, identity, order_id)


async def transition_order(
    session: AsyncSession, vault: Vault, identity: Caller, order_id: uuid.UUID, to: str
) -> OrderRead:
    """Staff: move an order to ``to`` along :data:`STAFF_TRANSITIONS`.

    Raises:
        OrderNotFound: (404) no such order.
        InvalidTransition: (409) the status machine does not allow the move from the
            order's current status, ``to`` is ``paid`` or ``refunded`` (payments only), or
            the order moved at the same time.
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


SYSTEM_ROLE = "system"


async def _record_move(
    session: AsyncSession,
    vault: Vault,
    order_id: uuid.UUID,
    current: str,
    to: str,
    actor: tuple[uuid.UUID | None, str],
    values: dict[str, Any],
) -> bool:
    """One conditional move made by another room (payments, fulfilment; not a staff
    choice): recorded and announced only when this call made it."""
    now = utcnow()
    moved = await session.execute(
        update(table_of(Order))
        .where(_O.id == order_id, _O.status == current)
        .values(status=to, updated_at=now, **values)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        return False
    change = {
        "id": uuid.uuid4(),
        "order_id": order_id,
        "from_status": current,
        "to_status": to,
        "actor_id": actor[0],
        "actor_role": actor[1],
        "created_at": now,
    }
    await session.execute(insert(table_of(OrderStatusChange)), [change])
    order = await read_order(session, vault, order_id)
    if order is not None:
        emit_event(
            session,
            f"order.{to}",
            order_event_data(
                order.id, order.number, order.customer_id, to, order, order.currency, order.items
            ),
        )
    return True


async def record_paid(
    session: AsyncSession,
    vault: Vault,
    order_id: uuid.UUID,
    *,
    actor: tuple[uuid.UUID | None, str] = (None, SYSTEM_ROLE),
) -> bool:
    """Payments: the order's captured money covers its total, so a ``pending`` order becomes
    ``paid``, in the caller's transaction: one conditional update (``WHERE status =
    'pending'``), so it happens exactly once however many captures race; the move is recorded
    in ``order_status_change`` with ``actor`` (id, role) and announced with ``order.paid``.
    Returns whether this call moved the order (False: it was not pending)."""
    return await _record_move(session, vault, order_id, "pending", "paid", actor, {})


async def record_refunded(
    session: AsyncSession,
    vault: Vault,
    order_id: uuid.UUID,
    *,
    actor: tuple[uuid.UUID | None, str] = (None, SYSTEM_ROLE),
) -> bool:
    """Payments: everything paid for a ``paid`` order (not yet shipped) was refunded, so it
    becomes ``refunded`` and its units return to stock, announced with ``order.refunded``.
    Exactly once (conditional update). Returns whether this call moved the order."""
    moved = await _record_move(session, vault, order_id, "paid", "refunded", actor, {})
    if moved:
        await _return_units(session, order_id, actor[0], "order refunded")
    return moved


async def record_expired(
    session: AsyncSession,
    vault: Vault,
    order_id: uuid.UUID,
    *,
    actor: tuple[uuid.UUID | None, str] = (None, SYSTEM_ROLE),
) -> bool:
    """Payments: a ``pending`` order was not paid by its ``expires_at`` and no payment of it
    is open any more, so it becomes ``cancelled`` in the caller's transaction: one
    conditional update (``WHERE status = 'pending'``), recorded in ``order_status_change``
    with ``actor`` (default: no user, role ``system``), its units returned to stock and
    ``order.cancelled`` announced and its promotion uses given back, exactly once. Returns
    whether this call moved the order (False: it was paid or cancelled meanwhile)."""
    moved = await _record_move(session, vault, order_id, "pending", "cancelled", actor, {})
    if moved:
        await _return_units(session, order_id, actor[0], "order expired")
        await give_back(session, order_id)
    return moved


async def set_payment_status(session: AsyncSession, order_id: uuid.UUID, status: str) -> None:
    """Payments: record the order's ``payment_status`` (one of ``models.PAYMENT_STATUSES``),
    computed from its payments, in the caller's transaction."""
    await session.execute(
        update(table_of(Order)).where(_O.id == order_id).values(payment_status=status)
    )


async def add_money(
    session: AsyncSession, order_id: uuid.UUID, *, paid: int = 0, refunded: int = 0
) -> None:
    """Payments: add ``paid`` to ``paid_total`` and ``refunded`` to ``refunded_total``
    (minor units, relative updates, so concurrent captures never lose one another); the
    table's CHECK keeps ``refunded_total <= paid_total``."""
    await session.execute(
        update(table_of(Order))
        .where(_O.id == order_id)
        .values(
            paid_total=_O.paid_total + paid,
            refunded_total=_O.refunded_total + refunded,
            updated_at=utcnow(),
        )
    )


FULFILLABLE = ("paid", "fulfilled", "delivered")
"""Statuses of an order whose units may ship (paid and not cancelled nor refunded); an
order ``fulfilled`` or ``delivered`` has nothing left to ship, which :func:`ship_units`
finds by itself."""


async def lock_order(session: AsyncSession, order_id: uuid.UUID) -> Any:
    """The order's ``status``, ``fulfillment_status``, ``number``, ``customer_id`` and
    ``currency``, write-locked for the rest of the caller's transaction (an ``UPDATE`` that
    changes nothing: the row's lock on PostgreSQL, the database's write lock on SQLite), so
    fulfilments and status moves of one order run one after the other and never deadlock
    (every writer takes the order before its lines). None when there is no such order."""
    await session.execute(
        update(table_of(Order)).where(_O.id == order_id).values(updated_at=_O.updated_at)
    )
    return (
        await session.execute(
            select(_O.status, _O.fulfillment_status, _O.number, _O.customer_id, _O.currency).where(
                _O.id == order_id
            )
        )
    ).first()


async def ship_units(
    session: AsyncSession, order_id: uuid.UUID, line_id: uuid.UUID, quantity: int
) -> bool:
    """Fulfilment: record ``quantity`` more units of line ``line_id`` of ``order_id`` as
    shipped, never more than ordered: one conditional update (``quantity_fulfilled + q <=
    quantity``, backed by the table's CHECK), never a read then a write, so concurrent
    shipments of one line can never ship it twice. Returns whether the units were recorded
    (False: the line is not the order's, or fewer than ``quantity`` units are left)."""
    shipped = await session.execute(
        update(table_of(OrderLine))
        .where(
            _L.id == line_id,
            _L.order_id == order_id,
            _L.quantity_fulfilled + quantity <= _L.quantity,
        )
        .values(quantity_fulfilled=_L.quantity_fulfilled + quantity)
    )
    return bool(shipped.rowcount == 1)  # type: ignore[attr-defined]


async def units_left(session: AsyncSession, order_id: uuid.UUID) -> int:
    """How many units of the order have not shipped yet (over all its lines)."""
    left = await session.scalar(
        select(func.coalesce(func.sum(_L.quantity - _L.quantity_fulfilled), 0)).where(
            _L.order_id == order_id
        )
    )
    return int(left or 0)


async def set_fulfillment_status(session: AsyncSession, order_id: uuid.UUID, status: str) -> None:
    """Fulfilment (and returns): record the order's ``fulfillment_status`` (one of
    ``models.FULFILLMENT_STATUSES``) without moving its ``status``, in the caller's
    transaction (``partially_fulfilled`` while some units wait to ship)."""
    await session.execute(
        update(table_of(Order))
        .where(_O.id == order_id)
        .values(fulfillment_status=status, updated_at=utcnow())
    )


async def record_fulfilled(
    session: AsyncSession,
    vault: Vault,
    order_id: uuid.UUID,
    *,
    actor: tuple[uuid.UUID | None, str] = (None, SYSTEM_ROLE),
) -> bool:
    """Fulfilment: every unit of a ``paid`` order has shipped, so it becomes ``fulfilled``
    (``fulfillment_status`` too), in the caller's transaction: one conditional update
    (``WHERE status = 'paid'``), recorded in ``order_status_change`` with ``actor`` (id,
    role) and announced with ``order.fulfilled``, exactly once. Returns whether this call
    moved the order."""
    values = {"fulfillment_status": "fulfilled"}
    return await _record_move(session, vault, order_id, "paid", "fulfilled", actor, values)


async def record_delivered(
    session: AsyncSession,
    vault: Vault,
    order_id: uuid.UUID,
    *,
    actor: tuple[uuid.UUID | None, str] = (None, SYSTEM_ROLE),
) -> bool:
    """Fulfilment: every parcel of a ``fulfilled`` order was delivered, so it becomes
    ``delivered`` (``fulfillment_status`` too): one conditional update (``WHERE status =
    'fulfilled'``), recorded with ``actor`` and announced with ``order.delivered``, exactly
    once. Returns whether this call moved the order."""
    values = {"fulfillment_status": "delivered"}
    return await _record_move(session, vault, order_id, "fulfilled", "delivered", actor, values)
