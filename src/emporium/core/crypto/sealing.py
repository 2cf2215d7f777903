"""Personal data encrypted at rest, and blind indexes to look it up.

Field encryption is AES-256-GCM (NIST SP 800-38D) through pyca/cryptography, with a fresh
random 96-bit nonce per value and the active data key of the key ring (:mod:`emporium.core.
keys`). The associated data binds the format version, the key id and the value's place
(table, column, row id): a value copied to another row, column or table fails to decrypt,
as does any changed bit (OWASP ASVS 6.2.2, 6.2.5; Cryptographic Storage Cheat Sheet).

A stored value is ASCII text for a TEXT column::

    v1.<kid>.<base64url without padding of nonce (12 bytes) + ciphertext + tag (16 bytes)>

Random nonces stay safe for about 2**32 encryptions under one key (SP 800-38D section 8.3);
``emporium keys rotate`` adds a key long before that and re-encrypts every row
(:func:`needs_reencryption`, :func:`reencrypt_field`).

A blind index is an HMAC-SHA256 (RFC 2104) of a normalised value under a per-purpose key
derived from ``KeyRing.index_key``. It is deterministic, so a unique constraint and an
equality lookup work on it, and reveals nothing but equality to whoever lacks the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import unicodedata

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from emporium.core.crypto.keys import KID_PATTERN, KeyRing

VERSION = "v1"
NONCE_BYTES = 12
"""96 bits, the nonce size SP 800-38D recommends for random nonces."""
TAG_BYTES = 16
_AD_LABEL = b"emporium:field:v1"
_INDEX_LABEL = b"emporium:blind-index:v1:"
_TOKEN = re.compile(rf"v1\.({KID_PATTERN.pattern})\.([A-Za-z0-9_-]+)")


class DecryptionError(ValueError):
    """A stored value cannot be decrypted: malformed, unknown key id, or not authentic.

    The message never contains the value, its plaintext, or key material.
    """


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _parse(token: str) -> tuple[str, bytes]:
    """Split a stored value into ``(kid, nonce + ciphertext + tag)``; DecryptionError if bad."""
    match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        raise DecryptionError("not an encrypted value of format v1")
    kid, text = match.groups()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise DecryptionError("encrypted value is not valid base64url") from None
    if _b64url(raw) != text:  # one spelling per value: reject non-canonical trailing bits
        raise DecryptionError("encrypted value is not canonical base64url")
    if len(raw) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError("encrypted value is too short")
    return kid, raw


def _associated_data(kid: str, table: str, column: str, row_id: str) -> bytes:
    """Version label, then each part as 4-byte big-endian length + UTF-8 bytes.

    Length prefixes make the encoding unambiguous: ("a|b", "c") and ("a", "b|c") differ.
    Raises ValueError for an empty part (a row id not yet assigned would bind nothing).
    """
    parts = [kid, table, column, row_id]
    if not all(parts):
        raise ValueError("kid, table, column and row_id must all be non-empty")
    encoded = [part.encode("utf-8") for part in parts]
    return _AD_LABEL + b"".join(len(p).to_bytes(4, "big") + p for p in encoded)


def encrypt_field(ring: KeyRing, plaintext: str, *, table: str, column: str, row_id: str) -> str:
    """Encrypt ``plaintext`` for ``table.column`` of row ``row_id`` under the active data key.

    Returns ``v1.<kid>.<base64url>`` (ASCII). Two calls with the same input differ (fresh
    random nonce). Raises ValueError for an empty table, column or row id.
    """
    kid = ring.active_data_kid
    associated = _associated_data(kid, table, column, row_id)
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(ring.data_keys[kid]).encrypt(nonce, plaintext.encode("utf-8"), associated)
    return f"{VERSION}.{kid}.{_b64url(nonce + sealed)}"


def decrypt_field(ring: KeyRing, token: str, *, table: str, column: str, row_id: str) -> str:
    """The plaintext of a value made by :func:`encrypt_field` for this very place.

    Raises :class:`DecryptionError` when the value is malformed, its key id is not in the
    ring, or authentication fails (tampered, or moved from another row, column or table);
    ValueError for an empty table, column or row id.
    """
    kid, raw = _parse(token)
    key = ring.data_keys.get(kid)
    if key is None:
        raise DecryptionError(f"encrypted value uses key id {kid!r}, which is not in the key ring")
    associated = _associated_data(kid, table, column, row_id)
    try:
        plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated)
        return plain.decode("utf-8")
    except (InvalidTag, UnicodeDecodeError):
        raise DecryptionError("encrypted value failed authentication for this place") from None


def key_id_of(token: str) -> str:
    """The id of the data key that encrypted ``token``; DecryptionError if malformed."""
    return _parse(token)[0]


def needs_reencryption(ring: KeyRing, token: str) -> bool:
    """True when ``token`` is not under the ring's active data key (rotation must redo it)."""
    return key_id_of(token) != ring.active_data_kid


def reencrypt_field(ring: KeyRing, token: str, *, table: str, column: str, row_id: str) -> str:
    """``token`` under the active data key; unchanged if already so (rotation can resume).

    Raises :class:`DecryptionError` as :func:`decrypt_field` does.
    """
    if not needs_reencryption(ring, token):
        return token
    plain = decrypt_field(ring, token, table=table, column=column, row_id=row_id)
    return encrypt_field(ring, plain, table=table, column=column, row_id=row_id)


def normalize_email(value: str) -> str:
    """An e-mail address in the form its blind index is computed on.

    NFKC (full-width and compatibility forms become plain), surrounding whitespace removed,
    case folded (Unicode full case folding, so "STRAßE" equals "strasse"), then NFKC again
    because case folding can leave a string unnormalised (Unicode section 3.13). Folding the
    local part is stricter than RFC 5321 allows, but every major provider treats it so.
    """
    folded = unicodedata.normalize("NFKC", value).strip().casefold()
    return unicodedata.normalize("NFKC", folded)


def blind_index(ring: KeyRing, value: str, *, purpose: str) -> str:
    """A keyed HMAC-SHA256 (RFC 2104) of an already-normalised ``value``; 64 hex characters.

    The HMAC key is derived per purpose (``HMAC(index_key, label + purpose)``), so the same
    value gives unrelated indexes for "user.email" and any other purpose, and a different
    ``index_key`` gives unrelated indexes. Raises ValueError for an empty purpose.
    """
    if not purpose:
        raise ValueError("a blind index needs a purpose, such as 'user.email'")
    purpose_key = hmac.digest(ring.index_key, _INDEX_LABEL + purpose.encode("utf-8"), "sha256")
    return hmac.new(purpose_key, value.encode("utf-8"), hashlib.sha256).hexdigest()
