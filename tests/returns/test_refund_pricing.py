"""The refund of a return (``orders.pricing.refund_for_lines``): a hand-checked example and
hypothesis properties over random orders (lines, tax rates, inclusive or exclusive prices,
order and line discounts, shipping) split at random into several returns: the refunds
add up to exactly what was paid, none is negative, none gives back more than was paid."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emporium.orders.pricing import (
    LineInput,
    PricedOrder,
    ReturnedUnits,
    ShippingInput,
    paid_for_units,
    price_order,
    refund_for_lines,
)

RATES_BP = [0, 500, 700, 725, 1000, 1900, 2000, 2500, 10_000]
EXAMPLES = 3000


def test_one_unit_of_three_with_an_order_discount_and_tax_on_top() -> None:
    """3 x 10.00 and 1 x 5.00, 10 % off the order (3.50, spread 3.00 / 0.50), 19 % on top.
    Line one: 30.00 - 3.00 = 27.00, tax 5.13, total 32.13. One unit: 27.00 / 3 = 9.00, tax
    1.71, refund 10.71; the other two: 18.00 + 3.42 = 21.42; 10.71 + 21.42 = 32.13."""
    order = price_order(
        [LineInput(1000, 3, 1900), LineInput(500, 1, 1900)],
        prices_include_tax=False,
        order_discount=350,
    )
    line = order.lines[0]
    assert (line.discount_total, line.tax_total, line.total) == (300, 513, 3213)
    first = refund_for_lines([ReturnedUnits(line, 0, 1)], prices_include_tax=False)
    rest = refund_for_lines([ReturnedUnits(line, 1, 2)], prices_include_tax=False)
    assert (first.total, first.tax_total) == (1071, 171)
    assert (rest.total, rest.tax_total) == (2142, 342)


def test_shipping_is_its_price_plus_its_tax_unless_the_tax_is_inside() -> None:
    """Shipping 4.90 at 19 %: 4.90 + 0.93 on top; 4.90 (0.78 inside) with inclusive prices."""
    for inclusive, expected in ((False, 583), (True, 490)):
        order = price_order(
            [LineInput(1000, 1)],
            prices_include_tax=inclusive,
            shipping=ShippingInput(490, 1900),
        )
        refund = refund_for_lines([], prices_include_tax=inclusive, shipping=order.shipping)
        assert refund.total == expected


def test_more_units_than_the_line_has_are_refused() -> None:
    """Nothing is priced beyond the line's quantity or below zero."""
    line = price_order([LineInput(1000, 2)], prices_include_tax=False).lines[0]
    with pytest.raises(ValueError, match="within"):
        refund_for_lines([ReturnedUnits(line, 1, 2)], prices_include_tax=False)
    with pytest.raises(ValueError, match="negative"):
        refund_for_lines([ReturnedUnits(line, 0, -1)], prices_include_tax=False)


LINE = st.builds(
    LineInput,
    unit_price=st.integers(0, 100_000),
    quantity=st.integers(1, 12),
    tax_rate_bp=st.sampled_from(RATES_BP),
    discount=st.integers(0, 50_000),
)


@st.composite
def orders(draw: Callable[..., Any]) -> PricedOrder:
    """A random priced order: 1-6 lines, an order discount, maybe shipping."""
    lines = draw(st.lists(LINE, min_size=1, max_size=6))
    shipping = draw(
        st.none()
        | st.builds(
            ShippingInput,
            price=st.integers(0, 5000),
            tax_rate_bp=st.sampled_from(RATES_BP),
            discount=st.integers(0, 5000),
        )
    )
    return price_order(
        lines,
        prices_include_tax=draw(st.booleans()),
        order_discount=draw(st.integers(0, 200_000)),
        shipping=shipping,
    )


@st.composite
def splits(draw: Callable[..., Any], order: PricedOrder) -> list[list[int]]:
    """Every unit of the order cut into 1-5 returns: ``returns[r][i]`` units of line ``i``."""
    count = draw(st.integers(1, 5))
    returns = [[0] * len(order.lines) for _ in range(count)]
    for i, line in enumerate(order.lines):
        for _ in range(line.quantity):
            returns[draw(st.integers(0, count - 1))][i] += 1
    return returns


@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.data())
def test_returning_everything_in_any_split_refunds_exactly_the_order_total(
    data: st.DataObject,
) -> None:
    """However the units are split over returns (shipping with one of them), the refunds
    add up to the order's total and each line's to its total; each refund is non-negative,
    and what is refunded so far never exceeds what was paid."""
    order = data.draw(orders())
    returns = data.draw(splits(order))
    with_shipping = data.draw(st.integers(0, len(returns) - 1))
    inclusive = order.prices_include_tax
    before = [0] * len(order.lines)
    per_line = [0] * len(order.lines)
    refunded = 0
    for r, units in enumerate(returns):
        refund = refund_for_lines(
            [ReturnedUnits(line, before[i], units[i]) for i, line in enumerate(order.lines)],
            prices_include_tax=inclusive,
            shipping=order.shipping if r == with_shipping else None,
        )
        assert min(refund.lines, default=0) >= 0
        assert refund.total >= 0
        assert refund.tax_total >= 0
        for i, amount in enumerate(refund.lines):
            per_line[i] += amount
            before[i] += units[i]
            assert per_line[i] <= order.lines[i].total
        refunded += refund.total
        assert refunded <= order.total
    assert per_line == [line.total for line in order.lines]
    assert refunded == order.total


@settings(max_examples=EXAMPLES, deadline=None)
@given(order=orders())
def test_what_was_paid_for_units_grows_with_the_units_up_to_the_line_total(
    order: PricedOrder,
) -> None:
    """``paid_for_units`` is monotone in the units and ends at the line's total and tax,
    which is why subtracting what earlier returns took can never go negative."""
    for line in order.lines:
        amounts = [
            paid_for_units(line, k, prices_include_tax=order.prices_include_tax)
            for k in range(line.quantity + 1)
        ]
        assert amounts[0] == (0, 0)
        assert amounts[-1] == (line.total, line.tax_total)
        assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in pairwise(amounts))
