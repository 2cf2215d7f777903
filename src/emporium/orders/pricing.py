"""Pricing: the one place where an order's money is computed (carts and checkout call it).

Pure functions over integer minor units (cents for USD, yen for JPY, fils for KWD): an
amount is always a whole number of the currency's minor unit, so "rounded to the minor unit"
means rounded to an integer, and the currency's exponent (``core.money.currency_exponent``)
only matters when an amount is shown to a person. No floats: ratios are exact integer
fractions, rounded once, half up (``decimal.ROUND_HALF_UP``).

The contract (``API.md``, Orders) fixes the rules implemented here:

- a line's ``subtotal = unit_price * quantity``;
- an order-level discount is spread over the lines in proportion to what is left of their
  subtotals after line discounts, whole minor units, the remainder one unit each to the
  largest lines (:func:`allocate`); a discount never exceeds what it applies to;
- tax is computed per line, and on shipping, on the discounted amount, rounded half up:
  ``tax = amount * rate / 10000`` when prices exclude tax, and the part inside the amount,
  ``tax = amount * rate / (10000 + rate)``, when they include it (:func:`tax_of`);
- ``line.total = subtotal - discount_total (+ tax_total when prices exclude tax)``;
- ``order.total = subtotal - discount_total + shipping_total (+ tax_total when prices
  exclude tax)``, where the order's figures are the sums of its lines' (and ``tax_total``
  includes the shipping's tax).

The database holds the same equations as CHECK constraints (``orders.models``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from emporium.core.money import BASIS_POINTS as BASIS_POINTS
from emporium.core.money import allocate as allocate
from emporium.core.money import round_half_up as round_half_up

MAX_RATE_BP = BASIS_POINTS
"""Rates above 100 % are refused by the staff routes and by the database."""


def tax_of(amount: int, rate_bp: int, *, prices_include_tax: bool) -> int:
    """The tax of ``amount`` minor units at ``rate_bp`` basis points, rounded half up:
    added on top (``amount * rate / 10000``) or, for tax-inclusive prices, the part inside
    (``amount * rate / (10000 + rate)``).

    Raises:
        ValueError: a negative amount, or a rate outside 0..10000.
    """
    if amount < 0:
        raise ValueError("amount must not be negative")
    if not 0 <= rate_bp <= MAX_RATE_BP:
        raise ValueError(f"rate_bp must be within 0..{MAX_RATE_BP}")
    if prices_include_tax:
        return round_half_up(amount * rate_bp, BASIS_POINTS + rate_bp)
    return round_half_up(amount * rate_bp, BASIS_POINTS)


def shipping_price(price: int, free_over: int | None, discounted_subtotal: int) -> int:
    """A flat-rate method's price for a cart: zero when ``free_over`` is set and the
    subtotal after discounts reaches it (``>=``), else ``price``."""
    if free_over is not None and discounted_subtotal >= free_over:
        return 0
    return price


@dataclass(frozen=True, slots=True)
class TaxRate:
    """A tax rate: ``rate_bp`` basis points for goods of ``tax_class`` shipped to
    ``country`` (ISO 3166-1 alpha-2) or, when ``region`` is set, to that subdivision
    (ISO 3166-2, e.g. ``US-CA``)."""

    country: str
    region: str | None
    tax_class: str
    rate_bp: int


def applicable_rate(
    rates: Sequence[TaxRate], *, country: str, region: str | None, tax_class: str
) -> int:
    """The rate in basis points for ``tax_class`` at an address: the rate of its region when
    there is one (it replaces the country's), else the country's, else zero."""
    found = {(r.region, r.tax_class): r.rate_bp for r in rates if r.country == country}
    if region is not None and (region, tax_class) in found:
        return found[(region, tax_class)]
    return found.get((None, tax_class), 0)


@dataclass(frozen=True, slots=True)
class LineInput:
    """A line to price: ``unit_price`` (minor units, as on the shelf: tax included when the
    shop's prices include it), ``quantity``, the tax rate that applies to it and any
    discount given to this line alone."""

    unit_price: int
    quantity: int
    tax_rate_bp: int = 0
    discount: int = 0


@dataclass(frozen=True, slots=True)
class ShippingInput:
    """The chosen shipping: its ``price`` for this cart (after ``free_over``), the rate of
    its tax class, and a discount (free shipping: the whole price)."""

    price: int
    tax_rate_bp: int = 0
    discount: int = 0


@dataclass(frozen=True, slots=True)
class PricedLine:
    """A priced line; ``total = subtotal - discount_total (+ tax_total if tax is extra)``."""

    unit_price: int
    quantity: int
    subtotal: int
    discount_total: int
    tax_rate: int
    tax_total: int
    total: int


@dataclass(frozen=True, slots=True)
class PricedShipping:
    """Priced shipping: ``total`` is what the order adds for it (``price - discount_total``),
    ``tax_total`` its tax (inside ``total`` when prices include tax)."""

    price: int
    discount_total: int
    tax_rate: int
    tax_total: int
    total: int


@dataclass(frozen=True, slots=True)
class PricedOrder:
    """Every figure of an order. ``tax_total`` includes the shipping's; ``discount_total``
    is the lines' (a shipping discount lowers ``shipping_total`` instead)."""

    lines: tuple[PricedLine, ...]
    shipping: PricedShipping | None
    subtotal: int
    discount_total: int
    shipping_total: int
    shipping_tax_total: int
    tax_total: int
    total: int
    prices_include_tax: bool


def _line(item: LineInput, discount: int, prices_include_tax: bool) -> PricedLine:
    subtotal = item.unit_price * item.quantity
    taxable = subtotal - discount
    tax = tax_of(taxable, item.tax_rate_bp, prices_include_tax=prices_include_tax)
    return PricedLine(
        unit_price=item.unit_price,
        quantity=item.quantity,
        subtotal=subtotal,
        discount_total=discount,
        tax_rate=item.tax_rate_bp,
        tax_total=tax,
        total=taxable if prices_include_tax else taxable + tax,
    )


def _shipping(shipping: ShippingInput, prices_include_tax: bool) -> PricedShipping:
    discount = min(shipping.discount, shipping.price)
    charged = shipping.price - discount
    tax = tax_of(charged, shipping.tax_rate_bp, prices_include_tax=prices_include_tax)
    return PricedShipping(
        price=shipping.price,
        discount_total=discount,
        tax_rate=shipping.tax_rate_bp,
        tax_total=tax,
        total=charged,
    )


def price_order(
    lines: Sequence[LineInput],
    *,
    prices_include_tax: bool,
    order_discount: int = 0,
    shipping: ShippingInput | None = None,
) -> PricedOrder:
    """Price a cart or an order: lines, then the order-level discount spread over them,
    then tax per line and on shipping, then the totals (see the module's rules).

    A line discount above its subtotal, or an order discount above what the lines have
    left, is capped there: a discount never makes a line or the order negative.

    Raises:
        ValueError: a negative price, quantity, discount or shipping price, or a tax rate
            outside 0..10000 basis points.
    """
    if any(i.unit_price < 0 or i.quantity < 0 or i.discount < 0 for i in lines):
        raise ValueError("prices, quantities and discounts must not be negative")
    if order_discount < 0 or (shipping is not None and min(shipping.price, shipping.discount) < 0):
        raise ValueError("discounts and shipping prices must not be negative")
    own = [min(i.discount, i.unit_price * i.quantity) for i in lines]
    rest = [i.unit_price * i.quantity - d for i, d in zip(lines, own, strict=True)]
    shares = allocate(min(order_discount, sum(rest)), rest)
    priced = tuple(
        _line(i, d + s, prices_include_tax) for i, d, s in zip(lines, own, shares, strict=True)
    )
    ship = _shipping(shipping, prices_include_tax) if shipping is not None else None
    subtotal = sum(p.subtotal for p in priced)
    discount = sum(p.discount_total for p in priced)
    shipping_total = ship.total if ship else 0
    shipping_tax = ship.tax_total if ship else 0
    tax = sum(p.tax_total for p in priced) + shipping_tax
    total = subtotal - discount + shipping_total + (0 if prices_include_tax else tax)
    return PricedOrder(
        lines=priced,
        shipping=ship,
        subtotal=subtotal,
        discount_total=discount,
        shipping_total=shipping_total,
        shipping_tax_total=shipping_tax,
        tax_total=tax,
        total=total,
        prices_include_tax=prices_include_tax,
    )


@dataclass(frozen=True, slots=True)
class ReturnedUnits:
    """Units of one priced line given back: ``before`` units already refunded by earlier
    returns and ``units`` refunded now (``before + units <= line.quantity``)."""

    line: PricedLine
    before: int
    units: int


@dataclass(frozen=True, slots=True)
class PricedRefund:
    """What a return gives back, minor units: ``lines`` (one amount per returned line, in
    the order given, tax included), ``tax_total`` (the tax inside those amounts, shipping's
    included), ``shipping`` (the shipping's price and, when prices exclude tax, its tax)
    and ``total`` (lines plus shipping)."""

    lines: tuple[int, ...]
    tax_total: int
    shipping: int
    total: int


def paid_for_units(line: PricedLine, units: int, *, prices_include_tax: bool) -> tuple[int, int]:
    """What the customer paid for ``units`` of ``line``'s ``quantity``: ``(amount, tax)``.

    The line's discounted subtotal (``subtotal - discount_total``) is shared out per unit,
    ``round_half_up(discounted * units / quantity)``, and its tax is computed on that share
    exactly as checkout taxes a line (:func:`tax_of`); ``amount`` includes the tax. For
    ``units == quantity`` this is the line's ``(total, tax_total)``; it never falls when
    ``units`` grows.

    Raises:
        ValueError: ``units`` outside 0..quantity.
    """
    if not 0 <= units <= line.quantity:
        raise ValueError("units must be within 0..quantity")
    if units == 0:
        return 0, 0
    goods = round_half_up((line.subtotal - line.discount_total) * units, line.quantity)
    tax = tax_of(goods, line.tax_rate, prices_include_tax=prices_include_tax)
    return (goods if prices_include_tax else goods + tax), tax


def refund_for_lines(
    returns: Sequence[ReturnedUnits],
    *,
    prices_include_tax: bool,
    shipping: PricedShipping | None = None,
) -> PricedRefund:
    """The refund of a return: for each line, what was paid for ``before + units`` units
    less what was paid for the ``before`` units already refunded (:func:`paid_for_units`),
    so that the rounding never drifts: however the units are split over returns, returning
    every unit refunds exactly the line's ``total``, and returning every line plus the
    shipping refunds exactly the order's ``total``. ``shipping`` (the order's priced
    shipping; pass it once per order, only when the shipping is refunded) adds its
    ``total`` plus, when prices exclude tax, its ``tax_total``.

    Raises:
        ValueError: negative units, or more units than the line has.
    """
    amounts: list[int] = []
    tax = 0
    for r in returns:
        if r.before < 0 or r.units < 0:
            raise ValueError("units must not be negative")
        after_amount, after_tax = paid_for_units(
            r.line, r.before + r.units, prices_include_tax=prices_include_tax
        )
        before_amount, before_tax = paid_for_units(
            r.line, r.before, prices_include_tax=prices_include_tax
        )
        amounts.append(after_amount - before_amount)
        tax += after_tax - before_tax
    ship = 0
    if shipping is not None:
        ship = shipping.total + (0 if prices_include_tax else shipping.tax_total)
        tax += shipping.tax_total
    return PricedRefund(
        lines=tuple(amounts), tax_total=tax, shipping=ship, total=sum(amounts) + ship
    )
