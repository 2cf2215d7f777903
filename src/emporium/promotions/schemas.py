"""API shapes of promotions (``API.md``, "Promotions and gift cards"). ``value``: basis
points for ``percentage`` (1000 = 10 %), minor units of ``currency`` for ``fixed_amount``,
0 for ``free_shipping``; ``min_subtotal`` in minor units of ``currency``; instants RFC 3339
with a zone. Input structs forbid unknown fields."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

PromotionType = Literal["percentage", "fixed_amount", "free_shipping"]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
Code = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=200,
        description="3-64 letters, digits, '-' or '_'; any case (stored upper-case)",
    ),
]
Value = Annotated[
    int,
    Meta(
        ge=0,
        le=10**12,
        description="basis points (percentage, 1-10000), minor units (fixed_amount, >= 1) "
        "or 0 (free_shipping)",
    ),
]
Money = Annotated[int, Meta(ge=0, le=10**12, description="minor units of the currency")]
Uses = Annotated[int, Meta(ge=1, le=10**9)]
Instant = Annotated[datetime, Meta(tz=True, description="RFC 3339 with a zone")]
Currency = Annotated[str, Meta(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. USD")]
Ids = Annotated[list[uuid.UUID], Meta(max_length=200)]


class AppliesTo(Struct, forbid_unknown_fields=True):
    """What a promotion discounts: the lines of these categories (sub-categories included)
    or products; both empty (or ``applies_to`` absent): the whole order."""

    category_ids: Ids = []
    product_ids: Ids = []


class PromotionCreate(Struct, forbid_unknown_fields=True):
    """A new promotion; without ``code`` it applies by itself when its conditions hold.
    ``currency`` defaults to the shop's."""

    name: Name
    type: PromotionType
    value: Value = 0
    code: Code | None = None
    applies_to: AppliesTo | None = None
    min_subtotal: Money | None = None
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    usage_limit: Uses | None = None
    usage_limit_per_customer: Uses | None = None
    combinable: bool = False
    active: bool = True
    currency: Currency | None = None


class PromotionUpdate(Struct, forbid_unknown_fields=True):
    """Fields to change on a promotion (``null`` clears an optional one)."""

    name: Name | UnsetType = UNSET
    type: PromotionType | UnsetType = UNSET
    value: Value | UnsetType = UNSET
    code: Code | UnsetType | None = UNSET
    applies_to: AppliesTo | UnsetType | None = UNSET
    min_subtotal: Money | UnsetType | None = UNSET
    starts_at: Instant | UnsetType | None = UNSET
    ends_at: Instant | UnsetType | None = UNSET
    usage_limit: Uses | UnsetType | None = UNSET
    usage_limit_per_customer: Uses | UnsetType | None = UNSET
    combinable: bool | UnsetType = UNSET
    active: bool | UnsetType = UNSET
    currency: Currency | UnsetType = UNSET


class AppliesToRead(Struct):
    """The categories and products a promotion discounts (both empty: the whole order)."""

    category_ids: list[uuid.UUID]
    product_ids: list[uuid.UUID]


class PromotionRead(Struct):
    """A promotion; ``times_used``: the orders that hold it (given back on cancellation)."""

    id: uuid.UUID
    name: str
    code: str | None
    type: PromotionType
    value: int
    currency: str
    applies_to: AppliesToRead
    min_subtotal: int | None
    starts_at: datetime | None
    ends_at: datetime | None
    usage_limit: int | None
    usage_limit_per_customer: int | None
    times_used: int
    combinable: bool
    active: bool
    created_at: datetime
    updated_at: datetime


class PromotionPage(Struct):
    """A keyset page of promotions, oldest first."""

    items: list[PromotionRead]
    next_cursor: str | None
