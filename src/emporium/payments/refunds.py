"""Giving money back: staff refunds, and the refund of everything captured on a cancelled
order.

A refund is *reserved* first (transaction A, committed before the provider is asked): one
conditional ``UPDATE payment SET refunded_amount = refunded_amount + :a WHERE ... AND
refunded_amount + :a <= captured_amount`` (and the table's CHECK), so two concurrent refunds
can never together exceed what was captured. The provider is asked with an idempotency key
made from the refund's id; its answer settles the refund (``apply.apply_refund``): succeeded
adds to the order's ``refunded_total``, failed releases the reservation.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from sqlalchemy import case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.audit.chain import record_audit
from emporium.core.clock import utcnow
from emporium.core.db.base import table_of
from emporium.payments.apply import Actor, apply_intent, apply_refund, record_change
from emporium.payments.exceptions import PaymentNotFound, RefundExceedsCaptured
from emporium.payments.models import OPEN_STATES, Payment, Refund
from emporium.payments.providers.base import PaymentDeclined, ProviderError, RefundResult
from emporium.payments.providers.gift_card import NAME as GIFT_CARD
from emporium.payments.queries import refund_read
from emporium.payments.schemas import RefundCreate, RefundRead
from emporium.payments.service import PaymentsContext, lock_order

log = structlog.get_logger(__name__)
Commit = Callable[[], Awaitable[None]]
_P, _R = table_of(Payment).c, table_of(Refund).c
_GIFT_CARDS_FIRST = case((_P.provider == GIFT_CARD, 0), else_=1)


async def _shares(
    session: AsyncSession, order_id: uuid.UUID, amount: int, payment_id: uuid.UUID | None
) -> list[tuple[Any, int]]:
    """How ``amount`` is taken from the order's captured payments: the one named, or gift
    cards first (the contract: refunds go back to the card first), then the newest first.
    Raises PaymentNotFound (404), RefundExceedsCaptured (409)."""
    query = select(table_of(Payment)).where(_P.order_id == order_id, _P.captured_amount > 0)
    if payment_id is not None:
        query = query.where(_P.id == payment_id)
    rows = list(
        await session.execute(query.order_by(_GIFT_CARDS_FIRST, _P.created_at.desc(), _P.id.desc()))
    )
    if payment_id is not None and not rows:
        raise PaymentNotFound("No captured payment with this id on this order.")
    shares, left = [], amount
    for row in rows:
        take = min(left, row.captured_amount - row.refunded_amount)
        if take > 0:
            shares.append((row, take))
            left -= take
    if left > 0:
        raise RefundExceedsCaptured(f"Only {amount - left} of the captured money is refundable.")
    return shares


async def reserve(
    session: AsyncSession,
    order_id: uuid.UUID,
    amount: int,
    reason: str,
    actor: Actor,
    payment_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Transaction A: reserve ``amount`` on the order's captured payments and write the
    ``pending`` refunds (with ``refund_requested`` history lines); returns their ids.

    Raises RefundExceedsCaptured (409 ``refund_exceeds_captured``), PaymentNotFound (404).
    """
    ids = []
    for row, take in await _shares(session, order_id, amount, payment_id):
        reserved = await session.execute(
            update(table_of(Payment))
            .where(_P.id == row.id, _P.refunded_amount + take <= _P.captured_amount)
            .values(refunded_amount=_P.refunded_amount + take, updated_at=utcnow())
        )
        if reserved.rowcount != 1:  # type: ignore[attr-defined]
            raise RefundExceedsCaptured("The payment was refunded at the same time.")
        now, refund_id = utcnow(), uuid.uuid4()
        refund = {
            "id": refund_id,
            "payment_id": row.id,
            "order_id": order_id,
            "provider": row.provider,
            "amount": take,
            "status": "pending",
            "reason": reason,
            "actor_id": actor.id,
            "created_at": now,
            "updated_at": now,
        }
        await session.execute(insert(table_of(Refund)), [refund])
        await record_change(session, row, "refund_requested", take, actor, refund_id=None)
        ids.append(refund_id)
    return ids


async def settle(
    session: AsyncSession, ctx: PaymentsContext, refund_id: uuid.UUID, actor: Actor
) -> None:
    """Ask the provider for one reserved refund (outside any transaction), then apply its
    answer in ``session``'s next transaction (the caller commits). An unreachable provider
    leaves the refund ``pending`` for reconciliation."""
    row = (await session.execute(select(table_of(Refund)).where(_R.id == refund_id))).one()
    payment = (await session.execute(select(_P.reference).where(_P.id == row.payment_id))).one()
    await session.rollback()
    provider = ctx.provider(row.provider)
    try:
        result = await provider.refund(
            payment.reference or "", row.amount, refund_id=refund_id, payment_id=row.payment_id
        )
    except ProviderError:
        log.warning("refund_provider_unreachable", refund_id=str(refund_id))
        return
    except PaymentDeclined as exc:
        result = RefundResult("", "failed", row.amount, payment.reference or "", exc.code)
    await apply_refund(session, ctx.vault, refund_id, result, actor)


async def refund_order(
    session: AsyncSession,
    ctx: PaymentsContext,
    order_id: uuid.UUID,
    data: RefundCreate,
    actor: Actor,
    commit: Commit,
) -> RefundRead:
    """Staff: refund ``data.amount`` of the order (``POST /orders/{id}/refunds``). Returns
    the refund (when spread over several payments, the first part; ``GET`` lists all).

    Raises RefundExceedsCaptured (409), PaymentNotFound (404)."""
    ids = await reserve(session, order_id, data.amount, data.reason, actor, data.payment_id)
    await record_audit(
        session,
        action="refund.created",
        object_type="order",
        object_id=order_id,
        details={"refund_ids": ids, "amount": data.amount},
    )
    await commit()
    for refund_id in ids:
        await settle(session, ctx, refund_id, actor)
        await commit()
    row = (await session.execute(select(table_of(Refund)).where(_R.id == ids[0]))).one()
    return refund_read(row)


async def give_everything_back(
    session: AsyncSession, ctx: PaymentsContext, order_id: uuid.UUID, reason: str
) -> None:
    """A cancelled order: refund every captured payment's unrefunded money and void every
    open payment, each committed on its own, gift cards first. Idempotent: what is refunded
    or reserved is not refunded again (the reservation is the payment's ``refunded_amount``)."""
    actor = Actor(None, "system", "system")
    rows = list(
        await session.execute(
            select(table_of(Payment))
            .where(_P.order_id == order_id)
            .order_by(_GIFT_CARDS_FIRST, _P.created_at, _P.id)
        )
    )
    await session.rollback()
    for row in rows:
        if row.status in OPEN_STATES and row.provider in ctx.providers:
            await _void(session, ctx, row, actor)
        await _refund_rest(session, ctx, row, reason, actor)


async def _refund_rest(
    session: AsyncSession,
    ctx: PaymentsContext,
    row: Any,
    reason: str,
    actor: Actor,
    still: Callable[[AsyncSession], Awaitable[bool]] | None = None,
) -> None:
    """Refund what is left of one captured payment (reserved in its own transaction, then
    settled); nothing when it was refunded meanwhile, or when ``still`` (asked inside the
    reserving transaction) answers False."""
    left = row.captured_amount - row.refunded_amount
    if left <= 0:
        return
    try:
        async with session.begin():
            if still is not None and not await still(session):
                return
            ids = await reserve(session, row.order_id, left, reason, actor, row.id)
    except RefundExceedsCaptured:  # refunded meanwhile by someone else
        return
    for refund_id in ids:
        await settle(session, ctx, refund_id, actor)
        await session.commit()


async def release_gift_cards(
    session: AsyncSession, ctx: PaymentsContext, order_id: uuid.UUID
) -> None:
    """Another payment of a split-tender order failed: give the gift cards' captured money
    back to the cards (the contract), so that nothing of the buyer's stays on an order they
    may abandon. Only while the order is ``pending`` and no other payment of it is open or
    captured (a retry with another card already under way keeps the cards' part), checked
    under the order's lock in the transaction that reserves each refund, so a payment
    opened afterwards sees the larger unpaid balance."""
    actor = Actor(None, "system", "system")
    cards = list(
        await session.execute(
            select(table_of(Payment)).where(
                _P.order_id == order_id, _P.provider == GIFT_CARD, _P.captured_amount > 0
            )
        )
    )
    await session.rollback()

    async def still(tx: AsyncSession) -> bool:
        order = await lock_order(tx, order_id)
        others = await tx.scalar(
            select(func.count()).where(
                _P.order_id == order_id,
                _P.provider != GIFT_CARD,
                _P.status.in_((*OPEN_STATES, "captured")),
            )
        )
        return bool(order.status == "pending" and not others)

    for row in cards:
        await _refund_rest(session, ctx, row, "another payment of the order failed", actor, still)


async def _void(session: AsyncSession, ctx: PaymentsContext, row: Any, actor: Actor) -> None:
    try:
        intent = await ctx.provider(row.provider).cancel(row.reference or "", payment_id=row.id)
    except (ProviderError, PaymentDeclined):
        log.warning("payment_void_failed", payment_id=str(row.id))
        return
    async with session.begin():
        await apply_intent(session, ctx.vault, row.id, intent, actor)
