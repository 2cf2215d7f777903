"""Money: integer counts of a currency's minor unit plus an ISO 4217 code, never floats.

The exponent of each currency's minor unit (USD 2, JPY 0, KWD 3) comes from the Unicode
CLDR data that Babel ships (ISO 4217 codes are checked against pycountry's list).
"""

from __future__ import annotations

from functools import cache

import pycountry
from babel.numbers import get_currency_precision


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
