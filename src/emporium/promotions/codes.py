"""Promotion codes as stored and compared: normalised, so that ``welcome5``, ``WELCOME5`` and
`` Welcome5 `` are one code (the ``promotion.code`` column is unique on the normal form)."""

from __future__ import annotations

import re

from emporium.core.errors import InvalidInput

_NORMAL = re.compile(r"[A-Z0-9_-]{3,64}")
RULE = "3 to 64 letters A-Z, digits, '-' or '_' (any case; surrounding spaces ignored)"
"""The rule for a code, as the 422 answer states it."""


def normalise_code(code: str) -> str:
    """The stored form of a promotion ``code``: surrounding whitespace stripped, upper-cased;
    3 to 64 ASCII letters, digits, ``-`` and ``_``.

    Raises InvalidInput (422, ``loc: ["body", "code"]``) for anything else.
    """
    normal = code.strip().upper()
    if _NORMAL.fullmatch(normal) is None:
        raise InvalidInput(f"code: {RULE}", errors=[{"loc": ["body", "code"], "msg": RULE}])
    return normal
