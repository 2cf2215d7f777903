"""The one small interface every payment provider implements, and the shapes it speaks.

A provider is a module and a settings block, not a plugin: ``manual``, ``test``, ``stripe``
``gift_card``. Each answers in Emporium's vocabulary, so the payments service
never sees a provider's own statuses:

- :class:`Intent`: the provider's truth about one payment (Stripe: a PaymentIntent).
- :class:`RefundResult`: the provider's truth about one refund.
- :class:`ProviderEvent`: one event the provider sent (Stripe: a webhook ``Event``), parsed
  and its signature verified.

Amounts are integers in the currency's minor unit (ISO 4217). Every call that changes
something at the provider carries an idempotency key derived from our own row id
(:func:`payment_key`, :func:`refund_key`), so a call repeated after a crash or a timeout
changes nothing twice, and creating again with the same key finds the first intent.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol

PaymentState = Literal[
    "pending", "requires_action", "authorized", "captured", "failed", "cancelled"
]
"""A payment's status, in the contract's words (``../shared/API.md``, Payments)."""

RefundState = Literal["pending", "succeeded", "failed"]

PAYMENT_ID_KEY = "emporium_payment_id"
"""The metadata key that carries our payment id to the provider and back in its events."""
ORDER_ID_KEY = "emporium_order_id"
REFUND_ID_KEY = "emporium_refund_id"


def payment_key(payment_id: uuid.UUID, operation: str = "create") -> str:
    """The idempotency key of one operation (``create``, ``capture``, ``cancel``) on one of
    our payments: the same on every retry, after any crash."""
    return f"emporium-payment-{payment_id}-{operation}"


def refund_key(refund_id: uuid.UUID) -> str:
    """The idempotency key of one of our refunds at the provider."""
    return f"emporium-refund-{refund_id}"


@dataclass(frozen=True)
class Intent:
    """The provider's view of one payment.

    ``reference`` is the provider's id (Stripe ``pi_...``); ``amount`` what was asked,
    ``captured_amount`` what was taken (minor units); ``client_secret`` what a browser
    needs to finish the payment (Stripe.js), never logged; ``failure_code`` the provider's
    decline code when ``status`` is ``failed`` (``card_declined``...).
    """

    reference: str
    status: PaymentState
    amount: int
    captured_amount: int
    currency: str
    client_secret: str | None = None
    failure_code: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundResult:
    """The provider's view of one refund (``reference``: Stripe ``re_...``)."""

    reference: str
    status: RefundState
    amount: int
    payment_reference: str
    failure_code: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderEvent:
    """One verified event: ``id`` is the provider's event id (each is applied once),
    ``type`` the provider's event type. It carries the object it concerns as it was when
    the event was made: ``intent`` for payment events, ``refund`` for refund events (or
    neither, for an event type Emporium does not use)."""

    id: str
    type: str
    intent: Intent | None = None
    refund: RefundResult | None = None


class ProviderError(Exception):
    """The provider could not be reached or answered with a server error (timeout, 5xx):
    the outcome is unknown, so the caller keeps the payment as it was and reconciliation
    asks again later."""


class PaymentDeclined(Exception):
    """The provider refused the request itself (a 4xx other than a decline that it reports
    on the intent): ``code`` is the provider's error code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class InvalidSignature(Exception):
    """An event whose signature is missing, wrong or outside the tolerance window."""


class Provider(Protocol):
    """What every provider does. All amounts in minor units; all calls idempotent.

    Raises from every call: :class:`ProviderError` (outcome unknown: retry later) or
    :class:`PaymentDeclined` (refused; nothing happened at the provider).
    """

    name: ClassVar[str]

    def public_settings(self) -> dict[str, str]:
        """What a storefront may know (Stripe: ``publishable_key``); no secrets."""
        ...

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
        """Create (and, with a ``payment_method``, confirm) the intent, with idempotency key
        ``payment_key(payment_id)`` and metadata ``{PAYMENT_ID_KEY, ORDER_ID_KEY}``. Calling
        it again with the same ``payment_id`` answers the same intent, as it is now."""
        ...

    async def retrieve(self, reference: str) -> Intent:
        """The intent as the provider sees it now (reconciliation)."""
        ...

    async def capture(self, reference: str, amount: int, *, payment_id: uuid.UUID) -> Intent:
        """Capture ``amount`` of an authorised intent."""
        ...

    async def cancel(self, reference: str, *, payment_id: uuid.UUID) -> Intent:
        """Void an intent that is not captured."""
        ...

    async def refund(
        self, reference: str, amount: int, *, refund_id: uuid.UUID, payment_id: uuid.UUID
    ) -> RefundResult:
        """Refund ``amount`` of a captured intent, with idempotency key
        ``refund_key(refund_id)`` and metadata ``{REFUND_ID_KEY, PAYMENT_ID_KEY}``."""
        ...

    def parse_event(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        """Verify the signature of a webhook delivery and parse it.

        Raises:
            InvalidSignature: missing, wrong or stale signature; unparseable body.
        """
        ...
