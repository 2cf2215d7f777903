"""Promotions worked out by hand (issue 14), through the discount engine and then pricing,
as checkout does: every figure below is computed in the comments first, with the rules of
API.md (Orders: spread in proportion to subtotals, remainders to the largest lines, tax on
the discounted amount rounded half up) and of the engine's module docstring."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from emporium.orders.pricing import (
    LineInput,
    PricedOrder,
    ShippingInput,
    price_order,
    shipping_price,
)
from emporium.promotions.engine import Line, Offer, Outcome, PromotionType, choose

CLOTHING, TSHIRTS, KITCHEN = (uuid.UUID(int=0xC0 + i) for i in range(3))
SHIRT, HOODIE, MUG = (uuid.UUID(int=0xA0 + i) for i in range(3))


@dataclass(frozen=True)
class Item:
    unit_price: int
    quantity: int
    tax_rate_bp: int
    product_id: uuid.UUID
    category_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Method:
    price: int
    free_over: int | None
    tax_rate_bp: int


def checkout(
    items: list[Item], offers: list[Offer], *, inclusive: bool, method: Method | None = None
) -> tuple[Outcome, PricedOrder]:
    """Choose the promotions, then price the order with their discounts (as checkout)."""
    lines = [Line(i.unit_price * i.quantity, i.product_id, i.category_id) for i in items]

    def method_price(discounted: int) -> int:
        assert method is not None
        return shipping_price(method.price, method.free_over, discounted)

    outcome = choose(offers, lines, method_price if method else None)
    shipping = None
    if method is not None:
        discounted = sum(x.subtotal for x in lines) - outcome.goods_discount
        price = method_price(discounted)
        shipping = ShippingInput(price, method.tax_rate_bp, price if outcome.free_shipping else 0)
    order = price_order(
        [
            LineInput(i.unit_price, i.quantity, i.tax_rate_bp, discount=d)
            for i, d in zip(items, outcome.line_discounts, strict=True)
        ],
        prices_include_tax=inclusive,
        shipping=shipping,
    )
    return outcome, order


def offer(
    number: int,
    kind: PromotionType,
    value: int,
    *,
    code: str | None = None,
    combinable: bool = False,
    min_subtotal: int | None = None,
    category_ids: frozenset[uuid.UUID] = frozenset(),
) -> Offer:
    return Offer(
        id=uuid.UUID(int=number),
        name=f"promotion {number}",
        code=code,
        type=kind,
        value=value,
        combinable=combinable,
        min_subtotal=min_subtotal,
        category_ids=category_ids,
    )


def test_ten_percent_off_a_category_in_a_shop_whose_prices_include_19_percent_vat() -> None:
    """Clothing (with its sub-category T-shirts, expanded as the caller does) is 10 % off;
    the mug is not clothing. Shelf prices include 19 % VAT; shipping 4.90 at 19 %.

      T-shirt 2 x 19.99 = 39.98 (T-shirts)  hoodie 1 x 49.95 (clothing)  mug 1 x 12.50
      10 % of the clothing lines: (39.98 + 49.95) * 10 % = 89.93 * 0.1 = 8.993 -> 8.99
      spread by subtotal: 8.99 * 39.98 / 89.93 = 3.9967 -> 3.99
                          8.99 * 49.95 / 89.93 = 4.9933 -> 4.99   (3.99 + 4.99 = 8.98)
      the cent left goes to the largest line, the hoodie: 5.00 (not to the T-shirt, whose
      fraction was larger); the mug gets nothing.
      VAT inside the discounted amounts, x 19/119, half up:
        T-shirt 39.98 - 3.99 = 35.99 -> 5.7463 -> 5.75
        hoodie  49.95 - 5.00 = 44.95 -> 7.1769 -> 7.18
        mug     12.50               -> 1.9958 -> 2.00
        shipping 4.90               -> 0.7824 -> 0.78
      tax_total = 5.75 + 7.18 + 2.00 + 0.78 = 15.71 (inside the prices)
      total = 102.43 - 8.99 + 4.90 = 98.34
    """
    items = [
        Item(1999, 2, 1900, SHIRT, TSHIRTS),
        Item(4995, 1, 1900, HOODIE, CLOTHING),
        Item(1250, 1, 1900, MUG, KITCHEN),
    ]
    clothing = offer(1, "percentage", 1000, category_ids=frozenset({CLOTHING, TSHIRTS}))
    outcome, order = checkout(items, [clothing], inclusive=True, method=Method(490, None, 1900))

    assert [(a.offer.name, a.amount) for a in outcome.applied] == [("promotion 1", 899)]
    assert [line.discount_total for line in order.lines] == [399, 500, 0]
    assert [line.tax_total for line in order.lines] == [575, 718, 200]
    assert [line.total for line in order.lines] == [3599, 4495, 1250]
    assert (order.subtotal, order.discount_total) == (10_243, 899)
    assert (order.shipping_total, order.shipping_tax_total) == (490, 78)
    assert (order.tax_total, order.total) == (1571, 9834)


def test_a_fixed_five_off_the_order_with_lines_at_19_and_7_percent_prices_excluding_tax() -> None:
    """5.00 off the whole order; prices exclude tax.

    A 3 x 2.99 = 8.97 at 19 %    B 2 x 1.99 = 3.98 at 7 %    subtotal 12.95
    spread by subtotal: A 5.00 * 8.97 / 12.95 = 3.4633 -> 3.46
                        B 5.00 * 3.98 / 12.95 = 1.5367 -> 1.53   (3.46 + 1.53 = 4.99)
    the cent left goes to the largest line, A: 3.47 (B's fraction was larger: it does
    not matter); A 3.47 + B 1.53 = 5.00.
    tax on the discounted amounts, half up:
      A (8.97 - 3.47) = 5.50 x 19 % = 1.045  -> 1.05 (a half, up)
      B (3.98 - 1.53) = 2.45 x 7 %  = 0.1715 -> 0.17
    line totals: A 5.50 + 1.05 = 6.55, B 2.45 + 0.17 = 2.62
    total = 12.95 - 5.00 + 1.22 = 9.17
    """
    items = [Item(299, 3, 1900, SHIRT), Item(199, 2, 700, MUG)]
    five_off = offer(1, "fixed_amount", 500, code="FIVE")
    outcome, order = checkout(items, [five_off], inclusive=False)

    assert [(a.offer.code, a.amount) for a in outcome.applied] == [("FIVE", 500)]
    assert [line.discount_total for line in order.lines] == [347, 153]
    assert [line.tax_total for line in order.lines] == [105, 17]
    assert [line.total for line in order.lines] == [655, 262]
    assert (order.subtotal, order.discount_total, order.tax_total) == (1295, 500, 122)
    assert order.total == 917


def test_a_fixed_amount_larger_than_the_order_stops_at_zero() -> None:
    """50.00 off a 12.95 order: the discount is 12.95 (capped), spread as the subtotals
    (8.97 and 3.98 exactly), so both lines, their tax and the order total are zero."""
    items = [Item(299, 3, 1900, SHIRT), Item(199, 2, 700, MUG)]
    outcome, order = checkout(items, [offer(1, "fixed_amount", 5000)], inclusive=False)

    assert [a.amount for a in outcome.applied] == [1295]
    assert [line.discount_total for line in order.lines] == [897, 398]
    assert (order.discount_total, order.tax_total, order.total) == (1295, 0, 0)


FREE_OVER_50 = Method(price=490, free_over=5000, tax_rate_bp=1900)
CART_OF_52 = [Item(2600, 2, 1900, SHIRT)]


def test_free_over_50_compares_with_the_subtotal_after_a_ten_percent_code() -> None:
    """A method at 4.90 (19 % tax), free over 50.00; a 52.00 cart; prices exclude tax.

    without a code: 52.00 >= 50.00, shipping free: 52.00 + 9.88 tax = 61.88
    with 10 % off: 5.20 off, 46.80 < 50.00, so shipping is charged:
      tax 46.80 x 19 % = 8.892 -> 8.89; shipping 4.90 x 19 % = 0.931 -> 0.93
      total = 52.00 - 5.20 + 4.90 + 8.89 + 0.93 = 61.52
    """
    _, plain = checkout(CART_OF_52, [], inclusive=False, method=FREE_OVER_50)
    assert (plain.shipping_total, plain.tax_total, plain.total) == (0, 988, 6188)

    ten = offer(1, "percentage", 1000, code="TEN")
    outcome, order = checkout(CART_OF_52, [ten], inclusive=False, method=FREE_OVER_50)
    assert [(a.offer.code, a.amount) for a in outcome.applied] == [("TEN", 520)]
    assert order.discount_total == 520
    assert (order.shipping_total, order.shipping_tax_total) == (490, 93)
    assert (order.tax_total, order.total) == (889 + 93, 6152)


def test_free_shipping_from_50_compares_with_the_subtotal_before_discounts() -> None:
    """The same cart with the 10 % code and a free-shipping promotion from 50.00 (both
    combinable): 52.00 before discounts reaches 50.00, so free shipping applies although
    the discounted 46.80 is below it, and it waives the 4.90 that free_over no longer
    covers, with its tax:
      total = 52.00 - 5.20 + 0 + 8.89 = 55.69; the promotions save 5.20 and 4.90.
    A free-shipping promotion from 53.00 does not apply (52.00 < 53.00)."""
    ten = offer(1, "percentage", 1000, code="TEN", combinable=True)
    free = offer(2, "free_shipping", 0, min_subtotal=5000, combinable=True)
    outcome, order = checkout(CART_OF_52, [ten, free], inclusive=False, method=FREE_OVER_50)

    assert {a.offer.name: a.amount for a in outcome.applied} == {
        "promotion 1": 520,
        "promotion 2": 490,
    }
    assert order.shipping is not None
    assert (order.shipping.price, order.shipping.discount_total) == (490, 490)
    assert (order.shipping_total, order.shipping_tax_total) == (0, 0)
    assert (order.discount_total, order.tax_total, order.total) == (520, 889, 5569)

    too_high = offer(2, "free_shipping", 0, min_subtotal=5300, combinable=True)
    outcome, order = checkout(CART_OF_52, [ten, too_high], inclusive=False, method=FREE_OVER_50)
    assert [a.offer.name for a in outcome.applied] == ["promotion 1"]
    assert [o.name for o in outcome.not_eligible] == ["promotion 2"]
    assert (order.shipping_total, order.total) == (490, 6152)


def test_a_free_shipping_code_shows_on_a_cart_before_its_method_is_chosen() -> None:
    """Free shipping is kept while no method is chosen, so that the cart shows it will
    apply; a free-shipping code that does not combine (the staff default) too, although it
    saves nothing yet, as much as the empty set of combinable promotions. Once a method is
    chosen it waives its 4.90, and a 10 % automatic promotion it does not combine with
    (5.20) wins over it."""
    free = offer(1, "free_shipping", 0, code="SHIPFREE")
    outcome, _ = checkout(CART_OF_52, [free], inclusive=False)
    assert [a.offer.code for a in outcome.applied] == ["SHIPFREE"]
    assert (outcome.free_shipping, outcome.outdone) == (True, ())

    charged = Method(price=490, free_over=None, tax_rate_bp=1900)
    outcome, order = checkout(CART_OF_52, [free], inclusive=False, method=charged)
    assert [(a.offer.code, a.amount) for a in outcome.applied] == [("SHIPFREE", 490)]
    assert (order.shipping_total, order.shipping_tax_total) == (0, 0)

    sale = offer(2, "percentage", 1000, combinable=True)
    outcome, order = checkout(CART_OF_52, [free, sale], inclusive=False, method=charged)
    assert [(a.offer.name, a.amount) for a in outcome.applied] == [("promotion 2", 520)]
    assert [o.code for o in outcome.outdone] == ["SHIPFREE"]


def test_the_buyer_gets_the_code_after_which_they_pay_least_shipping_included() -> None:
    """A 52.00 cart, a method at 4.90 free from 50.00, and two codes that do not combine:
    TEN (10 % off: 5.20, leaving 46.80, under 50.00, so shipping 4.90 is due: 51.70) and ONE
    (1.00 off: 51.00 left, still free shipping: 51.00). ONE saves less on the goods but the
    buyer pays 0.70 less with it, so ONE wins."""
    ten = Offer(uuid.UUID(int=1), "Ten", "TEN", "percentage", 1000)
    one = Offer(uuid.UUID(int=2), "One", "ONE", "fixed_amount", 100)
    outcome = choose([ten, one], [Line(5200)], lambda left: 0 if left >= 5000 else 490)
    assert [a.offer.code for a in outcome.applied] == ["ONE"]
    assert outcome.line_discounts == (100,)
    assert [o.code for o in outcome.outdone] == ["TEN"]
