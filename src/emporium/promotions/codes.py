"""Promotion codes as stored and compared: normalised, so that codes are case-insensitive."""

from __future__ import annotations

import re

from emporium.core.errors import InvalidInput

MAX_CODE = 64
_CODE = re.compile(r"^[A-Z0-9_-]{3,64}$")


def normalise_code(code: str) -> str:
    """``" summer-10 "`` → ``"SUMMER-10"``: surrounding white space stripped, upper case.
    A code is 3 to 64 letters (A-Z), digits, ``-`` and ``_``.

    Raises:
        InvalidInput: (422) anything else.
    """
    value = code.strip().upper()
    if not _CODE.match(value):
        raise InvalidInput(
            "A promotion code is 3 to 64 letters, digits, '-' or '_'.",
            errors=[{"loc": ["body", "code"], "msg": "3 to 64 letters, digits, '-' or '_'"}],
        )
    return value
