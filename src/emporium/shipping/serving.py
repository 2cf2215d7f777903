"""What applies at an address: the shipping methods that serve a cart, and the tax rates of
a country (the orders room prices with them, ``orders.pricing``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Protocol

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.core.db.base import table_of
from emporium.shipping.models import ShippingMethod, ShippingZone, TaxRate, in_zone

_M, _Z, _T = table_of(ShippingMethod).c, table_of(ShippingZone).c, table_of(TaxRate).c
_COUNTRY_RATES = select(_T.country, _T.region, _T.tax_class, _T.rate_bp).where(
    _T.country == bindparam("country", type_=_T.country.type)
)


@dataclass(frozen=True, slots=True)
class RateRow:
    """A tax rate as pricing needs it; ``region`` None for the country-wide rate."""

    country: str
    region: str | None
    tax_class: str
    rate_bp: int


@dataclass(frozen=True, slots=True)
class ChosenMethod:
    """A shipping method as a quote needs it, with its zone's ``countries`` and ``regions``
    (read in one query by :func:`find_method_in_zone`, no ORM objects)."""

    id: uuid.UUID
    name: str
    price: int
    currency: str
    free_over: int | None
    min_weight_grams: int | None
    max_weight_grams: int | None
    tax_class: str
    active: bool
    countries: tuple[str, ...]
    regions: tuple[str, ...]

    def serves(self, country: str, region: str | None) -> bool:
        """True when the address is in the method's zone (:func:`in_zone`)."""
        return in_zone(self.countries, self.regions, country, region)

    def fits(self, weight_grams: int) -> bool:
        """True when the cart's weight is within the method's bounds (:func:`weight_fits`)."""
        return weight_fits(self, weight_grams)


_ZONE_FIELDS = ("countries", "regions")
_METHOD_FIELDS = tuple(f.name for f in fields(ChosenMethod) if f.name not in _ZONE_FIELDS)
_METHOD_IN_ZONE = (
    select(*(_M[name] for name in _METHOD_FIELDS), *(_Z[name] for name in _ZONE_FIELDS))
    .join(table_of(ShippingZone), _Z.id == _M.zone_id)
    .where(_M.id == bindparam("method_id", type_=_M.id.type))
)
"""A method with its zone's countries and regions, in :class:`ChosenMethod`'s field order
(built once; checkout runs it per order)."""


def zone_serves(zone: ShippingZone, country: str, region: str | None) -> bool:
    """True when the address (ISO country, ISO 3166-2 region or None) is in the zone."""
    return zone.serves(country, region)


class WeightBounds(Protocol):
    """What :func:`weight_fits` reads of a method (a ``ShippingMethod`` or a
    :class:`ChosenMethod`)."""

    @property
    def min_weight_grams(self) -> int | None:
        """The lightest cart the method takes, in grams (None: no lower bound)."""

    @property
    def max_weight_grams(self) -> int | None:
        """The heaviest cart the method takes, in grams (None: no upper bound)."""


def weight_fits(method: WeightBounds, weight_grams: int) -> bool:
    """True when the cart's weight is within the method's optional bounds."""
    low, high = method.min_weight_grams, method.max_weight_grams
    return (low is None or weight_grams >= low) and (high is None or weight_grams <= high)


async def serving_methods(
    session: AsyncSession,
    *,
    country: str,
    region: str | None,
    weight_grams: int,
    currency: str,
) -> list[ShippingMethod]:
    """The active methods in ``currency`` whose zone holds the address and whose weight range
    holds the cart, cheapest first (then by name)."""
    rows = await session.execute(
        select(ShippingMethod, ShippingZone)
        .join(ShippingZone, ShippingZone.id == ShippingMethod.zone_id)
        .where(ShippingMethod.active.is_(True), ShippingMethod.currency == currency)
    )
    found = [
        m for m, z in rows.all() if zone_serves(z, country, region) and weight_fits(m, weight_grams)
    ]
    return sorted(found, key=lambda m: (m.price, m.name, str(m.id)))


async def find_method_in_zone(session: AsyncSession, method_id: uuid.UUID) -> ChosenMethod | None:
    """A method and its zone by the method's id (one query), or None."""
    row = (await session.execute(_METHOD_IN_ZONE, {"method_id": method_id})).first()
    if row is None:
        return None
    method = dict(zip(_METHOD_FIELDS, row[: len(_METHOD_FIELDS)], strict=True))
    countries, regions = row[-2] or (), row[-1] or ()  # the zone's columns come last
    return ChosenMethod(**method, countries=tuple(countries), regions=tuple(regions))


async def country_rates(session: AsyncSession, country: str) -> Sequence[RateRow]:
    """Every rate of ``country`` and of its regions (rows, no ORM objects)."""
    rows = await session.execute(_COUNTRY_RATES, {"country": country})
    return [RateRow(r.country, r.region or None, r.tax_class, r.rate_bp) for r in rows]


async def shipping_configured(session: AsyncSession, currency: str) -> bool:
    """True when the shop has at least one active method in ``currency``: from then on an
    order must choose one (a shop that ships nothing through Emporium never has to)."""
    found = await session.scalar(
        select(ShippingMethod.id)
        .where(ShippingMethod.active.is_(True), ShippingMethod.currency == currency)
        .limit(1)
    )
    return found is not None
