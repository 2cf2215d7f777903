"""The discount engine fed into pricing, over thousands of random carts and random mixes of
promotions: every money invariant of the contract (API.md, Orders) holds on the priced
order, no promotion gives more than what it applies to, and the customer gets the best
candidate, which the test works out by itself with exact fractions (no engine code).

Pure functions: no database. Product and category ids come from small pools, so that
targeted promotions both hit and miss the lines."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from emporium.orders.pricing import (
    LineInput,
    PricedOrder,
    ShippingInput,
    price_order,
    shipping_price,
)
from emporium.promotions.engine import Line, Offer, Outcome, PromotionType, ShippingFor, choose

PRODUCTS = [uuid.UUID(int=0xA0 + i) for i in range(5)]
CATEGORIES = [uuid.UUID(int=0xC0 + i) for i in range(3)]
RATES_BP = [0, 500, 700, 1000, 1900, 2000, 2500]
KINDS: tuple[PromotionType, ...] = ("percentage", "fixed_amount", "free_shipping")
KIND_ORDER = {kind: i for i, kind in enumerate(KINDS)}


def half_up(exact: Fraction) -> int:
    """The contract's rounding: to the nearest minor unit, a half going up."""
    whole = exact.numerator // exact.denominator
    return whole + (1 if exact - whole >= Fraction(1, 2) else 0)


# --- Random carts and promotions ---------------------------------------------------------


@dataclass(frozen=True)
class CartLine:
    unit_price: int
    quantity: int
    tax_rate_bp: int
    product_id: uuid.UUID
    category_id: uuid.UUID | None

    @property
    def subtotal(self) -> int:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class Method:
    price: int
    free_over: int | None
    tax_rate_bp: int


@dataclass(frozen=True)
class Cart:
    lines: tuple[CartLine, ...]
    inclusive: bool
    method: Method | None
    offers: tuple[Offer, ...]

    @property
    def subtotal(self) -> int:
        return sum(line.subtotal for line in self.lines)


rates = st.sampled_from(RATES_BP) | st.integers(min_value=0, max_value=2500)
cart_lines = st.builds(
    CartLine,
    unit_price=st.integers(min_value=0, max_value=5000) | st.just(0) | st.just(1),
    quantity=st.integers(min_value=1, max_value=6),
    tax_rate_bp=rates,
    product_id=st.sampled_from(PRODUCTS),
    category_id=st.none() | st.sampled_from(CATEGORIES),
)
methods = st.none() | st.builds(
    Method,
    price=st.integers(min_value=0, max_value=1500),
    free_over=st.none() | st.integers(min_value=0, max_value=30_000),
    tax_rate_bp=rates,
)


@st.composite
def offers(draw: st.DrawFn, offer_id: uuid.UUID) -> Offer:
    """One promotion of any type, on the whole order or on a few products and categories
    from the pools, with or without a minimum subtotal."""
    kind = draw(st.sampled_from(KINDS))
    if kind == "percentage":
        value = draw(st.sampled_from([0, 1000, 2500, 5000, 10_000]) | st.integers(1, 10_000))
    elif kind == "fixed_amount":
        value = draw(st.sampled_from([0, 100, 500, 1000]) | st.integers(1, 40_000))
    else:
        value = 0
    whole_order = draw(st.booleans())
    products = frozenset() if whole_order else draw(st.frozensets(st.sampled_from(PRODUCTS)))
    categories = frozenset() if whole_order else draw(st.frozensets(st.sampled_from(CATEGORIES)))
    return Offer(
        id=offer_id,
        name=f"promotion {offer_id.int}",
        code=draw(st.none() | st.just(f"CODE{offer_id.int}")),
        type=kind,
        value=value,
        combinable=draw(st.booleans()),
        min_subtotal=draw(st.none() | st.integers(min_value=0, max_value=30_000)),
        product_ids=products,
        category_ids=categories,
    )


@st.composite
def carts(draw: st.DrawFn) -> Cart:
    """1-8 lines, prices with or without tax, optional shipping and 0-5 promotions whose
    ids come in a random order (the engine breaks ties and orders its steps by id)."""
    ids = draw(st.lists(st.integers(1, 10_000), min_size=0, max_size=5, unique=True))
    return Cart(
        lines=tuple(draw(st.lists(cart_lines, min_size=1, max_size=8))),
        inclusive=draw(st.booleans()),
        method=draw(methods),
        offers=tuple(draw(offers(uuid.UUID(int=i))) for i in ids),
    )


# --- An independent model of the rules (exact fractions, written from the README) -------


def targeted(offer: Offer, line: CartLine) -> bool:
    if not offer.product_ids and not offer.category_ids:
        return True
    return line.product_id in offer.product_ids or line.category_id in offer.category_ids


def is_eligible(offer: Offer, cart: Cart) -> bool:
    """At least one targeted line with something to discount, and the subtotal before any
    discount at least ``min_subtotal``."""
    hits = any(targeted(offer, line) and line.subtotal > 0 for line in cart.lines)
    return hits and (offer.min_subtotal is None or cart.subtotal >= offer.min_subtotal)


def spread(amount: int, weights: Sequence[int]) -> list[int]:
    """The contract's spread: proportional shares rounded down, the units left one each to
    the largest weights (the earliest on a tie)."""
    total = sum(weights)
    if amount == 0:
        return [0] * len(weights)
    shares = [int(Fraction(amount * w, total)) for w in weights]
    by_size = sorted(range(len(weights)), key=lambda i: (-weights[i], i))
    for i in by_size[: amount - sum(shares)]:
        shares[i] += 1
    return shares


def shipping_charged(cart: Cart, discounted_subtotal: int) -> int:
    """The method's price for a goods subtotal after discounts (``free_over``)."""
    if cart.method is None:
        return 0
    free_over = cart.method.free_over
    if free_over is not None and discounted_subtotal >= free_over:
        return 0
    return cart.method.price


def savings_of(cart: Cart, together: Sequence[Offer]) -> dict[uuid.UUID, int]:
    """What each promotion of ``together`` saves when they apply together: percentages
    then fixed amounts (by id), each on what the ones before left of its lines; the first
    free shipping (by id) waives the shipping price charged for what is left."""
    left = [line.subtotal for line in cart.lines]
    amounts: dict[uuid.UUID, int] = {}
    for offer in sorted(together, key=lambda o: (KIND_ORDER[o.type], o.id)):
        weights = [
            x if targeted(offer, line) else 0 for x, line in zip(left, cart.lines, strict=True)
        ]
        if offer.type == "percentage":
            amount = half_up(Fraction(sum(weights) * offer.value, 10_000))
        elif offer.type == "fixed_amount":
            amount = min(offer.value, sum(weights))
        elif amounts.keys() & {o.id for o in together if o.type == "free_shipping"}:
            amount = 0  # the shipping is waived once
        else:
            amount = shipping_charged(cart, sum(left))
        if offer.type != "free_shipping":
            left = [x - s for x, s in zip(left, spread(amount, weights), strict=True)]
        amounts[offer.id] = amount
    return amounts


def benefit(cart: Cart, option: Sequence[Offer], amounts: dict[uuid.UUID, int]) -> int:
    """What the buyer pays less with ``option``: what its promotions save, less the
    shipping its goods discounts make payable (the subtotal falls below ``free_over``)."""
    subtotal = sum(line.subtotal for line in cart.lines)
    goods = sum(amounts[o.id] for o in option if o.type != "free_shipping")
    extra = shipping_charged(cart, subtotal - goods) - shipping_charged(cart, subtotal)
    return sum(amounts.values()) - extra


def candidates(cart: Cart) -> list[list[Offer]]:
    """The combinable set, then each non-combinable eligible promotion alone (by id)."""
    fit = [o for o in cart.offers if is_eligible(o, cart)]
    alone = sorted((o for o in fit if not o.combinable), key=lambda o: o.id)
    return [[o for o in fit if o.combinable]] + [[o] for o in alone]


# --- Feeding the engine into pricing -----------------------------------------------------


def priced_by(method: Method) -> ShippingFor:
    """The method's price for a discounted goods subtotal, as the engine asks for it."""
    return lambda discounted: shipping_price(method.price, method.free_over, discounted)


def run(cart: Cart) -> tuple[Outcome, PricedOrder]:
    """What checkout does: choose the promotions, then price the order with their
    per-line discounts and free shipping."""
    method = cart.method
    engine_lines = [Line(x.subtotal, x.product_id, x.category_id) for x in cart.lines]
    outcome = choose(cart.offers, engine_lines, priced_by(method) if method else None)
    shipping = None
    if method is not None:
        discounted = cart.subtotal - sum(outcome.line_discounts)
        price = shipping_price(method.price, method.free_over, discounted)
        waived = price if outcome.free_shipping else 0
        shipping = ShippingInput(price, method.tax_rate_bp, discount=waived)
    priced = price_order(
        [
            LineInput(x.unit_price, x.quantity, x.tax_rate_bp, discount=d)
            for x, d in zip(cart.lines, outcome.line_discounts, strict=True)
        ],
        prices_include_tax=cart.inclusive,
        shipping=shipping,
    )
    return outcome, priced


def tax_rule(amount: int, rate_bp: int, inclusive: bool) -> int:
    return half_up(Fraction(amount * rate_bp, 10_000 + rate_bp if inclusive else 10_000))


def check_money_invariants(cart: Cart, order: PricedOrder) -> None:
    """API.md, Orders: the line and order equations, nothing negative, tax on the
    discounted amount rounded half up."""
    inclusive = cart.inclusive
    for given_line, line in zip(cart.lines, order.lines, strict=True):
        assert line.subtotal == given_line.unit_price * given_line.quantity
        assert 0 <= line.discount_total <= line.subtotal
        taxable = line.subtotal - line.discount_total
        assert line.tax_total == tax_rule(taxable, given_line.tax_rate_bp, inclusive)
        assert line.total == taxable + (0 if inclusive else line.tax_total)
        assert min(line.tax_total, line.total) >= 0
    shipping_tax = order.shipping.tax_total if order.shipping else 0
    assert order.subtotal == sum(line.subtotal for line in order.lines) == cart.subtotal
    assert order.discount_total == sum(line.discount_total for line in order.lines)
    assert order.tax_total == sum(line.tax_total for line in order.lines) + shipping_tax
    extra_tax = 0 if inclusive else order.tax_total
    assert order.total == order.subtotal - order.discount_total + order.shipping_total + extra_tax
    assert min(order.subtotal, order.discount_total, order.shipping_total) >= 0
    assert min(order.tax_total, order.total, order.shipping_tax_total) >= 0
    if order.shipping is not None and cart.method is not None:
        s = order.shipping
        assert s.total == s.price - s.discount_total == order.shipping_total
        assert s.tax_total == tax_rule(s.total, cart.method.tax_rate_bp, inclusive)


def check_each_promotion_within_bounds(cart: Cart, outcome: Outcome) -> None:
    """No applied promotion gives more than what it applies to, or to a line it does not
    target; a non-combinable one is alone."""
    for applied in outcome.applied:
        offer = applied.offer
        assert is_eligible(offer, cart)
        base = sum(x.subtotal for x in cart.lines if targeted(offer, x))
        assert sum(applied.line_discounts) == applied.goods
        for line, share in zip(cart.lines, applied.line_discounts, strict=True):
            assert 0 <= share <= line.subtotal
            assert share == 0 or targeted(offer, line)
        assert applied.goods <= base
        if offer.type == "percentage":
            assert applied.goods <= half_up(Fraction(base * offer.value, 10_000))
        elif offer.type == "fixed_amount":
            assert applied.goods <= offer.value
        else:
            assert applied.goods == 0
        if not offer.combinable:
            assert len(outcome.applied) == 1
    for line, discount in zip(cart.lines, outcome.line_discounts, strict=True):
        if not any(targeted(a.offer, line) for a in outcome.applied):
            assert discount == 0


def check_best_candidate_wins(cart: Cart, outcome: Outcome) -> None:
    """The chosen mix saves at least as much as every candidate (on a tie: one that shows
    something, then the combinable set, then the smallest id), each promotion gives what
    the model says, and those left out are reported with a reason."""
    options = candidates(cart)
    amounts = [savings_of(cart, option) for option in options]
    totals = [benefit(cart, option, a) for option, a in zip(options, amounts, strict=True)]
    assert benefit(
        cart, [a.offer for a in outcome.applied], {a.offer.id: a.amount for a in outcome.applied}
    ) == max(totals)
    shown = [
        {
            offer_id: amount
            for offer_id, amount in option.items()
            if amount > 0 or (cart.method is None and offer_id in free_shipping_ids(cart))
        }
        for option in amounts
    ]
    ranks = [(total, bool(kept)) for total, kept in zip(totals, shown, strict=True)]
    kept = shown[ranks.index(max(ranks))]  # the first of the best: combinable set, then ids
    assert {a.offer.id: a.amount for a in outcome.applied} == kept
    fit = {o.id for o in cart.offers if is_eligible(o, cart)}
    assert {o.id for o in outcome.not_eligible} == {o.id for o in cart.offers} - fit
    assert {o.id for o in outcome.outdone} == fit - kept.keys()


def free_shipping_ids(cart: Cart) -> set[uuid.UUID]:
    return {o.id for o in cart.offers if o.type == "free_shipping"}


def check_shipping(cart: Cart, outcome: Outcome, order: PricedOrder) -> None:
    """Free shipping zeroes the shipping's price and its tax; otherwise the method's price
    is charged unless the subtotal after discounts reaches ``free_over``."""
    if cart.method is None:
        assert order.shipping is None
        assert order.shipping_total == 0
        return
    assert order.shipping is not None
    if outcome.free_shipping:
        assert order.shipping_total == order.shipping.tax_total == order.shipping_tax_total == 0
        waived = sum(a.shipping for a in outcome.applied)
        assert waived == order.shipping.discount_total == order.shipping.price
    else:
        discounted = cart.subtotal - order.discount_total
        assert order.shipping_total == shipping_charged(cart, discounted)
        assert order.shipping.discount_total == 0


def check_cart(cart: Cart) -> None:
    outcome, order = run(cart)
    check_money_invariants(cart, order)
    assert [x.discount_total for x in order.lines] == list(outcome.line_discounts)
    assert order.discount_total == sum(outcome.line_discounts) == outcome.goods_discount
    check_each_promotion_within_bounds(cart, outcome)
    check_best_candidate_wins(cart, outcome)
    check_shipping(cart, outcome, order)


@settings(max_examples=2000, deadline=None)
@given(cart=carts())
def test_random_carts_with_random_promotions_keep_every_money_invariant(cart: Cart) -> None:
    check_cart(cart)
