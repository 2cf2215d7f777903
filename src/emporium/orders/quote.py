"""A quote: the goods of a cart or an order priced for an address and a shipping method.

Gathers what ``orders.pricing`` needs from the database (each line's tax class and weight,
the address's tax rates, the chosen method and its price for this cart) and prices it. The
cart answer and checkout both call :func:`quote`, so a cart shows exactly the figures the
order will store if nothing changes in between (and checkout quotes again, at that moment).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from emporium.orders.exceptions import ShippingMethodRequired, ShippingMethodUnavailable
from emporium.orders.pricing import (
    LineInput,
    PricedOrder,
    ShippingInput,
    TaxRate,
    applicable_rate,
    price_order,
    shipping_price,
)
from emporium.promotions.engine import Line, Offer, Outcome, choose
from emporium.shipping.geo import address_region
from emporium.shipping.models import ShippingMethod
from emporium.shipping.serving import (
    ChosenMethod,
    country_rates,
    find_method_in_zone,
    serving_methods,
    shipping_configured,
)


@dataclass(frozen=True, slots=True)
class Goods:
    """One line to quote: ``quantity`` units at ``unit_price`` (minor units), taxed by
    ``tax_class``; ``weight_grams`` per unit (None: not given, counted as 0); the product
    and its category, which promotions may target."""

    unit_price: int
    quantity: int
    tax_class: str
    weight_grams: int | None
    product_id: uuid.UUID | None = None
    category_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Place:
    """Where goods go: an ISO 3166-1 country and, when known, an ISO 3166-2 region."""

    country: str
    region: str | None

    @classmethod
    def of(cls, address: Mapping[str, Any]) -> Place:
        """The place of an address (``country`` and free-text ``region`` such as ``CA``)."""
        country = str(address["country"])
        return cls(country, address_region(country, address.get("region")))


@dataclass(frozen=True, slots=True)
class Quote:
    """Priced goods, the method chosen (None: no shipping), and the promotions' verdict
    (``promotions.engine.Outcome``) on the ``lines`` it was given."""

    priced: PricedOrder
    method: ChosenMethod | None
    promotions: Outcome
    lines: tuple[Line, ...]


def weight_of(goods: Sequence[Goods]) -> int:
    """The cart's weight in grams: each variant's ``weight_grams`` times its quantity."""
    return sum((g.weight_grams or 0) * g.quantity for g in goods)


async def _rates(session: AsyncSession, place: Place | None) -> list[TaxRate]:
    if place is None:
        return []
    rows = await country_rates(session, place.country)
    return [TaxRate(r.country, r.region, r.tax_class, r.rate_bp) for r in rows]


def _rate(rates: Sequence[TaxRate], place: Place | None, tax_class: str) -> int:
    if place is None:
        return 0
    return applicable_rate(rates, country=place.country, region=place.region, tax_class=tax_class)


async def _usable(
    session: AsyncSession, method_id: uuid.UUID, place: Place | None, weight: int, currency: str
) -> ChosenMethod:
    method = await find_method_in_zone(session, method_id)
    if method is None or not method.active or method.currency != currency:
        raise ShippingMethodUnavailable("That shipping method is not available.")
    if place is None or not method.serves(place.country, place.region) or not method.fits(weight):
        raise ShippingMethodUnavailable(
            "That shipping method does not serve this address or this weight."
        )
    return method


async def quote(
    session: AsyncSession,
    goods: Sequence[Goods],
    *,
    place: Place | None,
    method_id: uuid.UUID | None,
    currency: str,
    prices_include_tax: bool,
    require_method: bool,
    offers: Sequence[Offer] = (),
) -> Quote:
    """Price ``goods`` shipped to ``place`` with the method ``method_id``, with the best
    mix of the promotions ``offers`` for the buyer (``promotions.engine.choose``): their
    discounts on the lines, and free shipping (the method's price and its tax waived).

    Raises:
        ShippingMethodUnavailable: (422) the method does not exist, is inactive, is priced in
            another currency, or does not serve the place or the cart's weight.
        ShippingMethodRequired: (422) ``require_method`` and no method was chosen while the
            shop ships (has an active method in ``currency``).
    """
    rates = await _rates(session, place)
    method = None
    if method_id is not None:
        method = await _usable(session, method_id, place, weight_of(goods), currency)
    elif require_method and await shipping_configured(session, currency):
        raise ShippingMethodRequired("Choose a shipping method for this address.")
    targets = tuple(Line(g.unit_price * g.quantity, g.product_id, g.category_id) for g in goods)
    shipping_for = None
    if method is not None:
        shipping_for = partial(shipping_price, method.price, method.free_over)
    outcome = choose(offers, targets, shipping_for)
    lines = [
        LineInput(g.unit_price, g.quantity, _rate(rates, place, g.tax_class), discount=d)
        for g, d in zip(goods, outcome.line_discounts, strict=True)
    ]
    shipping = None
    if shipping_for is not None and method is not None:
        price = shipping_for(sum(t.subtotal for t in targets) - outcome.goods_discount)
        waived = price if outcome.free_shipping else 0
        shipping = ShippingInput(price, _rate(rates, place, method.tax_class), discount=waived)
    priced = price_order(lines, prices_include_tax=prices_include_tax, shipping=shipping)
    return Quote(priced, method, outcome, targets)


async def methods_for(
    session: AsyncSession, goods: Sequence[Goods], place: Place, *, currency: str
) -> list[ShippingMethod]:
    """The methods that serve ``place`` and the cart's weight, cheapest first."""
    return await serving_methods(
        session,
        country=place.country,
        region=place.region,
        weight_grams=weight_of(goods),
        currency=currency,
    )
