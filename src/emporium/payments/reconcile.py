"""Making payments safe over time: asking providers about what we never heard back, and
cancelling orders nobody paid.

Reconciliation (``payments.reconcile``, every ``EMPORIUM_PAYMENTS_RECONCILE_MINUTES``): a
payment still ``pending`` or ``requires_action`` that long after its last change is asked
about at its provider, outside any transaction: by ``retrieve(reference)`` when we stored
the provider's reference, else by ``create`` again with the same payment id (idempotent at
the provider: it answers the intent it made, or makes the one our crashed request never
sent). The answer is applied with :func:`apply.apply_intent` (``source`` ``reconcile``),
which changes nothing when an event or the client's own call got there first (``manual``
payments are not asked: no provider knows whether the money arrived). Stripe keeps
idempotency keys 24 hours only, so a payment without a reference older than
:data:`RECREATE_WITHIN` is never created again (that could charge twice): it is logged for
staff (``payment_needs_attention``) and left as it is. Pending refunds are asked again the
same way: ``refund`` with the same refund id is idempotent at every provider (the
provider answers the refund it made), within the same 23 hours.

Expiry (``payments.expire_orders``, every minute): a ``pending`` order past its
``expires_at`` first has its open payments (``pending``, ``requires_action``,
``authorized``) reconciled (``source`` ``expiry``); an order that got paid meanwhile is left
alone. Then, with the order row locked, if no payment of it is open any more it is
cancelled through ``orders.lifecycle.record_expired`` (role ``system``: stock returned,
``order.cancelled``, whose refund job gives back any partial payment); otherwise it is
left for the next run. Choices: a payment the provider still reports ``pending`` or
``requires_action`` keeps its order (the customer may be completing 3-D Secure: the contract
says never to expire then); an ``authorized`` payment keeps it too (money promised, waiting
for staff to capture or void it; when the provider lets the authorisation lapse it reports
the intent ``cancelled`` and the next run expires the order); a ``manual`` payment, which
no provider can report on, keeps it until staff capture or cancel it. Orders without
``expires_at`` or with an ``external_ref`` (imported history) never expire.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import and_, func, not_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from emporium.core.clock import utcnow
from emporium.core.db.base import table_of
from emporium.orders import lifecycle
from emporium.orders.models import Order
from emporium.payments.apply import apply_intent, system
from emporium.payments.models import OPEN_STATES, Payment, Refund
from emporium.payments.providers.base import Intent, PaymentDeclined, ProviderError
from emporium.payments.providers.manual import ManualProvider
from emporium.payments.refunds import settle
from emporium.payments.service import PaymentsContext, lock_order

log = structlog.get_logger(__name__)
RECREATE_WITHIN = timedelta(hours=23)
"""A payment or refund is sent again to its provider only this young (Stripe forgets
idempotency keys after 24 hours)."""
BATCH = 100
"""At most this many payments, refunds or orders per run; the next run takes the rest."""
STUCK_STATES = ("pending", "requires_action")
_P, _R, _O = table_of(Payment).c, table_of(Refund).c, table_of(Order).c
Maker = async_sessionmaker[AsyncSession]


async def _ask(ctx: PaymentsContext, row: Any) -> Intent | None:
    """The provider's truth about the payment ``row`` now, or None when it cannot tell
    (unreachable, a ``manual`` payment, too old to create again)."""
    provider = ctx.providers.get(row.provider)
    if provider is None:
        return None
    try:
        if row.reference is not None:
            return await provider.retrieve(row.reference)
        if utcnow() - row.created_at > RECREATE_WITHIN:
            log.warning("payment_needs_attention", payment_id=str(row.id), reason="no_reference")
            return None
        return await provider.create(
            payment_id=row.id,
            order_id=row.order_id,
            amount=row.amount,
            currency=row.currency,
            payment_method=row.payment_method,
            capture=ctx.capture,
        )
    except ProviderError as exc:
        log.info("payment_reconcile_unreachable", payment_id=str(row.id), detail=str(exc))
        return None
    except PaymentDeclined as exc:
        if row.reference is not None:
            log.warning("payment_needs_attention", payment_id=str(row.id), reason=exc.code)
            return None
        return Intent("", "failed", row.amount, 0, row.currency, failure_code=exc.code)


async def reconcile_payment(maker: Maker, ctx: PaymentsContext, row: Any, source: str) -> bool:
    """Ask the provider about one payment (``row``: its ``payment`` columns) and apply the
    answer in a transaction of its own; returns whether anything changed."""
    intent = await _ask(ctx, row)
    if intent is None:
        return False
    async with maker() as session, session.begin():
        return await apply_intent(session, ctx.vault, row.id, intent, system(source))


async def _rows(maker: Maker, query: Any) -> list[Any]:
    async with maker() as session:
        return list(await session.execute(query))


async def _needing_attention(maker: Maker, query: Any, what: str) -> None:
    """Log how many rows can no longer be sent again (too old for idempotency)."""
    async with maker() as session:
        count = int(await session.scalar(query) or 0)
    if count:
        log.warning(f"{what}_needs_attention", count=count, reason="older_than_23_hours")


async def reconcile_due(maker: Maker, ctx: PaymentsContext, older_than: timedelta) -> int:
    """Reconcile the payments ``pending`` or ``requires_action`` and the ``pending`` refunds
    unchanged for ``older_than``, oldest first (at most :data:`BATCH` of each); returns how
    many payments changed. ``manual`` payments are left to staff; payments without a
    reference and refunds older than :data:`RECREATE_WITHIN` are only counted in the log
    (``payment_needs_attention``, ``refund_needs_attention``)."""
    now = utcnow()
    cutoff, too_old = now - older_than, now - RECREATE_WITHIN
    askable = [name for name in ctx.providers if name != ManualProvider.name]
    stuck = (_P.status.in_(STUCK_STATES), _P.updated_at <= cutoff, _P.provider.in_(askable))
    lost = and_(_P.reference.is_(None), _P.created_at <= too_old)
    payments = await _rows(
        maker,
        select(table_of(Payment)).where(*stuck, not_(lost)).order_by(_P.updated_at).limit(BATCH),
    )
    changed = 0
    for row in payments:
        changed += await reconcile_payment(maker, ctx, row, "reconcile")
    await _needing_attention(maker, select(func.count()).where(*stuck, lost), "payment")
    await _settle_refunds(maker, ctx, cutoff, too_old)
    return changed


async def _settle_refunds(maker: Maker, ctx: PaymentsContext, cutoff: Any, too_old: Any) -> None:
    """Ask again for the refunds still ``pending`` since ``cutoff`` (same refund id: the
    provider answers the refund it made, or makes the one it never received)."""
    pending = (_R.status == "pending", _R.updated_at <= cutoff, _R.provider.in_(ctx.providers))
    refunds = await _rows(
        maker,
        select(_R.id).where(*pending, _R.created_at > too_old).order_by(_R.updated_at).limit(BATCH),
    )
    for (refund_id,) in refunds:
        async with maker() as session:
            await settle(session, ctx, refund_id, system("reconcile"))
            await session.commit()
    stale = select(func.count()).where(*pending, _R.created_at <= too_old)
    await _needing_attention(maker, stale, "refund")


async def expire_order(maker: Maker, ctx: PaymentsContext, order_id: uuid.UUID) -> bool:
    """Expire one ``pending`` order past its deadline: reconcile its open payments, then
    cancel it (``orders.lifecycle.record_expired``) if it is still pending and none is
    open; returns whether it was cancelled."""
    open_payments = await _rows(
        maker,
        select(table_of(Payment)).where(_P.order_id == order_id, _P.status.in_(OPEN_STATES)),
    )
    for row in open_payments:
        await reconcile_payment(maker, ctx, row, "expiry")
    async with maker() as session, session.begin():
        order = await lock_order(session, order_id)
        if order.status != "pending":
            return False
        still_open = await session.scalar(
            select(func.count()).where(_P.order_id == order_id, _P.status.in_(OPEN_STATES))
        )
        if still_open:
            log.info("order_expiry_waits", order_id=str(order_id), open_payments=still_open)
            return False
        return await lifecycle.record_expired(session, ctx.vault, order_id)


async def expire_due(maker: Maker, ctx: PaymentsContext) -> int:
    """Expire the ``pending`` orders whose ``expires_at`` has passed (not imported ones),
    oldest deadline first, at most :data:`BATCH`; returns how many were cancelled."""
    due = await _rows(
        maker,
        select(_O.id)
        .where(
            _O.status == "pending",
            _O.expires_at.is_not(None),
            _O.expires_at <= utcnow(),
            _O.external_ref.is_(None),
        )
        .order_by(_O.expires_at)
        .limit(BATCH),
    )
    cancelled = 0
    for (order_id,) in due:
        cancelled += await expire_order(maker, ctx, order_id)
    return cancelled
