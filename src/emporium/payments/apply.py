"""Applying a provider's truth to our rows, whoever brings it first.

:func:`apply_intent` is called by the client's own request, a webhook, staff capture and
cancel, and reconciliation; :func:`apply_refund` by the refund request and refund events.
Both lock their row first (an ``UPDATE`` that changes nothing takes the row's write lock on
PostgreSQL and the database's write lock on SQLite), so concurrent callers apply one after
the other and the later ones find nothing to do. Status only moves forward; money moves with
relative updates; every move is a ``payment_change`` row with who and when, and an outbox
event in the same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.identity import Caller
from emporium.accounts.protect import Vault
from emporium.core.clock import utcnow
from emporium.core.db.base import table_of
from emporium.core.security_events import security_event
from emporium.jobs.outbox import emit_event, enqueue
from emporium.orders import lifecycle
from emporium.orders.models import Order
from emporium.payments.models import Payment, PaymentChange, Refund
from emporium.payments.providers.base import Intent, RefundResult

log = structlog.get_logger(__name__)
RANK = {
    "pending": 0,
    "requires_action": 1,
    "authorized": 2,
    "captured": 3,
    "failed": 3,
    "cancelled": 3,
}
"""Forward-only: a payment moves only to a state of higher rank."""
EVENT_OF_STATE = {
    "authorized": "payment.authorized",
    "captured": "payment.captured",
    "failed": "payment.failed",
}
REFUND_ORPHAN = "payments.refund_orphan"
RELEASE_GIFT_CARDS = "payments.release_gift_cards"
"""The job that gives a pending order's gift-card money back after its other payment
failed (``refunds.release_gift_cards``)."""
GIFT_CARD = "gift_card"
"""The gift-card provider's name (``providers.gift_card.NAME``)."""
_P, _R, _O = table_of(Payment).c, table_of(Refund).c, table_of(Order).c


@dataclass(frozen=True)
class Actor:
    """Who brought a change: ``id`` (a user, or None), ``role`` (``customer``, ``guest``,
    ``staff``, ``system``...) and ``source`` (``client``, ``webhook``, ``staff``,
    ``reconcile``, ``expiry``, ``system``)."""

    id: uuid.UUID | None
    role: str | None
    source: str

    @classmethod
    def of(cls, caller: Caller | None, source: str) -> Actor:
        """The actor of a request by ``caller`` (None: a guest)."""
        if caller is None:
            return cls(None, "guest", source)
        return cls(caller.actor_id, caller.actor_role, source)


def system(source: str) -> Actor:
    """No person: a webhook, a job, reconciliation."""
    return Actor(None, "system", source)


async def record_change(
    session: AsyncSession,
    row: Any,
    kind: str,
    amount: int,
    actor: Actor,
    refund_id: uuid.UUID | None = None,
) -> None:
    """One line of the order's money history (``payment_change``)."""
    await session.execute(
        insert(table_of(PaymentChange)),
        [
            {
                "id": uuid.uuid4(),
                "order_id": row.order_id,
                "payment_id": row.id if refund_id is None else row.payment_id,
                "refund_id": refund_id,
                "kind": kind,
                "amount": amount,
                "source": actor.source,
                "actor_id": actor.id,
                "actor_role": actor.role,
                "created_at": utcnow(),
            }
        ],
    )


async def lock_payment(session: AsyncSession, payment_id: uuid.UUID) -> Any:
    """The payment row, write-locked for the rest of the transaction (None if missing)."""
    await session.execute(
        update(table_of(Payment)).where(_P.id == payment_id).values(updated_at=_P.updated_at)
    )
    return (await session.execute(select(table_of(Payment)).where(_P.id == payment_id))).first()


def _new_values(vault: Vault, row: Any, intent: Intent) -> dict[str, Any]:
    """What the intent changes on the row: a forward status, more captured money, the
    reference and client secret when missing, the failure code. A ``failed`` payment that
    the provider reports ``captured`` is captured: a declined attempt is not final at
    Stripe (the customer may confirm the same intent again with another card), and money
    taken is never ignored."""
    values: dict[str, Any] = {}
    retried = row.status == "failed" and intent.status == "captured"
    if RANK[intent.status] > RANK[row.status] or retried:
        values["status"] = intent.status
        if intent.status == "failed":
            values["failure_code"] = intent.failure_code or "payment_failed"
        if retried:
            values["failure_code"] = None
    status = values.get("status", row.status)
    captured = min(intent.captured_amount, row.amount)
    if status == "captured" and intent.status == "captured" and captured > row.captured_amount:
        values["captured_amount"] = captured
    if intent.reference and row.reference is None:
        values["reference"] = intent.reference
    if intent.client_secret and row.client_secret_enc is None:
        values["client_secret_enc"] = vault.seal_column(
            Payment.client_secret_enc, row.id, intent.client_secret
        )
    return values


def _payment_data(row: Any, **extra: Any) -> dict[str, Any]:
    return {
        "payment_id": str(row.id),
        "order_id": str(row.order_id),
        "provider": row.provider,
        "currency": row.currency,
        **extra,
    }


async def apply_intent(
    session: AsyncSession,
    vault: Vault,
    payment_id: uuid.UUID,
    intent: Intent,
    actor: Actor,
) -> bool:
    """Apply the provider's ``intent`` to our payment in the caller's transaction; returns
    whether anything changed. Captured money is added to the order's ``paid_total``, the
    order becomes ``paid`` once it is covered (``orders.lifecycle.record_paid``), and
    ``payment_status`` is recomputed. Events: ``payment.authorized``, ``payment.captured``
    (``amount``: what this change captured), ``payment.failed`` (``failure_code``). A failed
    payment other than a gift card's queues :data:`RELEASE_GIFT_CARDS` for its order."""
    row = await lock_payment(session, payment_id)
    if row is None:
        return False
    values = _new_values(vault, row, intent)
    if not values:
        return False
    await session.execute(
        update(table_of(Payment)).where(_P.id == payment_id).values(updated_at=utcnow(), **values)
    )
    delta = values.get("captured_amount", row.captured_amount) - row.captured_amount
    status = values.get("status")
    if status is not None and status != "captured":
        await record_change(session, row, status, 0, actor)
        if status in EVENT_OF_STATE:
            failure = {"failure_code": values.get("failure_code")} if status == "failed" else {}
            emit_event(
                session, EVENT_OF_STATE[status], _payment_data(row, status=status, **failure)
            )
        if status == "failed" and row.provider != GIFT_CARD:
            await enqueue(session, RELEASE_GIFT_CARDS, {"order_id": str(row.order_id)})
    if delta > 0:
        await record_change(session, row, "captured", delta, actor)
        await lifecycle.add_money(session, row.order_id, paid=delta)
        emit_event(
            session,
            "payment.captured",
            _payment_data(
                row, status="captured", amount=delta, captured_amount=row.captured_amount + delta
            ),
        )
    await settle_order(session, vault, row.order_id, actor, captured=delta)
    return True


async def settle_order(
    session: AsyncSession, vault: Vault, order_id: uuid.UUID, actor: Actor, *, captured: int = 0
) -> None:
    """After any money move: a pending order covered by its captured money becomes paid
    (exactly once); money captured on a cancelled order is refunded by a job; the order's
    ``payment_status`` is recomputed from the sums."""
    order = (
        await session.execute(
            select(_O.status, _O.total, _O.paid_total, _O.refunded_total).where(_O.id == order_id)
        )
    ).one()
    net = order.paid_total - order.refunded_total
    if order.status == "pending" and order.paid_total > 0 and net >= order.total:
        await lifecycle.record_paid(
            session, vault, order_id, actor=(actor.id, actor.role or "system")
        )
    elif order.status == "cancelled" and captured > 0:
        await _refund_orphan(session, order_id, captured)
    await lifecycle.set_payment_status(
        session, order_id, await _payment_status(session, order_id, order)
    )


async def _refund_orphan(session: AsyncSession, order_id: uuid.UUID, captured: int) -> None:
    """Money arrived for an order that was cancelled meanwhile: never paid-and-cancelled;
    a job gives it back (``payments.refund_orphan``), and operators are told."""
    await enqueue(session, REFUND_ORPHAN, {"order_id": str(order_id), "amount": captured})
    security_event(
        "payment_on_cancelled_order", order_id=str(order_id), amount=captured, level="warning"
    )
    log.warning("payment_on_cancelled_order", order_id=str(order_id), amount=captured)


async def _payment_status(session: AsyncSession, order_id: uuid.UUID, order: Any) -> str:
    """``unpaid``, ``authorized``, ``partially_paid``, ``paid``, ``partially_refunded`` or
    ``refunded``, from the order's sums and its authorised payments."""
    paid, refunded = order.paid_total, order.refunded_total
    if refunded > 0:
        return "refunded" if refunded >= paid else "partially_refunded"
    if paid > 0:
        return "paid" if paid >= order.total else "partially_paid"
    authorized = await session.scalar(
        select(func.count()).where(_P.order_id == order_id, _P.status == "authorized")
    )
    return "authorized" if authorized else "unpaid"


async def lock_refund(session: AsyncSession, refund_id: uuid.UUID) -> Any:
    """The refund row, write-locked for the rest of the transaction (None if missing)."""
    await session.execute(
        update(table_of(Refund)).where(_R.id == refund_id).values(updated_at=_R.updated_at)
    )
    return (await session.execute(select(table_of(Refund)).where(_R.id == refund_id))).first()


async def apply_refund(
    session: AsyncSession, vault: Vault, refund_id: uuid.UUID, result: RefundResult, actor: Actor
) -> bool:
    """Settle a refund with the provider's ``result``, once: a ``pending`` refund that
    ``succeeded`` adds its amount to the order's ``refunded_total`` (``payment.refunded``;
    the order becomes ``refunded`` when everything paid was given back while it was
    ``paid``); one that ``failed`` releases the amount reserved on the payment. A
    ``succeeded`` refund the bank sent back (Stripe ``refund.failed``, which may come after
    or before the events of its success) becomes ``failed`` and its money counts as not
    refunded again (``payment.refund_failed``). A ``failed`` refund never changes again.
    Returns whether anything changed."""
    row = await lock_refund(session, refund_id)
    if row is None or result.status == "pending" or row.status == "failed":
        return False
    if row.status == "succeeded":
        if result.status != "failed":
            return False
        await _refund_sent_back(session, vault, row, result, actor)
        return True
    await _set_refund_status(session, row, result)
    if result.status == "failed":
        await _release(session, row)
        await record_change(session, row, "refund_failed", 0, actor, refund_id=row.id)
        return True
    await record_change(session, row, "refunded", row.amount, actor, refund_id=row.id)
    await lifecycle.add_money(session, row.order_id, refunded=row.amount)
    emit_event(session, "payment.refunded", _refund_data(row))
    order = (
        await session.execute(
            select(_O.status, _O.paid_total, _O.refunded_total).where(_O.id == row.order_id)
        )
    ).one()
    if order.status == "paid" and order.refunded_total >= order.paid_total:
        await lifecycle.record_refunded(
            session, vault, row.order_id, actor=(actor.id, actor.role or "system")
        )
    await settle_order(session, vault, row.order_id, actor)
    return True


def _refund_data(row: Any) -> dict[str, Any]:
    return {
        "payment_id": str(row.payment_id),
        "order_id": str(row.order_id),
        "refund_id": str(row.id),
        "provider": row.provider,
        "amount": row.amount,
    }


async def _set_refund_status(session: AsyncSession, row: Any, result: RefundResult) -> None:
    await session.execute(
        update(table_of(Refund))
        .where(_R.id == row.id)
        .values(
            status=result.status, reference=row.reference or result.reference, updated_at=utcnow()
        )
    )


async def _release(session: AsyncSession, row: Any) -> None:
    """Give the refund's amount back to what the payment may still refund."""
    await session.execute(
        update(table_of(Payment))
        .where(_P.id == row.payment_id)
        .values(refunded_amount=_P.refunded_amount - row.amount, updated_at=utcnow())
    )


async def _refund_sent_back(
    session: AsyncSession, vault: Vault, row: Any, result: RefundResult, actor: Actor
) -> None:
    """A refund that had succeeded failed at the bank: the money stayed with the shop.
    An order already moved to ``refunded`` stays so (staff are told in the log)."""
    await _set_refund_status(session, row, result)
    await _release(session, row)
    await lifecycle.add_money(session, row.order_id, refunded=-row.amount)
    await record_change(session, row, "refund_failed", row.amount, actor, refund_id=row.id)
    emit_event(
        session,
        "payment.refund_failed",
        _refund_data(row) | {"failure_code": result.failure_code},
    )
    log.warning("refund_sent_back", refund_id=str(row.id), order_id=str(row.order_id))
    await settle_order(session, vault, row.order_id, actor)
