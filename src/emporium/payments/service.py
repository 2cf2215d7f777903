"""Taking an order's money: creating a payment, capturing and voiding it (staff).

A payment is written and committed (transaction A) *before* the provider is asked, so that
nothing the provider did can be lost: a crash after the call leaves a ``pending`` payment
that reconciliation asks about (the provider call is idempotent on our payment id). The
provider's answer is then applied in transaction B (``apply.apply_intent``), racing fairly
with the provider's own event, whichever comes first.

Choice (ADR 0018): when the provider cannot be reached (:class:`ProviderError`) the
request still answers ``201`` with the payment ``pending``: it exists, the client may read it
(``GET /orders/{id}/payments``), and reconciliation finishes it. A refusal by the provider
(:class:`PaymentDeclined`) answers ``201`` with the payment ``failed`` and its
``failure_code``, like a declined card.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client import Counter
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.identity import Caller
from emporium.accounts.protect import Vault
from emporium.audit.chain import record_audit
from emporium.core.clock import utcnow
from emporium.core.db.base import table_of
from emporium.core.errors import InvalidInput
from emporium.core.security_events import security_event
from emporium.giftcards import service as giftcards
from emporium.giftcards.exceptions import GiftCardCurrency, GiftCardInvalid
from emporium.orders.models import Order
from emporium.payments.apply import Actor, apply_intent, record_change
from emporium.payments.exceptions import (
    AmountExceedsBalance,
    ManualForStaffOnly,
    OrderNotPayable,
    PaymentNotCapturable,
    PaymentNotFound,
    ProviderNotFound,
)
from emporium.payments.models import OPEN_STATES, Payment
from emporium.payments.providers.base import (
    Intent,
    PaymentDeclined,
    Provider,
    ProviderError,
)
from emporium.payments.providers.gift_card import NAME as GIFT_CARD
from emporium.payments.providers.gift_card import method_of
from emporium.payments.queries import get_payment
from emporium.payments.schemas import PaymentCreate, PaymentRead

Commit = Callable[[], Awaitable[None]]
_P, _O = table_of(Payment).c, table_of(Order).c
PAYMENTS = Counter(
    "emporium_payments_total",
    "Payments asked of a provider, per provider and result: the state it answered "
    "(captured, authorized, failed for a decline, requires_action...), or unreachable",
    ["provider", "result"],
)


@dataclass(frozen=True)
class PaymentsContext:
    """What the payments service needs from the application: the vault (sealed client
    secrets), the enabled providers by name, and the capture mode
    (``EMPORIUM_PAYMENTS_CAPTURE``)."""

    vault: Vault
    providers: Mapping[str, Provider]
    capture: Literal["automatic", "manual"] = "automatic"

    def provider(self, name: str) -> Provider:
        """The enabled provider ``name``. Raises ProviderNotFound (404)."""
        found = self.providers.get(name)
        if found is None:
            raise ProviderNotFound(f"No payment provider {name!r} is enabled.")
        return found


async def lock_order(session: AsyncSession, order_id: uuid.UUID) -> Any:
    """The order's payment facts, write-locked for the transaction (one payment decision
    at a time per order)."""
    await session.execute(
        update(table_of(Order)).where(_O.id == order_id).values(updated_at=_O.updated_at)
    )
    return (
        await session.execute(
            select(_O.status, _O.total, _O.paid_total, _O.refunded_total, _O.currency).where(
                _O.id == order_id
            )
        )
    ).one()


async def unpaid_balance(session: AsyncSession, order_id: uuid.UUID, order: Any) -> int:
    """``total - paid_total + refunded_total`` less what open payments (pending,
    requires_action, authorized) may still take; minor units."""
    open_amount = await session.scalar(
        select(func.coalesce(func.sum(_P.amount - _P.captured_amount), 0)).where(
            _P.order_id == order_id, _P.status.in_(OPEN_STATES)
        )
    )
    return int(order.total - order.paid_total + order.refunded_total - (open_amount or 0))


async def open_payment(
    session: AsyncSession,
    ctx: PaymentsContext,
    order_id: uuid.UUID,
    data: PaymentCreate,
    actor: Actor,
    is_staff: bool,
) -> uuid.UUID:
    """Transaction A of ``POST /orders/{id}/payments``: check and write a ``pending``
    payment (and its ``created`` history line); the caller commits before the provider call.

    Raises:
        ProviderNotFound: (404) the provider is not enabled.
        ManualForStaffOnly: (403) a non-staff caller asked for ``manual``.
        OrderNotPayable: (409 ``order_not_payable``) the order is not ``pending``.
        AmountExceedsBalance: (409 ``amount_exceeds_balance``) more than the unpaid balance,
            or nothing is left to pay.
        GiftCardInvalid, GiftCardCurrency: (422) see :func:`_terms`.
    """
    ctx.provider(data.provider)
    if data.provider == "manual" and not is_staff:
        raise ManualForStaffOnly("Only staff record manual payments.")
    order = await lock_order(session, order_id)
    if order.status != "pending":
        raise OrderNotPayable(f"This order is {order.status}; it cannot be paid.")
    balance = await unpaid_balance(session, order_id, order)
    method, amount = await _terms(session, ctx, data, order.currency, balance, actor)
    if amount <= 0 or amount > balance:
        raise AmountExceedsBalance(f"The unpaid balance is {max(balance, 0)}.")
    now, payment_id = utcnow(), uuid.uuid4()
    row = {
        "id": payment_id,
        "order_id": order_id,
        "provider": data.provider,
        "status": "pending",
        "amount": amount,
        "captured_amount": 0,
        "refunded_amount": 0,
        "currency": order.currency,
        "payment_method": method,
        "created_by": actor.id,
        "created_at": now,
        "updated_at": now,
    }
    await session.execute(insert(table_of(Payment)), [row])
    await record_change(session, _Row(payment_id, order_id), "created", 0, actor)
    return payment_id


async def _terms(
    session: AsyncSession,
    ctx: PaymentsContext,
    data: PaymentCreate,
    currency: str,
    balance: int,
    actor: Actor,
) -> tuple[str | None, int]:
    """The payment method and amount (minor units) a new payment stores. For ``gift_card``
    the buyer's ``code`` is resolved here to its card (stored as ``gift_card:<card id>``,
    never the code) and the amount defaults to ``min(card balance, unpaid balance)``; other
    providers take ``payment_method`` as sent and default to the unpaid balance.

    Raises:
        InvalidInput: (422) a ``code`` sent to another provider.
        GiftCardInvalid: (422 ``gift_card_invalid``) no code, or one that is unknown,
            disabled or expired (one answer for all; logged without the code).
        GiftCardCurrency: (422) the card is in another currency than the order.
    """
    if data.provider != GIFT_CARD:
        if data.code is not None:
            raise InvalidInput(
                "code: only the gift_card provider takes a code.",
                errors=[{"loc": ["body", "code"], "msg": "only for provider gift_card"}],
            )
        return data.payment_method, balance if data.amount is None else data.amount
    card = None
    if data.code is not None:
        card = await giftcards.find_usable(session, ctx.vault.ring, data.code)
    if card is None:
        security_event("input_validation_fail", user_id=actor.id, reason="gift_card_invalid")
        raise GiftCardInvalid("This gift card code cannot be used.")
    if card.currency != currency:
        raise GiftCardCurrency(f"This gift card is in {card.currency}, the order in {currency}.")
    if data.amount is not None:
        return method_of(card.id), data.amount
    # An empty card still makes a payment, declined ``insufficient_funds`` by the provider,
    # as a card that was emptied by a concurrent payment meanwhile is.
    return method_of(card.id), min(card.balance, balance) if card.balance > 0 else balance


@dataclass(frozen=True)
class _Row:
    id: uuid.UUID
    order_id: uuid.UUID


async def ask_provider(
    session: AsyncSession, ctx: PaymentsContext, payment_id: uuid.UUID, actor: Actor
) -> PaymentRead:
    """After transaction A committed: create the intent at the provider (outside any
    transaction; idempotent on ``payment_id``), then apply its answer (transaction B, which
    the caller commits). Returns the payment as it is then."""
    row = (await session.execute(select(table_of(Payment)).where(_P.id == payment_id))).one()
    await session.rollback()  # hold no transaction during the provider call
    provider = ctx.provider(row.provider)
    try:
        created = await provider.create(
            payment_id=payment_id,
            order_id=row.order_id,
            amount=row.amount,
            currency=row.currency,
            payment_method=row.payment_method,
            capture=ctx.capture,
        )
        intent: Intent | None = created
        result: str = created.status
    except ProviderError:
        intent, result = None, "unreachable"  # stays pending: reconciliation asks again
    except PaymentDeclined as exc:
        intent = Intent("", "failed", row.amount, 0, row.currency, failure_code=exc.code)
        result = intent.status
    PAYMENTS.labels(row.provider, result).inc()
    if intent is not None:
        await apply_intent(session, ctx.vault, payment_id, intent, actor)
    found = await get_payment(session, ctx.vault, payment_id)
    assert found is not None
    return found


async def replay(
    session: AsyncSession, ctx: PaymentsContext, payment_id: uuid.UUID, actor: Actor
) -> PaymentRead | None:
    """The payment an ``Idempotency-Key`` made, for the replayed request (None if gone).

    A ``pending`` payment with no provider reference never had the provider's answer
    applied: the first request died (or lost the provider) between transaction A and
    transaction B. The replay finishes that request (:func:`ask_provider`, idempotent on the
    payment id, so the provider answers the intent it already made, not a second charge)
    instead of answering ``pending`` until a webhook or reconciliation comes."""
    found = await get_payment(session, ctx.vault, payment_id)
    if found is None or found.status != "pending":
        return found
    reference = await session.scalar(select(_P.reference).where(_P.id == payment_id))
    if reference is not None:
        return found
    return await ask_provider(session, ctx, payment_id, actor)


async def _staff_payment(session: AsyncSession, payment_id: uuid.UUID) -> Any:
    row = (await session.execute(select(table_of(Payment)).where(_P.id == payment_id))).first()
    if row is None:
        raise PaymentNotFound("No such payment.")
    return row


async def capture_payment(
    session: AsyncSession,
    ctx: PaymentsContext,
    caller: Caller,
    payment_id: uuid.UUID,
    amount: int | None,
) -> PaymentRead:
    """Staff: capture ``amount`` (default: the whole payment) of an authorised payment, or
    record a ``manual`` payment as received. The provider is asked outside any transaction;
    its answer is applied in the request's.

    Raises:
        PaymentNotFound: (404).
        PaymentNotCapturable: (409 ``payment_state_conflict``) the payment is not
            authorised (nor a pending manual one), or ``amount`` exceeds it.
        PaymentProviderError: (502) the provider could not be reached.
    """
    row = await _staff_payment(session, payment_id)
    capturable = row.status == "authorized" or (
        row.provider == "manual" and row.status == "pending"
    )
    take = row.amount if amount is None else amount
    if not capturable or take > row.amount:
        raise PaymentNotCapturable(f"A {row.status} payment of {row.amount} cannot capture {take}.")
    await session.rollback()
    intent = await _call(
        ctx.provider(row.provider).capture(row.reference, take, payment_id=payment_id)
    )
    await apply_intent(session, ctx.vault, payment_id, intent, Actor.of(caller, "staff"))
    action = "payment.manual_received" if row.provider == "manual" else "payment.captured"
    details = {"order_id": row.order_id, "amount": take, "currency": row.currency}
    await record_audit(
        session, action=action, object_type="payment", object_id=payment_id, details=details
    )
    return await _read(session, ctx, payment_id)


async def cancel_payment(
    session: AsyncSession, ctx: PaymentsContext, caller: Caller, payment_id: uuid.UUID
) -> PaymentRead:
    """Staff: void a payment that took no money (pending, requires_action, authorized).

    Raises PaymentNotFound (404), PaymentNotCapturable (409 ``payment_state_conflict``),
    PaymentProviderError (502)."""
    row = await _staff_payment(session, payment_id)
    if row.status not in OPEN_STATES:
        raise PaymentNotCapturable(f"A {row.status} payment cannot be cancelled.")
    await session.rollback()
    provider = ctx.provider(row.provider)
    intent = await _call(provider.cancel(row.reference or "", payment_id=payment_id))
    await apply_intent(session, ctx.vault, payment_id, intent, Actor.of(caller, "staff"))
    return await _read(session, ctx, payment_id)


async def _call(call: Awaitable[Intent]) -> Intent:
    """A provider call from a staff request: its failures as problem answers."""
    from emporium.payments.exceptions import PaymentProviderError

    try:
        return await call
    except ProviderError as exc:
        raise PaymentProviderError("The payment provider could not be reached.") from exc
    except PaymentDeclined as exc:
        raise PaymentNotCapturable(f"The provider refused: {exc.code}.") from exc


async def _read(session: AsyncSession, ctx: PaymentsContext, payment_id: uuid.UUID) -> PaymentRead:
    found = await get_payment(session, ctx.vault, payment_id)
    if found is None:  # pragma: no cover - a payment is never deleted alone
        raise PaymentNotFound("No such payment.")
    return found
