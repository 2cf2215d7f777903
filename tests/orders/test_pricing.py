"""The pricing module against the contract: hand-checked worked examples, and hypothesis
properties over random carts (every money invariant, the rounding rule restated here with
exact fractions, and the discount spread). Pure functions: no database, fast."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emporium.core.money import currency_exponent, format_money
from emporium.orders.pricing import (
    LineInput,
    PricedOrder,
    ShippingInput,
    TaxRate,
    allocate,
    applicable_rate,
    price_order,
    round_half_up,
    shipping_price,
    tax_of,
)

RATES_BP = [0, 500, 700, 725, 1000, 1900, 2000, 2500, 10_000]


def reference_tax(amount: int, rate_bp: int, inclusive: bool) -> int:
    """The contract's rule with exact fractions: half up to the minor unit."""
    exact = Fraction(amount * rate_bp, 10_000 + rate_bp if inclusive else 10_000)
    whole, rest = divmod(exact, 1)
    return int(whole) + (1 if rest >= Fraction(1, 2) else 0)


def assert_invariants(order: PricedOrder, lines: list[LineInput]) -> None:
    """Every money invariant of API.md (Orders), computed independently of the module."""
    inclusive = order.prices_include_tax
    for given_line, line in zip(lines, order.lines, strict=True):
        assert line.subtotal == given_line.unit_price * given_line.quantity
        assert 0 <= line.discount_total <= line.subtotal
        taxable = line.subtotal - line.discount_total
        assert line.tax_total == reference_tax(taxable, line.tax_rate, inclusive)
        assert line.total == taxable + (0 if inclusive else line.tax_total)
        assert min(line.tax_total, line.total) >= 0
    shipping_tax = order.shipping.tax_total if order.shipping else 0
    assert order.subtotal == sum(line.subtotal for line in order.lines)
    assert order.discount_total == sum(line.discount_total for line in order.lines)
    assert order.tax_total == sum(line.tax_total for line in order.lines) + shipping_tax
    assert order.total == (
        order.subtotal
        - order.discount_total
        + order.shipping_total
        + (0 if inclusive else order.tax_total)
    )
    assert min(order.subtotal, order.discount_total, order.shipping_total) >= 0
    assert min(order.tax_total, order.total) >= 0
    if order.shipping is not None:
        s = order.shipping
        assert s.total == s.price - s.discount_total == order.shipping_total
        assert s.tax_total == reference_tax(s.total, s.tax_rate, inclusive)


# --- Worked examples, computed by hand ---------------------------------------------------

GERMANY = [
    TaxRate("DE", None, "standard", 1900),
    TaxRate("DE", None, "reduced", 700),
    TaxRate("US", None, "standard", 0),
    TaxRate("US", "US-CA", "standard", 725),
]


def test_a_german_order_with_inclusive_prices_at_19_and_7_percent_and_taxed_shipping() -> None:
    """3 x 4.99 EUR at 19 %, 2 x 2.49 EUR at 7 %, shipping 4.90 EUR at 19 %, shelf prices
    including VAT. By hand:
      14.97 * 19/119 = 2.390168 -> 2.39;  4.98 * 7/107 = 0.325794 -> 0.33;
      4.90 * 19/119 = 0.782353 -> 0.78;   VAT 2.39 + 0.33 + 0.78 = 3.50;
      total = 14.97 + 4.98 + 4.90 = 24.85 (VAT is inside)."""
    standard = applicable_rate(GERMANY, country="DE", region="DE-BE", tax_class="standard")
    reduced = applicable_rate(GERMANY, country="DE", region="DE-BE", tax_class="reduced")
    assert (standard, reduced) == (1900, 700)
    lines = [LineInput(499, 3, standard), LineInput(249, 2, reduced)]
    order = price_order(lines, prices_include_tax=True, shipping=ShippingInput(490, standard))
    assert [(p.subtotal, p.tax_total, p.total) for p in order.lines] == [
        (1497, 239, 1497),
        (498, 33, 498),
    ]
    assert order.shipping is not None
    assert order.shipping.tax_total == 78
    assert (order.subtotal, order.discount_total, order.shipping_total) == (1995, 0, 490)
    assert (order.shipping_tax_total, order.tax_total, order.total) == (78, 350, 2485)
    assert_invariants(order, lines)


def test_a_california_order_where_the_state_rate_replaces_the_country_zero_rate() -> None:
    """2 x 19.99 USD and 1 x 6.00 USD at California's 7.25 % (the US has no federal rate),
    shipping 7.99 USD untaxed, prices exclusive. By hand:
      39.98 * 0.0725 = 2.89855 -> 2.90;  6.00 * 0.0725 = 0.435 -> 0.44 (half up);
      tax 3.34; total = 39.98 + 6.00 + 7.99 + 3.34 = 57.31."""
    rate = applicable_rate(GERMANY, country="US", region="US-CA", tax_class="standard")
    assert rate == 725
    assert applicable_rate(GERMANY, country="US", region="US-OR", tax_class="standard") == 0
    shipping_rate = applicable_rate(GERMANY, country="US", region="US-CA", tax_class="shipping")
    lines = [LineInput(1999, 2, rate), LineInput(600, 1, rate)]
    order = price_order(lines, prices_include_tax=False, shipping=ShippingInput(799, shipping_rate))
    assert [(p.subtotal, p.tax_total, p.total) for p in order.lines] == [
        (3998, 290, 4288),
        (600, 44, 644),
    ]
    assert (order.subtotal, order.shipping_total, order.tax_total) == (4598, 799, 334)
    assert order.total == 5731
    assert_invariants(order, lines)


def test_an_order_discount_is_spread_by_subtotal_with_remainders_to_the_largest_lines() -> None:
    """5.00 off lines of 10.00, 10.00 and 0.01: 500 * 1000/2001 = 249.875 -> 249 each and
    0 for the cent; the 2 units left go to the two largest lines: 250, 250, 0."""
    assert allocate(500, [1000, 1000, 1]) == [250, 250, 0]
    assert allocate(7, [1, 5, 5]) == [0, 4, 3]  # 0.636, 3.18, 3.18: 0+3+3, +1 to the first 5
    lines = [LineInput(1000, 1, 1900), LineInput(1000, 1, 700), LineInput(1, 1, 1900)]
    order = price_order(lines, prices_include_tax=False, order_discount=500)
    assert [p.discount_total for p in order.lines] == [250, 250, 0]
    # Tax on the discounted amounts: 7.50 * 19 % = 1.425 -> 1.43; 7.50 * 7 % = 0.525 -> 0.53.
    assert [p.tax_total for p in order.lines] == [143, 53, 0]
    assert order.total == 2001 - 500 + 143 + 53
    assert_invariants(order, lines)


def test_a_discount_never_makes_a_line_or_the_order_negative() -> None:
    lines = [LineInput(300, 1, 2000, discount=999), LineInput(200, 2, 2000)]
    order = price_order(
        lines,
        prices_include_tax=False,
        order_discount=10_000,
        shipping=ShippingInput(500, 2000, discount=900),
    )
    assert [p.total for p in order.lines] == [0, 0]
    assert order.discount_total == order.subtotal == 700
    assert (order.shipping_total, order.total) == (0, 0)
    assert_invariants(order, lines)


def test_free_over_compares_with_the_subtotal_after_discounts() -> None:
    assert shipping_price(490, 5000, 5000) == 0
    assert shipping_price(490, 5000, 4999) == 490
    assert shipping_price(490, None, 10**9) == 490


@pytest.mark.parametrize(
    ("amount", "rate", "inclusive", "tax"),
    [
        (435, 1000, False, 44),
        (425, 1000, False, 43),
        (5, 1000, False, 1),
        (4, 1000, False, 0),
        (119, 1900, True, 19),
        (1000, 10_000, True, 500),
        (1, 10_000, True, 1),
        (0, 1900, True, 0),
    ],
)
def test_tax_is_rounded_half_up(amount: int, rate: int, inclusive: bool, tax: int) -> None:
    assert tax_of(amount, rate, prices_include_tax=inclusive) == tax


@pytest.mark.parametrize(("bad", "rate"), [(-1, 1900), (100, -1), (100, 10_001)])
def test_nonsense_amounts_and_rates_are_refused(bad: int, rate: int) -> None:
    with pytest.raises(ValueError, match=r"negative|rate_bp"):
        tax_of(bad, rate, prices_include_tax=False)
    with pytest.raises(ValueError, match=r"negative|rate_bp"):
        price_order([LineInput(bad, 1, rate)], prices_include_tax=False)


@pytest.mark.parametrize(
    ("code", "exponent", "shown"),
    [
        ("USD", 2, "12.34 USD"),
        ("EUR", 2, "12.34 EUR"),
        ("JPY", 0, "1234 JPY"),
        ("KWD", 3, "1.234 KWD"),
        ("BHD", 3, "1.234 BHD"),
        ("CLP", 0, "1234 CLP"),
    ],
)
def test_currency_minor_units_come_from_iso_4217(code: str, exponent: int, shown: str) -> None:
    assert currency_exponent(code) == exponent
    assert format_money(1234, code) == shown


@pytest.mark.parametrize("code", ["XXY", "usd", "EURO", ""])
def test_unknown_currency_codes_are_refused(code: str) -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        currency_exponent(code)


# --- Properties over random carts --------------------------------------------------------

prices = st.integers(min_value=1, max_value=10**7)
line_inputs = st.builds(
    LineInput,
    unit_price=prices,
    quantity=st.integers(min_value=1, max_value=999),
    tax_rate_bp=st.sampled_from(RATES_BP) | st.integers(min_value=0, max_value=10_000),
    discount=st.just(0) | st.integers(min_value=0, max_value=10**8),
)
shippings = st.none() | st.builds(
    ShippingInput,
    price=st.integers(min_value=0, max_value=10**5),
    tax_rate_bp=st.sampled_from(RATES_BP),
    discount=st.just(0) | st.integers(min_value=0, max_value=10**5),
)


def check_priced_cart(
    lines: list[LineInput], inclusive: bool, order_discount: int, shipping: ShippingInput | None
) -> None:
    """Price a random cart and check every invariant, and that the order discount is spent
    whole up to what the lines have left after their own discounts."""
    order = price_order(
        lines, prices_include_tax=inclusive, order_discount=order_discount, shipping=shipping
    )
    assert_invariants(order, lines)
    own = [min(i.discount, i.unit_price * i.quantity) for i in lines]
    assert order.discount_total == sum(own) + min(order_discount, order.subtotal - sum(own))


carts = {
    "lines": st.lists(line_inputs, min_size=1, max_size=20),
    "inclusive": st.booleans(),
    "order_discount": st.just(0) | st.integers(min_value=0, max_value=10**9),
    "shipping": shippings,
}


@settings(max_examples=200, deadline=None)
@given(**carts)
def test_every_priced_cart_keeps_every_invariant(
    lines: list[LineInput], inclusive: bool, order_discount: int, shipping: ShippingInput | None
) -> None:
    check_priced_cart(lines, inclusive, order_discount, shipping)


@pytest.mark.slow
@settings(max_examples=5000, deadline=None)
@given(**carts)
def test_thousands_of_priced_carts_keep_every_invariant(
    lines: list[LineInput], inclusive: bool, order_discount: int, shipping: ShippingInput | None
) -> None:
    check_priced_cart(lines, inclusive, order_discount, shipping)


@settings(max_examples=300, deadline=None)
@given(
    amount=st.integers(min_value=0, max_value=10**10),
    weights=st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=20),
)
def test_allocation_is_proportional_whole_and_goes_to_the_largest_lines(
    amount: int, weights: list[int]
) -> None:
    amount = min(amount, sum(weights))
    shares = allocate(amount, weights)
    assert sum(shares) == amount
    whole = sum(weights) or 1
    for share, weight in zip(shares, weights, strict=True):
        exact = Fraction(amount * weight, whole)
        assert 0 <= share <= weight
        assert -1 < share - exact < 1
    bumped = [
        i for i, (s, w) in enumerate(zip(shares, weights, strict=True)) if s > amount * w // whole
    ]
    others = [w for i, w in enumerate(weights) if i not in bumped]
    assert all(weights[i] >= max(others, default=0) for i in bumped)


@settings(max_examples=300, deadline=None)
@given(
    numerator=st.integers(min_value=0, max_value=10**18),
    denominator=st.integers(min_value=1, max_value=10**6),
)
def test_round_half_up_is_decimal_round_half_up_of_the_exact_quotient(
    numerator: int, denominator: int
) -> None:
    exact = Fraction(numerator, denominator)
    expected = int(exact) + (1 if exact - int(exact) >= Fraction(1, 2) else 0)
    assert round_half_up(numerator, denominator) == expected


@settings(max_examples=300, deadline=None)
@given(
    amount=st.integers(min_value=-(10**12), max_value=10**12),
    code=st.sampled_from(["USD", "EUR", "JPY", "KWD", "CLP", "BHD", "GBP"]),
)
def test_amounts_are_shown_exactly_in_the_currency_minor_unit(amount: int, code: str) -> None:
    number, shown_code = format_money(amount, code).split(" ")
    assert shown_code == code
    assert Decimal(number) == Decimal(amount).scaleb(-currency_exponent(code))
