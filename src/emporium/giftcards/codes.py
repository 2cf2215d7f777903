"""Gift-card codes: made at random, shown once, stored only as a keyed hash.

A code is 16 characters of Crockford's base32 alphabet (digits and upper-case letters
without I, L, O and U, so nothing is misread), 80 random bits from :mod:`secrets`, shown
in groups of four (``7K3M-Q9TZ-...``). What a person types is normalised the Crockford way
(upper case; spaces and hyphens dropped; ``O`` read as ``0``, ``I`` and ``L`` as ``1``), so a
code read aloud or copied with its hyphens still matches. The stored form is
:func:`core.crypto.sealing.blind_index` of the normalised code under its own purpose: an
HMAC-SHA256 with a key derived from the deployment's key file, so a copy of the database
alone does not let anyone test codes (OWASP ASVS 6.2, Cryptographic Storage).
"""

from __future__ import annotations

import secrets

from emporium.core.crypto.keys import KeyRing
from emporium.core.crypto.sealing import blind_index

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base32: 32 symbols, 5 bits each."""
LENGTH = 16
"""Characters of a code: 80 bits of entropy."""
GROUP = 4
CODE_INDEX_PURPOSE = "gift_card.code"
_SAME = str.maketrans({"O": "0", "I": "1", "L": "1", " ": None, "-": None})


def new_code() -> str:
    """A fresh random code, normalised (16 characters of :data:`ALPHABET`)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def formatted(code: str) -> str:
    """``code`` in groups of four joined by hyphens (``XXXX-XXXX-XXXX-XXXX``), as shown once."""
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def normalise(typed: str) -> str | None:
    """The normalised form of what someone typed, or None when it cannot be a code (wrong
    length or a character outside the alphabet once normalised)."""
    code = typed.strip().upper().translate(_SAME)
    if len(code) != LENGTH or any(c not in ALPHABET for c in code):
        return None
    return code


def code_index(ring: KeyRing, code: str) -> str:
    """The keyed hash of a normalised ``code`` (64 hex characters), as stored and looked up."""
    return blind_index(ring, code, purpose=CODE_INDEX_PURPOSE)
