"""Money: integer counts of a currency's minor unit plus an ISO 4217 code, never floats.

The exponent of each currency's minor unit (USD 2, JPY 0, KWD 3) comes from the Unicode
CLDR data that Babel ships (ISO 4217 codes are checked against pycountry's list).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import cache

import pycountry
from babel.numbers import get_currency_precision

BASIS_POINTS = 10_000
"""A rate of 100 %, in basis points (``rate_bp``; 1900 = 19 %)."""


def round_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up to an integer (``ROUND_HALF_UP`` of the
    exact quotient), for a non-negative numerator and a positive denominator.

    Raises:
        ValueError: a negative numerator or a non-positive denominator.
    """
    if numerator < 0 or denominator <= 0:
        raise ValueError("round_half_up takes a non-negative numerator over a positive one")
    with localcontext() as ctx:
        # 60 digits keep the quotient exact enough: a fraction with a denominator below
        # 10^9 is never closer than 10^-18 to one half unless it is one half.
        ctx.prec = 60
        quotient = Decimal(numerator) / Decimal(denominator)
        return int(quotient.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """Split ``amount`` minor units over ``weights`` in proportion: each share is rounded
    down, and the units left over go one each to the largest weights (earliest first on a
    tie). The shares add up to ``amount``, and no share exceeds its weight.

    Raises:
        ValueError: a negative amount or weight, or ``amount`` above the sum of the weights.
    """
    whole = sum(weights)
    if amount < 0 or any(w < 0 for w in weights):
        raise ValueError("amounts and weights must not be negative")
    if amount > whole:
        raise ValueError("cannot allocate more than the weights hold")
    if amount == 0:
        return [0] * len(weights)
    shares = [amount * w // whole for w in weights]
    left = amount - sum(shares)
    largest = sorted(range(len(weights)), key=lambda i: (-weights[i], i))
    for i in largest[:left]:
        shares[i] += 1
    return shares


@cache
def currency_exponent(code: str) -> int:
    """The number of decimals of an ISO 4217 currency's minor unit: ``USD`` 2, ``JPY`` 0,
    ``KWD`` 3.

    Raises:
        ValueError: ``code`` is not an ISO 4217 alphabetic code (upper case).
    """
    if len(code) != 3 or not code.isupper() or pycountry.currencies.get(alpha_3=code) is None:
        raise ValueError(f"not an ISO 4217 currency code: {code!r}")
    return int(get_currency_precision(code))


def format_money(minor: int, currency: str) -> str:
    """``1234, "USD"`` → ``"12.34 USD"`` (``"500 JPY"``, ``"1.250 KWD"``, ``"-0.05 EUR"``):
    integer minor units shown with the currency's exponent. Exact: no float is involved.
    An unknown code is shown with two decimals."""
    try:
        digits = currency_exponent(currency)
    except ValueError:
        digits = 2
    sign = "-" if minor < 0 else ""
    whole, part = divmod(abs(minor), 10**digits)
    return f"{sign}{whole}.{part:0{digits}d} {currency}" if digits else f"{sign}{whole} {currency}"
