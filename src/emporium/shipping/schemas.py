"""API shapes of shipping zones, shipping methods and tax rates. Money: integer minor units
of the shop currency; rates: basis points (1900 = 19 %). Input structs forbid unknown
fields."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from msgspec import UNSET, Meta, Struct, UnsetType

Country = Annotated[
    str, Meta(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code, e.g. DE")
]
Region = Annotated[
    str,
    Meta(pattern=r"^[A-Z]{2}-[A-Z0-9]{1,3}$", description="ISO 3166-2 code, e.g. US-CA"),
]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
TaxClass = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=50,
        pattern=r"^[a-z0-9_-]+$",
        description="a tax class such as standard, reduced, zero",
    ),
]
Money = Annotated[int, Meta(ge=0, le=10**12, description="minor units of the shop currency")]
Grams = Annotated[int, Meta(ge=0, le=10**9)]
RateBp = Annotated[int, Meta(ge=0, le=10_000, description="basis points: 1900 = 19 %")]
Days = Annotated[list[Annotated[int, Meta(ge=0, le=365)]], Meta(min_length=2, max_length=2)]


class ZoneCreate(Struct, forbid_unknown_fields=True):
    """A zone: whole countries and/or subdivisions (at least one of them)."""

    name: Name
    countries: Annotated[list[Country], Meta(max_length=300)] = []
    regions: Annotated[list[Region], Meta(max_length=500)] = []


class ZoneUpdate(Struct, forbid_unknown_fields=True):
    """Fields to change on a zone."""

    name: Name | UnsetType = UNSET
    countries: Annotated[list[Country], Meta(max_length=300)] | UnsetType = UNSET
    regions: Annotated[list[Region], Meta(max_length=500)] | UnsetType = UNSET


class ZoneRead(Struct):
    """A shipping zone."""

    id: uuid.UUID
    name: str
    countries: list[str]
    regions: list[str]
    created_at: datetime
    updated_at: datetime


class ZonePage(Struct):
    """A keyset page of zones, oldest first."""

    items: list[ZoneRead]
    next_cursor: str | None


class MethodCreate(Struct, forbid_unknown_fields=True):
    """A flat-rate method of a zone. ``free_over``: free when the subtotal after discounts
    reaches it; ``min/max_weight_grams``: the cart weights it serves; ``delivery_days``:
    ``[min, max]``."""

    zone_id: uuid.UUID
    name: Name
    price: Money
    carrier: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    free_over: Money | None = None
    min_weight_grams: Grams | None = None
    max_weight_grams: Grams | None = None
    tax_class: TaxClass = "standard"
    active: bool = True
    delivery_days: Days | None = None


class MethodUpdate(Struct, forbid_unknown_fields=True):
    """Fields to change on a method (``null`` clears an optional one)."""

    zone_id: uuid.UUID | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    price: Money | UnsetType = UNSET
    carrier: Annotated[str, Meta(min_length=1, max_length=100)] | UnsetType | None = UNSET
    free_over: Money | UnsetType | None = UNSET
    min_weight_grams: Grams | UnsetType | None = UNSET
    max_weight_grams: Grams | UnsetType | None = UNSET
    tax_class: TaxClass | UnsetType = UNSET
    active: bool | UnsetType = UNSET
    delivery_days: Days | UnsetType | None = UNSET


class MethodRead(Struct):
    """A shipping method; ``price`` and ``free_over`` in minor units of ``currency``."""

    id: uuid.UUID
    zone_id: uuid.UUID
    name: str
    carrier: str | None
    price: int
    currency: str
    free_over: int | None
    min_weight_grams: int | None
    max_weight_grams: int | None
    tax_class: str
    active: bool
    delivery_days: list[int] | None
    created_at: datetime
    updated_at: datetime


class MethodPage(Struct):
    """A keyset page of methods, oldest first."""

    items: list[MethodRead]
    next_cursor: str | None


class TaxRateCreate(Struct, forbid_unknown_fields=True):
    """A rate for ``tax_class`` in ``country`` or, with ``region``, in that subdivision of it
    (which then replaces the country's rate there)."""

    country: Country
    rate_bp: RateBp
    name: Name
    tax_class: TaxClass = "standard"
    region: Region | None = None


class TaxRateUpdate(Struct, forbid_unknown_fields=True):
    """Fields to change on a rate."""

    rate_bp: RateBp | UnsetType = UNSET
    name: Name | UnsetType = UNSET


class TaxRateRead(Struct):
    """A tax rate."""

    id: uuid.UUID
    country: str
    region: str | None
    tax_class: str
    rate_bp: int
    name: str
    created_at: datetime
    updated_at: datetime


class TaxRatePage(Struct):
    """A keyset page of tax rates, oldest first."""

    items: list[TaxRateRead]
    next_cursor: str | None
