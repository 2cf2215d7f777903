"""What applies at an address: the shipping methods that serve a cart, and the tax rates of
a country (the orders room prices with them, ``orders.pricing``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.shipping.models import ShippingMethod, ShippingZone, TaxRate


@dataclass(frozen=True, slots=True)
class RateRow:
    """A tax rate as pricing needs it; ``region`` None for the country-wide rate."""

    country: str
    region: str | None
    tax_class: str
    rate_bp: int


def zone_serves(zone: ShippingZone, country: str, region: str | None) -> bool:
    """True when the address (ISO country, ISO 3166-2 region or None) is in the zone."""
    return zone.serves(country, region)


async def zone_of(session: AsyncSession, method: ShippingMethod) -> ShippingZone:
    """The zone of a method."""
    zone = await session.get(ShippingZone, method.zone_id)
    assert zone is not None  # the foreign key holds it (RESTRICT on delete)
    return zone


def weight_fits(method: ShippingMethod, weight_grams: int) -> bool:
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


async def find_method(session: AsyncSession, method_id: uuid.UUID) -> ShippingMethod | None:
    """A method by id, or None."""
    return await session.get(ShippingMethod, method_id)


async def country_rates(session: AsyncSession, country: str) -> Sequence[RateRow]:
    """Every rate of ``country`` and of its regions."""
    rows = await session.scalars(select(TaxRate).where(TaxRate.country == country))
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
