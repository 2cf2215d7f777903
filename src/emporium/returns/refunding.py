"""Refunding a received return: what the customer paid for the units that came back,
through the order's payments, gift cards first.

Transaction A locks the order's row (an ``UPDATE`` that changes nothing: PostgreSQL's row
lock, SQLite's database lock), so refunds of one order's returns are priced one after the
other: each reads the units earlier refunded returns took and asks
``orders.pricing.refund_for_lines`` for the difference, so the rounding never drifts and
all of an order's returns together refund at most its total. In the same transaction the
return becomes ``refunded`` and the money is reserved on the payments
(``payments.refunds.reserve``: never more than captured; the order's CHECK keeps
``refunded_total <= paid_total``); the providers are asked after it commits
(``payments.refunds.settle``), which moves the order's ``payment_status`` to
``partially_refunded`` or ``refunded``.

Promotion uses are not given back for a return, even of everything: the order was placed
with them (only a cancelled or expired order gives its uses back).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.identity import Caller
from emporium.audit.chain import record_audit
from emporium.core.clock import utcnow
from emporium.core.db.base import table_of
from emporium.jobs.outbox import emit_event
from emporium.orders.models import Order, OrderLine
from emporium.orders.pricing import (
    PricedLine,
    PricedRefund,
    PricedShipping,
    ReturnedUnits,
    refund_for_lines,
)
from emporium.payments import refunds
from emporium.payments.apply import Actor
from emporium.payments.service import PaymentsContext
from emporium.returns.exceptions import ShippingAlreadyRefunded
from emporium.returns.models import OrderReturn, ReturnLine
from emporium.returns.schemas import ReturnRead, ReturnRefund
from emporium.returns.service import event_data, move_return, read_returns, return_row

Commit = Callable[[], Awaitable[None]]
_O, _L = table_of(Order).c, table_of(OrderLine).c
_R, _RL = table_of(OrderReturn).c, table_of(ReturnLine).c


async def _lock_order(session: AsyncSession, order_id: uuid.UUID) -> Any:
    """The order's money facts, its row write-locked for the rest of the transaction."""
    await session.execute(
        update(table_of(Order)).where(_O.id == order_id).values(updated_at=_O.updated_at)
    )
    return (
        await session.execute(
            select(
                _O.number,
                _O.prices_include_tax,
                _O.shipping_total,
                _O.shipping_tax_rate,
                _O.shipping_tax_total,
            ).where(_O.id == order_id)
        )
    ).one()


async def _refunded_before(
    session: AsyncSession, order_id: uuid.UUID, return_id: uuid.UUID
) -> dict[uuid.UUID, int]:
    """Units of each line that the order's other refunded returns already paid back."""
    rows = await session.execute(
        select(_RL.order_line_id, func.sum(_RL.quantity_received))
        .join(table_of(OrderReturn), _R.id == _RL.return_id)
        .where(_R.order_id == order_id, _R.status == "refunded", _R.id != return_id)
        .group_by(_RL.order_line_id)
    )
    return {line_id: int(units or 0) for line_id, units in rows}


async def price_return(
    session: AsyncSession, order: Any, order_id: uuid.UUID, return_id: uuid.UUID, shipping: bool
) -> PricedRefund:
    """The refund of a return's received units (plus the shipping when ``shipping``),
    given what the order's refunded returns took before (see the module)."""
    before = await _refunded_before(session, order_id, return_id)
    rows = await session.execute(
        select(_RL.order_line_id, _RL.quantity_received, table_of(OrderLine))
        .join(table_of(OrderLine), _L.id == _RL.order_line_id)
        .where(_RL.return_id == return_id, _RL.quantity_received > 0)
    )
    returned = [
        ReturnedUnits(
            PricedLine(
                unit_price=r.unit_price,
                quantity=r.quantity,
                subtotal=r.subtotal,
                discount_total=r.discount_total,
                tax_rate=r.tax_rate,
                tax_total=r.tax_total,
                total=r.total,
            ),
            before.get(r.order_line_id, 0),
            r.quantity_received,
        )
        for r in rows
    ]
    priced_shipping = None
    if shipping:
        priced_shipping = PricedShipping(
            price=order.shipping_total,
            discount_total=0,
            tax_rate=order.shipping_tax_rate,
            tax_total=order.shipping_tax_total,
            total=order.shipping_total,
        )
    return refund_for_lines(
        returned, prices_include_tax=order.prices_include_tax, shipping=priced_shipping
    )


async def _announce_refund(
    session: AsyncSession, answer: ReturnRead, ids: list[uuid.UUID], total: int, tax_total: int
) -> None:
    """``refund.created`` (with the refunds and the tax part, minor units) and the audit
    event ``return.refunded``, in the refund's transaction."""
    emit_event(
        session,
        "refund.created",
        event_data(answer) | {"refund_ids": [str(i) for i in ids], "tax_total": tax_total},
    )
    await record_audit(
        session,
        action="return.refunded",
        object_type="order_return",
        object_id=answer.id,
        details={"order_id": answer.order_id, "refund_ids": ids, "amount": total},
    )


async def refund_return(
    session: AsyncSession,
    ctx: PaymentsContext,
    caller: Caller,
    return_id: uuid.UUID,
    data: ReturnRefund,
    commit: Commit,
) -> ReturnRead:
    """Staff refund a received return (``POST /returns/{id}/refund``): the amount from
    :func:`price_return` (minor units), reserved on the order's captured payments gift
    cards first and sent to the providers; the return becomes ``refunded``;
    ``refund.created`` is emitted. A return whose units were all free refunds 0 and sends
    nothing.

    Raises:
        ReturnNotFound: (404) no such return.
        ReturnStateConflict: (409) the return is not ``received`` (not yet, or refunded).
        ShippingAlreadyRefunded: (409) ``include_shipping`` when another return gave it back.
        RefundExceedsCaptured: (409 ``refund_exceeds_captured``) the payments hold less
            than the amount (money already refunded by hand); nothing changes.
    """
    ret = await return_row(session, return_id)
    order = await _lock_order(session, ret.order_id)
    await move_return(session, return_id, "received", "refunded")
    if data.include_shipping and await session.scalar(
        select(exists().where(_R.order_id == ret.order_id, _R.include_shipping))
    ):
        raise ShippingAlreadyRefunded("Another return of this order refunded the shipping.")
    priced = await price_return(session, order, ret.order_id, return_id, data.include_shipping)
    actor = Actor.of(caller, "staff")
    ids: list[uuid.UUID] = []
    if priced.total > 0:
        reason = f"return of order {order.number}"
        ids = await refunds.reserve(session, ret.order_id, priced.total, reason, actor)
    await session.execute(
        update(table_of(OrderReturn))
        .where(_R.id == return_id)
        .values(
            amount_refunded=priced.total,
            include_shipping=data.include_shipping,
            refund_id=ids[0] if ids else None,
            updated_at=utcnow(),
        )
    )
    answer = (await read_returns(session, [return_id], ret.currency))[0]
    await _announce_refund(session, answer, ids, priced.total, priced.tax_total)
    await commit()
    for refund_id in ids:
        await refunds.settle(session, ctx, refund_id, actor)
        await commit()
    return (await read_returns(session, [return_id], ret.currency))[0]
