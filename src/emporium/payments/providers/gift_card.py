"""The ``gift_card`` provider: a payment taken from a gift card's balance, at once.

The payment's ``payment_method`` is ``gift_card:<card id>`` (:func:`method_of`), set by the
payments service when it resolved the buyer's code in transaction A; the code itself is
never stored with the payment. The provider keeps its state in the gift-cards room's tables
(``gift_card``, ``gift_card_movement``), written in its own transactions on its own
sessions, like the ``test`` provider:

- ``create`` debits the card with one conditional update (:func:`giftcards.service.debit`)
  and answers ``captured`` (capture mode does not apply: a gift card is never only
  authorised), or ``failed`` with ``insufficient_funds`` when the card cannot pay (too
  little balance, disabled or expired meanwhile): then nothing was debited. The debit is
  unique per payment id in the ledger, so a retry, a replay or reconciliation finds the
  first debit and answers the same captured intent; it never debits twice.
- ``refund`` credits the card, once per refund id (unique in the ledger).
- ``retrieve`` answers from the ledger (reconciliation). No webhooks: every answer is
  synchronous, so :meth:`GiftCardProvider.parse_event` refuses every delivery.

The intent's ``reference`` is ``gc_<payment id hex>``, known before the call.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from emporium.giftcards import service as giftcards
from emporium.payments.providers.base import (
    ORDER_ID_KEY,
    PAYMENT_ID_KEY,
    REFUND_ID_KEY,
    Intent,
    InvalidSignature,
    PaymentDeclined,
    ProviderError,
    ProviderEvent,
    RefundResult,
)

NAME = "gift_card"
METHOD_PREFIX = "gift_card:"
REFERENCE_PREFIX = "gc_"
INSUFFICIENT = "insufficient_funds"


def method_of(card_id: uuid.UUID) -> str:
    """The ``payment_method`` a gift-card payment stores: the card's id, never its code."""
    return f"{METHOD_PREFIX}{card_id}"


def _card_of(payment_method: str | None) -> uuid.UUID:
    method = payment_method or ""
    try:
        if method.startswith(METHOD_PREFIX):
            return uuid.UUID(method.removeprefix(METHOD_PREFIX))
    except ValueError:
        pass
    raise PaymentDeclined("No gift card for this payment.", "resource_missing")


def _reference(payment_id: uuid.UUID) -> str:
    return f"{REFERENCE_PREFIX}{payment_id.hex}"


def _payment_of(reference: str) -> uuid.UUID:
    try:
        return uuid.UUID(hex=reference.removeprefix(REFERENCE_PREFIX))
    except ValueError:
        raise PaymentDeclined(f"No such payment: {reference!r}", "resource_missing") from None


def _captured(debit: Any, currency: str) -> Intent:
    amount = -int(debit.amount)
    meta = {PAYMENT_ID_KEY: str(debit.payment_id)}
    if debit.order_id is not None:
        meta[ORDER_ID_KEY] = str(debit.order_id)
    return Intent(
        _reference(debit.payment_id), "captured", amount, amount, currency, None, None, meta
    )


class GiftCardProvider:
    """See the module docstring; ``sessionmaker`` holds the cards' state."""

    name: ClassVar[str] = NAME

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    def public_settings(self) -> dict[str, str]:
        """What the storefront sends: the card's code in ``code``."""
        return {"fields": "code"}

    async def create(
        self,
        *,
        payment_id: uuid.UUID,
        order_id: uuid.UUID,
        amount: int,
        currency: str,
        payment_method: str | None,
        capture: Literal["automatic", "manual"],
    ) -> Intent:
        """Debit ``amount`` (minor units) from the payment's card once per ``payment_id``:
        ``captured``, or ``failed`` with ``insufficient_funds`` and nothing debited.

        Raises PaymentDeclined ``resource_missing`` without a ``gift_card:<id>`` method."""
        card_id = _card_of(payment_method)
        try:
            async with self._sessionmaker() as session, session.begin():
                if await giftcards.debit_of(session, payment_id) is None:
                    await giftcards.debit(
                        session, card_id, amount, currency, payment_id=payment_id, order_id=order_id
                    )
        except IntegrityError:
            pass  # this payment debited at the same time (unique), or the CHECK refused
        try:
            return await self.retrieve(_reference(payment_id), currency)
        except PaymentDeclined:  # no debit: the card could not pay, nothing was taken
            meta = {PAYMENT_ID_KEY: str(payment_id), ORDER_ID_KEY: str(order_id)}
            return Intent(
                _reference(payment_id), "failed", amount, 0, currency, None, INSUFFICIENT, meta
            )

    async def retrieve(self, reference: str, currency: str = "") -> Intent:
        """The payment as the ledger tells it: ``captured`` with its debit; else
        PaymentDeclined ``resource_missing`` (never debited)."""
        payment_id = _payment_of(reference)
        async with self._sessionmaker() as session:
            found = await giftcards.debit_of(session, payment_id)
            if found is None:
                raise PaymentDeclined(f"No debit for {reference!r}.", "resource_missing")
            card = await giftcards.card_currency(session, found.gift_card_id)
        return _captured(found, currency or card)

    async def capture(self, reference: str, amount: int, *, payment_id: uuid.UUID) -> Intent:
        """A gift-card payment is captured when it is made: the payment as it is."""
        return await self.retrieve(reference)

    async def cancel(self, reference: str, *, payment_id: uuid.UUID) -> Intent:
        """Void a payment that took nothing (no debit): ``cancelled``. A debited one is
        captured and cannot be voided (PaymentDeclined ``payment_intent_unexpected_state``;
        it is refunded instead)."""
        async with self._sessionmaker() as session:
            found = await giftcards.debit_of(session, payment_id)
        if found is not None:
            raise PaymentDeclined("This payment is captured.", "payment_intent_unexpected_state")
        meta = {PAYMENT_ID_KEY: str(payment_id)}
        return Intent(_reference(payment_id), "cancelled", 1, 0, "", None, None, meta)

    async def refund(
        self, reference: str, amount: int, *, refund_id: uuid.UUID, payment_id: uuid.UUID
    ) -> RefundResult:
        """Credit ``amount`` (minor units) back to the payment's card once per
        ``refund_id``; more than the debit is refused (PaymentDeclined
        ``charge_already_refunded``; the payments room never asks for it)."""
        meta = {REFUND_ID_KEY: str(refund_id), PAYMENT_ID_KEY: str(payment_id)}
        result = RefundResult(f"gcr_{refund_id.hex}", "succeeded", amount, reference, None, meta)
        try:
            async with self._sessionmaker() as session, session.begin():
                if await giftcards.credit_of(session, refund_id) is not None:
                    return result
                debit = await giftcards.debit_of(session, payment_id)
                if debit is None or amount > -debit.amount:
                    raise PaymentDeclined("Refund exceeds the debit.", "charge_already_refunded")
                await giftcards.credit(
                    session,
                    debit.gift_card_id,
                    amount,
                    refund_id=refund_id,
                    payment_id=payment_id,
                    order_id=debit.order_id,
                )
        except IntegrityError:  # the same refund credited at the same time: it is done
            async with self._sessionmaker() as session:
                if await giftcards.credit_of(session, refund_id) is None:
                    raise ProviderError("the credit could not be written") from None
        return result

    def parse_event(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        """Gift cards send no events: every delivery is refused (InvalidSignature)."""
        raise InvalidSignature("the gift_card provider sends no events")
