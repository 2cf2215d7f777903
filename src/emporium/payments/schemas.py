"""API shapes of the payments room (``../shared/API.md``, Payments). Amounts are integers in
the currency's minor unit; floats, strings, zero and negatives are refused (422)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct

MAX_AMOUNT = 10**12
Amount = Annotated[
    int, Meta(ge=1, le=MAX_AMOUNT, description="minor units of the order's currency, >= 1")
]
PaymentStatus = Literal[
    "pending", "requires_action", "authorized", "captured", "failed", "cancelled"
]
RefundStatus = Literal["pending", "succeeded", "failed"]


class PaymentCreate(Struct, forbid_unknown_fields=True):
    """``POST /orders/{id}/payments``: ``amount`` defaults to the unpaid balance;
    ``payment_method`` is the provider's (``pm_card_visa`` with ``test``); ``code`` is the
    gift card's, with provider ``gift_card`` only (then ``amount`` defaults to the smaller of
    the card's balance and the unpaid balance)."""

    provider: Annotated[str, Meta(min_length=1, max_length=32)]
    amount: Amount | None = None
    payment_method: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    code: Annotated[str, Meta(min_length=1, max_length=64)] | None = None


class PaymentRead(Struct, omit_defaults=True):
    """A payment; ``client_secret`` while a browser still has something to do,
    ``failure_code`` when it failed."""

    id: uuid.UUID
    order_id: uuid.UUID
    provider: str
    status: PaymentStatus
    amount: int
    captured_amount: int
    refunded_amount: int
    currency: str
    created_at: datetime
    updated_at: datetime
    client_secret: str | None = None
    failure_code: str | None = None


class PaymentList(Struct):
    """An order's payments, oldest first."""

    items: list[PaymentRead]


class CaptureBody(Struct, forbid_unknown_fields=True):
    """``POST /payments/{id}/capture``: ``amount`` defaults to the whole payment."""

    amount: Amount | None = None


class RefundCreate(Struct, forbid_unknown_fields=True):
    """``POST /orders/{id}/refunds``: without ``payment_id``, spread over captured
    payments, gift cards first, then the newest first."""

    amount: Amount
    reason: Annotated[str, Meta(min_length=1, max_length=500)]
    payment_id: uuid.UUID | None = None


class RefundRead(Struct):
    """A refund."""

    id: uuid.UUID
    payment_id: uuid.UUID
    amount: int
    status: RefundStatus
    reason: str
    created_at: datetime


class RefundList(Struct):
    """An order's refunds, oldest first."""

    items: list[RefundRead]


class ProviderRead(Struct):
    """An enabled provider and what a storefront may know of it."""

    name: str
    settings: dict[str, str]


class ProviderList(Struct):
    """The enabled providers."""

    items: list[ProviderRead]


class EventAck(Struct):
    """The answer to a provider's event delivery."""

    received: bool
