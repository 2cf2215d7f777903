"""Business verbs of returns: ask for a return, count the parcel in, and read them.

Units never move by read-then-write. Asking raises ``order_line.quantity_return_requested``
with one conditional update per line (``WHERE quantity_return_requested + :q <=
quantity_fulfilled``, backed by the ``return_requests_within_fulfilled`` CHECK), so two
customers' tabs, or a customer and staff, asking at once can never together claim more
units than were shipped. Receiving moves ``quantity_returned`` up the same way (and
releases the units asked for that did not arrive); restocked units come back through the
inventory ledger as ``returned`` movements, damaged ones do not.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.identity import Caller
from emporium.accounts.protect import Vault, plain_row
from emporium.core.clock import utcnow
from emporium.core.db.base import Reader, table_of
from emporium.core.errors import InvalidInput
from emporium.inventory.service import return_stock
from emporium.jobs.outbox import emit_event
from emporium.orders.models import Order, OrderLine, OrderStatusChange
from emporium.payments.queries import visible_order
from emporium.returns.exceptions import (
    OrderNotReturnable,
    ReceiveExceedsRequested,
    ReturnExceedsFulfilled,
    ReturnNotFound,
    ReturnStateConflict,
    ReturnWindowClosed,
)
from emporium.returns.models import OrderReturn, ReturnLine
from emporium.returns.schemas import (
    ReturnCreate,
    ReturnLineRead,
    ReturnList,
    ReturnRead,
    ReturnReceive,
)

Db = Any  # an AsyncSession or a Reader: both execute() Core statements
RETURNABLE = ("paid", "fulfilled", "delivered")
"""Order statuses a return may be asked for in (units must also have been shipped)."""
_O, _L, _S = table_of(Order).c, table_of(OrderLine).c, table_of(OrderStatusChange).c
_R, _RL = table_of(OrderReturn).c, table_of(ReturnLine).c


async def delivered_at(db: Db, order_id: uuid.UUID) -> Any:
    """When the order was delivered (its latest move to ``delivered``), or None while it
    was not: the return window counts from this instant."""
    return await db.scalar(
        select(func.max(_S.created_at)).where(_S.order_id == order_id, _S.to_status == "delivered")
    )


async def _check_window(db: Db, order_id: uuid.UUID, window_days: int) -> None:
    """Customers and guests ask within ``window_days`` of delivery (open before it)."""
    delivered = await delivered_at(db, order_id)
    if delivered is not None and utcnow() > delivered + timedelta(days=window_days):
        raise ReturnWindowClosed(
            f"Returns are accepted within {window_days} days of delivery; contact the shop."
        )


def _unique(ids: Sequence[uuid.UUID], field: str) -> None:
    if len(set(ids)) != len(ids):
        raise InvalidInput(
            "Each order line may appear once.",
            errors=[{"loc": ["body", "lines", field], "msg": "repeated order line"}],
        )


async def _own_lines(session: AsyncSession, order_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> None:
    found = set(await session.scalars(select(_L.id).where(_L.order_id == order_id, _L.id.in_(ids))))
    if found != set(ids):
        raise InvalidInput(
            "Every line must be a line of this order.",
            errors=[{"loc": ["body", "lines", "order_line_id"], "msg": "not a line of the order"}],
        )


async def _claim_units(session: AsyncSession, order_id: uuid.UUID, data: ReturnCreate) -> None:
    """Raise each line's ``quantity_return_requested`` by its quantity, conditionally, in
    line-id order (concurrent requests lock rows in one order and cannot deadlock)."""
    for line in sorted(data.lines, key=lambda x: x.order_line_id):
        claimed = await session.execute(
            update(table_of(OrderLine))
            .where(
                _L.id == line.order_line_id,
                _L.order_id == order_id,
                _L.quantity_return_requested + line.quantity <= _L.quantity_fulfilled,
            )
            .values(quantity_return_requested=_L.quantity_return_requested + line.quantity)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise ReturnExceedsFulfilled(
                "More units than were shipped and are not already returned or asked back.",
                extra={"order_line_id": str(line.order_line_id)},
            )


async def _insert_return(
    session: AsyncSession, order_id: uuid.UUID, role: str, data: ReturnCreate
) -> uuid.UUID:
    """Write a ``requested`` return and its lines; returns its id."""
    now, return_id = utcnow(), uuid.uuid4()
    await session.execute(
        insert(table_of(OrderReturn)),
        [
            {
                "id": return_id,
                "order_id": order_id,
                "status": "requested",
                "requested_by": role,
                "reason": data.reason,
                "amount_refunded": 0,
                "include_shipping": False,
                "created_at": now,
                "updated_at": now,
            }
        ],
    )
    await session.execute(
        insert(table_of(ReturnLine)),
        [
            {
                "return_id": return_id,
                "order_line_id": line.order_line_id,
                "quantity": line.quantity,
                "quantity_received": 0,
                "restocked": 0,
                "reason": line.reason,
            }
            for line in data.lines
        ],
    )
    return return_id


async def request_return(
    session: AsyncSession,
    caller: Caller | None,
    order_id: uuid.UUID,
    order_token: str | None,
    data: ReturnCreate,
    *,
    window_days: int,
) -> ReturnRead:
    """Ask to send units back (``POST /orders/{id}/returns``): the order's customer or a
    guest with its ``Order-Token`` within ``window_days`` of delivery, staff at any time.
    Emits ``return.requested``. Returns the return, ``requested``.

    Raises:
        OrderNotFound: (404) no such order, or not the caller's.
        OrderNotReturnable: (409) the order is not paid, or was cancelled or refunded.
        ReturnWindowClosed: (409 ``return_window_closed``) a customer or guest too late.
        InvalidInput: (422) a line twice, or a line of another order.
        ReturnExceedsFulfilled: (409 ``return_exceeds_fulfilled``) more than was shipped
            and is not returned or asked back already; nothing changes.
    """
    order = await visible_order(session, caller, order_id, order_token)
    if order.status not in RETURNABLE:
        raise OrderNotReturnable(f"An order that is {order.status} cannot be returned.")
    is_staff = caller is not None and caller.is_staff
    if not is_staff:
        await _check_window(session, order_id, window_days)
    ids = [line.order_line_id for line in data.lines]
    _unique(ids, "order_line_id")
    await _own_lines(session, order_id, ids)
    await _claim_units(session, order_id, data)
    role = caller.actor_role if caller is not None else "guest"
    return_id = await _insert_return(session, order_id, role, data)
    answer = (await read_returns(session, [return_id], order.currency))[0]
    emit_event(session, "return.requested", event_data(answer))
    return answer


def event_data(answer: ReturnRead) -> dict[str, Any]:
    """The data of a ``return.*`` event: ids, status, units per line and the amount
    refunded (minor units); no personal data."""
    return {
        "return_id": str(answer.id),
        "order_id": str(answer.order_id),
        "status": answer.status,
        "amount_refunded": answer.amount_refunded,
        "currency": answer.currency,
        "lines": [
            {
                "order_line_id": str(line.order_line_id),
                "quantity": line.quantity,
                "quantity_received": line.quantity_received,
                "restocked": line.restocked,
            }
            for line in answer.lines
        ],
    }


async def read_returns(db: Db, return_ids: Sequence[uuid.UUID], currency: str) -> list[ReturnRead]:
    """The API shapes of returns, in the order of ``return_ids`` (lines in the order's
    line order)."""
    rows = {
        r.id: r
        for r in await db.execute(select(table_of(OrderReturn)).where(_R.id.in_(return_ids)))
    }
    lines: dict[uuid.UUID, list[ReturnLineRead]] = {i: [] for i in return_ids}
    for line in await db.execute(
        select(table_of(ReturnLine))
        .join(table_of(OrderLine), _L.id == _RL.order_line_id)
        .where(_RL.return_id.in_(return_ids))
        .order_by(_L.position)
    ):
        lines[line.return_id].append(
            ReturnLineRead(
                order_line_id=line.order_line_id,
                quantity=line.quantity,
                quantity_received=line.quantity_received,
                restocked=line.restocked,
                reason=line.reason,
            )
        )
    return [
        ReturnRead(
            id=r.id,
            order_id=r.order_id,
            status=r.status,
            requested_by=r.requested_by,
            reason=r.reason,
            lines=lines[r.id],
            amount_refunded=r.amount_refunded,
            currency=currency,
            include_shipping=r.include_shipping,
            refund_id=r.refund_id,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in (rows[i] for i in return_ids)
    ]


async def list_returns(
    db: Db | Reader, caller: Caller | None, order_id: uuid.UUID, order_token: str | None
) -> ReturnList:
    """An order's returns, oldest first, for whoever may see the order (owner, guest with
    ``Order-Token``, staff). Raises OrderNotFound (404) otherwise."""
    order = await visible_order(db, caller, order_id, order_token)
    rows = await db.execute(
        select(_R.id).where(_R.order_id == order_id).order_by(_R.created_at, _R.id)
    )
    ids = [row.id for row in rows]
    return ReturnList(items=await read_returns(db, ids, order.currency))


async def return_row(db: Db, return_id: uuid.UUID) -> Any:
    """The ``order_return`` row with its order's currency. Raises ReturnNotFound (404)."""
    row = (
        await db.execute(
            select(table_of(OrderReturn), _O.currency)
            .join(table_of(Order), _O.id == _R.order_id)
            .where(_R.id == return_id)
        )
    ).first()
    if row is None:
        raise ReturnNotFound("No such return.")
    return row


async def move_return(session: AsyncSession, return_id: uuid.UUID, current: str, to: str) -> None:
    """One conditional move of a return's status (``WHERE status = :current``), so two
    staff receiving or refunding one return at once cannot both do it.

    Raises ReturnStateConflict (409) when the return is not ``current``."""
    moved = await session.execute(
        update(table_of(OrderReturn))
        .where(_R.id == return_id, _R.status == current)
        .values(status=to, updated_at=utcnow())
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise ReturnStateConflict(f"Only a {current} return can become {to}.")


def _received(data: ReturnReceive, asked: dict[uuid.UUID, int]) -> dict[uuid.UUID, Any]:
    _unique([line.order_line_id for line in data.lines], "order_line_id")
    given = {line.order_line_id: line for line in data.lines}
    if not set(given) <= set(asked):
        raise InvalidInput(
            "Every line received must be a line of this return.",
            errors=[{"loc": ["body", "lines", "order_line_id"], "msg": "not in the return"}],
        )
    for line_id, line in given.items():
        if line.quantity > asked[line_id]:
            raise ReceiveExceedsRequested(
                "More units received than the return asked for.",
                extra={"order_line_id": str(line_id)},
            )
    return given


async def _count_in(
    session: AsyncSession, return_id: uuid.UUID, line_id: uuid.UUID, asked: int, got: int
) -> None:
    """``got`` of ``asked`` units of one line arrived: ``quantity_returned`` grows by
    ``got`` and the ``asked - got`` units that did not arrive are released."""
    counted = await session.execute(
        update(table_of(OrderLine))
        .where(
            _L.id == line_id,
            _L.quantity_returned + got <= _L.quantity_fulfilled,
            _L.quantity_return_requested - (asked - got) >= _L.quantity_returned + got,
        )
        .values(
            quantity_returned=_L.quantity_returned + got,
            quantity_return_requested=_L.quantity_return_requested - (asked - got),
        )
    )
    if counted.rowcount != 1:  # type: ignore[attr-defined]  # pragma: no cover - CHECK-backed
        raise ReturnExceedsFulfilled("The line's returned units would exceed those shipped.")


async def receive_return(
    session: AsyncSession, caller: Caller, return_id: uuid.UUID, data: ReturnReceive
) -> ReturnRead:
    """Staff count a return's parcel in (``POST /returns/{id}/receive``): per line the
    units received, restocked (``returned`` ledger movements) or not (damaged). The lines'
    ``quantity_returned`` grow, the order's ``fulfillment_status`` becomes
    ``partially_returned`` or ``returned``; ``return.received`` is emitted.

    Raises:
        ReturnNotFound: (404) no such return.
        ReturnStateConflict: (409) the return was already received.
        InvalidInput: (422) a line twice or a line not in the return.
        ReceiveExceedsRequested: (409) more units than the return asked for.
    """
    ret = await return_row(session, return_id)
    await move_return(session, return_id, "requested", "received")
    asked = {
        r.order_line_id: r.quantity
        for r in await session.execute(
            select(_RL.order_line_id, _RL.quantity).where(_RL.return_id == return_id)
        )
    }
    given = _received(data, asked)
    restock: dict[uuid.UUID, int] = {}
    for line_id in sorted(asked):
        got = given[line_id].quantity if line_id in given else 0
        kept = got if line_id in given and given[line_id].restock else 0
        await session.execute(
            update(table_of(ReturnLine))
            .where(_RL.return_id == return_id, _RL.order_line_id == line_id)
            .values(quantity_received=got, restocked=kept)
        )
        await _count_in(session, return_id, line_id, asked[line_id], got)
        if kept:
            variant = await session.scalar(select(_L.variant_id).where(_L.id == line_id))
            if variant is not None:
                restock[variant] = restock.get(variant, 0) + kept
    await return_stock(
        session,
        restock,
        order_id=ret.order_id,
        actor_id=caller.actor_id,
        reason=f"return {return_id}",
        kind="returned",
    )
    await _set_fulfillment_status(session, ret.order_id)
    answer = (await read_returns(session, [return_id], ret.currency))[0]
    emit_event(session, "return.received", event_data(answer))
    return answer


async def _set_fulfillment_status(session: AsyncSession, order_id: uuid.UUID) -> None:
    """``returned`` once every unit of the order came back, ``partially_returned`` while
    some did."""
    sums = (
        await session.execute(
            select(func.sum(_L.quantity), func.sum(_L.quantity_returned)).where(
                _L.order_id == order_id
            )
        )
    ).one()
    if not sums[1]:
        return
    status = "returned" if sums[1] >= sums[0] else "partially_returned"
    await session.execute(
        update(table_of(Order))
        .where(_O.id == order_id)
        .values(fulfillment_status=status, updated_at=utcnow())
    )


async def export_customer(
    db: Reader | AsyncSession, vault: Vault, customer_id: uuid.UUID
) -> dict[str, list[Any]]:
    """Export section (``AccountsContext.export_sections``): the returns of the customer's
    orders, oldest first, each with its lines."""
    orders = select(table_of(Order).c.id).where(table_of(Order).c.customer_id == customer_id)
    returns_ = table_of(OrderReturn)
    stmt = select(returns_).where(returns_.c.order_id.in_(orders)).order_by(returns_.c.created_at)
    found = [plain_row(row) for row in (await db.execute(stmt)).all()]
    lines = table_of(ReturnLine)
    ids = [uuid.UUID(str(r["id"])) for r in found]
    rows = (await db.execute(select(lines).where(lines.c.return_id.in_(ids)))).all() if ids else []
    all_lines = [plain_row(row) for row in rows]
    for found_return in found:
        found_return["lines"] = [x for x in all_lines if x["return_id"] == found_return["id"]]
    return {"returns": found}
