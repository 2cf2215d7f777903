"""ISO 3166 codes, checked against pycountry's copy of the ISO lists (Debian iso-codes)."""

from __future__ import annotations

import pycountry


def is_country(code: str) -> bool:
    """True for an ISO 3166-1 alpha-2 code in upper case (``DE``, ``US``)."""
    return len(code) == 2 and code.isupper() and pycountry.countries.get(alpha_2=code) is not None


def is_region(code: str) -> bool:
    """True for an ISO 3166-2 subdivision code in upper case (``US-CA``, ``DE-BE``)."""
    found = pycountry.subdivisions.get(code=code)  # type: ignore[no-untyped-call]
    return code.isupper() and found is not None


def address_region(country: str, region: str | None) -> str | None:
    """The ISO 3166-2 code of an address's region, written either as the full code
    (``US-CA``) or as its part after the country (``CA``, any case); None when the address has
    no region or it names no subdivision of ``country``."""
    if not region:
        return None
    text = region.strip().upper()
    for code in (text, f"{country}-{text}"):
        if code.startswith(f"{country}-") and is_region(code):
            return code
    return None
