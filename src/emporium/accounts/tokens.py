"""Access tokens (signed JWT) and opaque tokens (refresh, password reset), issued and checked.

Access tokens follow RFC 7519 (JWT) and the RFC 8725 best current practice: one pinned
algorithm (HS256), never taken from the token; the key chosen by the ``kid`` header among
the configured keys, so keys rotate by adding a new active key and removing the old one once
its tokens have expired; an explicit type ``at+jwt`` (RFC 9068) so no other JWT passes as an
access token; ``iss``, ``aud``, ``exp``, ``iat``, ``jti``, ``sub``, ``sid`` (session id) and
``roles`` all required; a lifetime of 5 to 15 minutes (OWASP ASVS 3.5). Time comes from the
caller (``now``), so the clock seam decides it and tests move it without sleeping.

Opaque tokens are 256 random bits; only their SHA-256 is stored (OWASP ASVS 2.5, 3.5), under
a purpose, so a token issued for one use is never accepted for another.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import jwt
import msgspec

from emporium.core.errors import Unauthorized

ALGORITHM = "HS256"
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type (RFC 9068), not a secret
MIN_KEY_BYTES = 32
"""RFC 7518 3.2: an HS256 key must be at least as long as the hash output (256 bits)."""
MIN_ACCESS_TTL = timedelta(minutes=5)
MAX_ACCESS_TTL = timedelta(minutes=15)
OPAQUE_TOKEN_BYTES = 32

_PREFIX = re.compile(r"[A-Za-z0-9_]{0,32}")
_PURPOSE = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_REQUIRED = ["iss", "aud", "sub", "iat", "exp", "jti"]


class InvalidToken(Unauthorized):
    """The token is malformed, forged, expired or not meant for us (401 ``invalid_token``).

    ``detail`` is short and shown to the client; ``reason`` names the failed check for logs.
    """

    code, title = "invalid_token", "Invalid token"

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(
            "The access token has expired." if expired else "The access token is not valid."
        )
        self.reason = reason


class AccessClaims(msgspec.Struct, frozen=True, kw_only=True):
    """The claims of a verified access token; ``iat`` and ``exp`` are Unix seconds (UTC)."""

    iss: str
    aud: str
    sub: str
    sid: str
    roles: tuple[str, ...]
    iat: int
    exp: int
    jti: str


def _signing_key(keys: Mapping[str, bytes], kid: str) -> bytes:
    """The key named ``kid``; ValueError (a configuration error) when it is too short."""
    key = keys[kid]
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"JWT key {kid!r} is shorter than {MIN_KEY_BYTES} bytes")
    return key


def _unix_seconds(now: datetime) -> float:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (use emporium.core.clock.utcnow)")
    return now.timestamp()


def issue_access_token(
    *,
    keys: Mapping[str, bytes],
    active_kid: str,
    subject: str,
    session_id: str,
    roles: Sequence[str],
    issuer: str,
    audience: str,
    ttl: timedelta,
    now: datetime,
) -> tuple[str, AccessClaims]:
    """Sign a new access token with ``keys[active_kid]`` (HS256, header ``kid``, ``typ``).

    Returns the compact JWT and its claims: ``iat`` is ``now`` in whole seconds, ``exp`` is
    ``iat + ttl``, ``jti`` 128 random bits. Raises ValueError for a ``ttl`` outside 5 to 15
    minutes, an unknown ``active_kid``, a key shorter than 32 bytes or a naive ``now``.
    """
    if not MIN_ACCESS_TTL <= ttl <= MAX_ACCESS_TTL:
        raise ValueError("access tokens live 5 to 15 minutes")
    if active_kid not in keys:
        raise ValueError(f"no JWT key {active_kid!r}")
    issued_at = int(_unix_seconds(now))
    claims = AccessClaims(
        iss=issuer,
        aud=audience,
        sub=subject,
        sid=session_id,
        roles=tuple(roles),
        iat=issued_at,
        exp=issued_at + int(ttl.total_seconds()),
        jti=secrets.token_urlsafe(16),
    )
    token = jwt.encode(
        msgspec.to_builtins(claims),
        _signing_key(keys, active_kid),
        algorithm=ALGORITHM,
        headers={"kid": active_kid, "typ": ACCESS_TOKEN_TYPE},
    )
    return token, claims


def _verified_payload(
    token: str, keys: Mapping[str, bytes], issuer: str, audience: str
) -> dict[str, Any]:
    """Signature, algorithm, type, ``iss`` and ``aud`` checked by PyJWT; time is left to us
    because PyJWT reads the system clock."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.InvalidTokenError:
        raise InvalidToken("malformed") from None
    if not isinstance(kid, str) or kid not in keys:
        raise InvalidToken("unknown kid")
    try:
        decoded = jwt.decode_complete(
            token,
            _signing_key(keys, kid),
            algorithms=[ALGORITHM],
            issuer=issuer,
            audience=audience,
            options={
                "require": _REQUIRED,
                "strict_aud": True,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.InvalidTokenError as exc:
        raise InvalidToken(type(exc).__name__) from None
    if decoded["header"].get("typ") != ACCESS_TOKEN_TYPE:
        raise InvalidToken("wrong typ")
    payload: dict[str, Any] = decoded["payload"]
    return payload


def decode_access_token(
    token: str,
    *,
    keys: Mapping[str, bytes],
    issuer: str,
    audience: str,
    now: datetime,
    leeway_seconds: int = 0,
) -> AccessClaims:
    """Verify an access token and return its claims; raise :class:`InvalidToken` otherwise.

    Only HS256 is accepted (``alg: none``, HS512, RS256 and the rest are refused, RFC 8725
    2.1 and 3.1); the key is ``keys[kid]`` and an unknown ``kid`` is refused. The token is
    valid while ``iat - leeway <= now < exp + leeway`` (RFC 7519 4.1.4 and 4.1.6).
    """
    payload = _verified_payload(token, keys, issuer, audience)
    try:
        claims = msgspec.convert(payload, AccessClaims)
    except msgspec.ValidationError:
        raise InvalidToken("claims") from None
    instant = _unix_seconds(now)
    if instant >= claims.exp + leeway_seconds:
        raise InvalidToken("expired", expired=True)
    if instant < claims.iat - leeway_seconds:
        raise InvalidToken("issued in the future")
    return claims


def new_opaque_token(prefix: str = "") -> str:
    """A new bearer secret: ``prefix`` then 256 random bits in base64url (43 characters).

    A prefix such as ``emp_rt_`` lets secret scanners recognise leaked tokens; it is at most
    32 characters of ``[A-Za-z0-9_]``. The token is shown to its owner once; store only
    :func:`hash_opaque_token` of it.
    """
    if not _PREFIX.fullmatch(prefix):
        raise ValueError("the prefix is at most 32 characters of A-Z, a-z, 0-9 and _")
    return prefix + secrets.token_urlsafe(OPAQUE_TOKEN_BYTES)


def hash_opaque_token(token: str, *, purpose: str) -> str:
    """The value to store and look up for an opaque token: 64 hex characters of
    SHA-256(purpose, NUL, token).

    A fast unsalted hash is enough here, unlike for passwords: the token has 256 random bits,
    so no dictionary or brute force can find it from its hash, and being deterministic the
    hash can be looked up by index. ``purpose`` (``refresh``, ``password_reset``, ...:
    lower-case, no NUL) separates the kinds: a reset token presented as a refresh token hashes
    to a value that is in no table.
    """
    if not _PURPOSE.fullmatch(purpose):
        raise ValueError("the purpose is a lower-case name such as 'refresh'")
    # surrogatepass: a lone surrogate decoded from a JSON escape hashes instead of raising.
    data = purpose.encode("ascii") + b"\x00" + token.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def opaque_tokens_equal(a_hash: str, b_hash: str) -> bool:
    """Compare two stored token hashes in constant time (no timing side channel)."""
    return hmac.compare_digest(a_hash.encode("utf-8"), b_hash.encode("utf-8"))
