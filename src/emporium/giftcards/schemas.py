"""API shapes of the gift-cards room (``../shared/API.md``, Promotions and gift cards).
Amounts are integers in the minor unit of the card's ISO 4217 ``currency``; instants are
RFC 3339 with a zone."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct

MAX_BALANCE = 10**12
Balance = Annotated[
    int, Meta(ge=1, le=MAX_BALANCE, description="minor units of the card's currency, >= 1")
]
Currency = Annotated[str, Meta(pattern="^[A-Z]{3}$", description="ISO 4217 code")]
Instant = Annotated[datetime, Meta(tz=True)]
MovementKind = Literal["issued", "debit", "credit"]
GiftCardStatus = Literal["active", "disabled", "expired"]


class GiftCardCreate(Struct, forbid_unknown_fields=True):
    """``POST /gift-cards``: a card of ``initial_balance`` (minor units, > 0) in
    ``currency``, valid until ``expires_at`` (future) if given; ``note`` is for staff
    (sealed at rest: it may name the person it was given to)."""

    initial_balance: Balance
    currency: Currency
    expires_at: Instant | None = None
    note: Annotated[str, Meta(min_length=1, max_length=500)] | None = None


class GiftCardRead(Struct):
    """A gift card without its code (only ``last4``); ``status`` is ``active``,
    ``disabled`` or ``expired``."""

    id: uuid.UUID
    last4: str
    initial_balance: int
    balance: int
    currency: str
    status: GiftCardStatus
    expires_at: datetime | None
    disabled_at: datetime | None
    note: str | None
    created_at: datetime
    updated_at: datetime


class GiftCardCreated(GiftCardRead):
    """The answer to ``POST /gift-cards``: the card and its ``code``
    (``XXXX-XXXX-XXXX-XXXX``), shown this once and stored nowhere."""

    code: str


class MovementRead(Struct):
    """One ledger line: ``amount`` signed (debits negative), ``balance_after`` the card's
    balance right after it, and the payment, refund and order it served."""

    id: uuid.UUID
    kind: MovementKind
    amount: int
    balance_after: int
    payment_id: uuid.UUID | None
    refund_id: uuid.UUID | None
    order_id: uuid.UUID | None
    created_at: datetime


class GiftCardDetail(GiftCardRead):
    """``GET /gift-cards/{id}``: the card and its ledger, oldest movement first."""

    movements: list[MovementRead]


class GiftCardPage(Struct):
    """A page of gift cards, newest first (keyset pagination)."""

    items: list[GiftCardRead]
    next_cursor: str | None


class BalanceCheck(Struct, forbid_unknown_fields=True):
    """``POST /gift-cards/balance``: the code as printed (hyphens, spaces and case do not
    matter)."""

    code: Annotated[str, Meta(min_length=1, max_length=64)]


class BalanceRead(Struct):
    """What a code holder may know: the balance, its currency and the expiry."""

    balance: int
    currency: str
    expires_at: datetime | None
