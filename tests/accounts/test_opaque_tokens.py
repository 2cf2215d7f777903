"""Access and opaque tokens, attacked: forged algorithms, foreign keys, wrong audience or
issuer, expiry, tampering, missing claims, key rotation, and token kinds mixed up."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from emporium.accounts.tokens import (
    AccessClaims,
    InvalidToken,
    decode_access_token,
    hash_opaque_token,
    issue_access_token,
    new_opaque_token,
    opaque_tokens_equal,
)
from emporium.core.errors import Unauthorized

KEYS = {"k1": b"a" * 32, "k2": bytes(range(64))}
ISS = "https://shop.example"
AUD = "emporium-api"
NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
TTL = timedelta(minutes=10)
ALG, SIG = "InvalidAlgorithmError", "InvalidSignatureError"


def _issue(**overrides: Any) -> tuple[str, AccessClaims]:
    params: dict[str, Any] = {
        "keys": KEYS,
        "active_kid": "k1",
        "subject": "user-42",
        "session_id": "sess-7",
        "roles": ["customer"],
        "issuer": ISS,
        "audience": AUD,
        "ttl": TTL,
        "now": NOW,
    }
    params.update(overrides)
    return issue_access_token(**params)


def _decode(token: str, **overrides: Any) -> AccessClaims:
    params: dict[str, Any] = {"keys": KEYS, "issuer": ISS, "audience": AUD, "now": NOW}
    params.update(overrides)
    return decode_access_token(token, **params)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_b64(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def _payload(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


def _hs256(header: dict[str, Any], payload: dict[str, Any], key: bytes) -> str:
    """Sign by hand, so a test can put anything in the header and payload."""
    signing_input = f"{_json_b64(header)}.{_json_b64(payload)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _refused(token: str, reason: str | None = None, **overrides: Any) -> InvalidToken:
    """Assert the token is refused, and for ``reason`` (the check that caught it) if given."""
    with pytest.raises(InvalidToken) as caught:
        _decode(token, **overrides)
    if reason is not None:
        assert caught.value.reason == reason
    return caught.value


def test_round_trip() -> None:
    """A freshly issued token decodes to the same claims, with the expected header."""
    token, claims = _issue(roles=["customer", "staff"])
    assert _decode(token) == claims
    assert claims.sub == "user-42"
    assert claims.sid == "sess-7"
    assert claims.roles == ("customer", "staff")
    assert (claims.iss, claims.aud) == (ISS, AUD)
    assert claims.iat == int(NOW.timestamp())
    assert claims.exp == claims.iat + 600
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "kid": "k1", "typ": "at+jwt"}


def test_each_token_has_its_own_jti() -> None:
    """Two tokens issued at the same instant differ by their random ``jti``."""
    jtis = {_issue()[1].jti for _ in range(50)}
    assert len(jtis) == 50
    assert all(len(jti) >= 22 for jti in jtis)


def test_invalid_token_is_a_401_with_its_own_code() -> None:
    """The error maps to 401 invalid_token, and its message does not explain the check."""
    error = _refused("not-a-jwt")
    assert isinstance(error, Unauthorized)
    assert (error.status, error.code) == (401, "invalid_token")
    assert error.detail == "The access token is not valid."


def test_alg_none_is_refused() -> None:
    """A hand-made unsigned token (``alg: none``, empty signature) is refused."""
    token, _ = _issue()
    header = {"alg": "none", "kid": "k1", "typ": "at+jwt"}
    forged = f"{_json_b64(header)}.{token.split('.')[1]}."
    _refused(forged, ALG)
    for alg in ("None", "NONE", "nOnE"):
        _refused(f"{_json_b64({**header, 'alg': alg})}.{token.split('.')[1]}.", ALG)


def test_another_hmac_algorithm_is_refused() -> None:
    """HS512 with the right key is still refused: the algorithm is pinned, not read."""
    payload = _payload(_issue(active_kid="k2")[0])
    headers = {"kid": "k2", "typ": "at+jwt"}
    _refused(jwt.encode(payload, KEYS["k2"], algorithm="HS512", headers=headers), ALG)
    _refused(jwt.encode(payload, KEYS["k2"], algorithm="HS384", headers=headers), ALG)


def test_header_alg_swapped_is_refused() -> None:
    """Relabelling a valid HS256 token as HS512 (same signature) is refused."""
    token, _ = _issue()
    _, payload, signature = token.split(".")
    header = {"alg": "HS512", "kid": "k1", "typ": "at+jwt"}
    _refused(f"{_json_b64(header)}.{payload}.{signature}", ALG)


def test_rs256_token_is_refused() -> None:
    """A token signed with an attacker's RSA key (RS256 header, our kid) is refused."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    payload = _payload(_issue()[0])
    forged = jwt.encode(
        payload, private_key, algorithm="RS256", headers={"kid": "k1", "typ": "at+jwt"}
    )
    _refused(forged, ALG)


def test_token_signed_with_another_key_is_refused() -> None:
    """Our header and claims signed with a key we do not hold are refused."""
    payload = _payload(_issue()[0])
    forged = _hs256({"alg": "HS256", "kid": "k1", "typ": "at+jwt"}, payload, b"b" * 32)
    _refused(forged, SIG)


def test_unknown_or_missing_kid_is_refused() -> None:
    """A kid we do not know, a kid of the wrong type, or none at all, is refused."""
    payload = _payload(_issue()[0])
    for header in (
        {"alg": "HS256", "kid": "k9", "typ": "at+jwt"},
        {"alg": "HS256", "typ": "at+jwt"},
        {"alg": "HS256", "kid": ["k1"], "typ": "at+jwt"},
    ):
        _refused(_hs256(header, payload, KEYS["k1"]))


def test_hand_signed_token_is_accepted_when_everything_is_right() -> None:
    """The hand signer above is faithful: with our key and header, the token passes."""
    payload = _payload(_issue()[0])
    token = _hs256({"alg": "HS256", "kid": "k1", "typ": "at+jwt"}, payload, KEYS["k1"])
    assert _decode(token).sub == "user-42"


def test_wrong_or_missing_typ_is_refused() -> None:
    """A JWT signed with our key but not typed as an access token is refused (RFC 8725 3.11)."""
    payload = _payload(_issue()[0])
    for header in ({"alg": "HS256", "kid": "k1", "typ": "JWT"}, {"alg": "HS256", "kid": "k1"}):
        _refused(_hs256(header, payload, KEYS["k1"]), "wrong typ")


def test_wrong_audience_is_refused() -> None:
    """A token for another audience is refused, as is one whose aud is a list."""
    token, _ = _issue(audience="other-api")
    _refused(token, "InvalidAudienceError")
    token, _ = _issue()
    _refused(token, "InvalidAudienceError", audience="other-api")
    payload = {**_payload(token), "aud": [AUD, "other-api"]}
    forged = _hs256({"alg": "HS256", "kid": "k1", "typ": "at+jwt"}, payload, KEYS["k1"])
    _refused(forged, "InvalidAudienceError")


def test_wrong_issuer_is_refused() -> None:
    """A token from another issuer is refused."""
    token, _ = _issue(issuer="https://evil.example")
    _refused(token, "InvalidIssuerError")


def test_expired_token_is_refused_and_valid_one_second_before() -> None:
    """Valid while now < exp; refused from exp on, with a message saying it expired."""
    token, claims = _issue()
    expires = datetime.fromtimestamp(claims.exp, UTC)
    assert _decode(token, now=expires - timedelta(seconds=1)) == claims
    assert _decode(token, now=expires - timedelta(microseconds=1)) == claims
    error = _refused(token, "expired", now=expires)
    assert error.detail == "The access token has expired."
    _refused(token, now=expires + timedelta(days=365))


def test_leeway_extends_both_ends() -> None:
    """A leeway in seconds tolerates clock skew at exp and at iat, and no more."""
    token, claims = _issue()
    expires = datetime.fromtimestamp(claims.exp, UTC)
    assert _decode(token, now=expires + timedelta(seconds=29), leeway_seconds=30) == claims
    _refused(token, now=expires + timedelta(seconds=30), leeway_seconds=30)
    assert _decode(token, now=NOW - timedelta(seconds=30), leeway_seconds=30) == claims
    _refused(token, now=NOW - timedelta(seconds=31), leeway_seconds=30)


def test_token_from_the_future_is_refused() -> None:
    """A token whose iat is after now (a clock moved back, a forged date) is refused."""
    token, _ = _issue()
    _refused(token, "issued in the future", now=NOW - timedelta(seconds=1))


def test_tampered_payload_is_refused() -> None:
    """Changing sub (or roles) in a signed token breaks the signature."""
    token, _ = _issue()
    header, _, signature = token.split(".")
    for change in ({"sub": "user-1"}, {"roles": ["customer", "staff"]}):
        payload = {**_payload(token), **change}
        _refused(f"{header}.{_json_b64(payload)}.{signature}", SIG)


def test_truncated_or_garbled_tokens_are_refused() -> None:
    """Anything that is not a well-formed JWS is refused, never a crash."""
    token, _ = _issue()
    head, signature = token.rsplit(".", 1)
    # A character inside the signature carries 6 significant bits (the last one only 4).
    flipped = signature[:10] + ("A" if signature[10] != "A" else "Q") + signature[11:]
    _refused(f"{head}.{flipped}", SIG)
    for bad in ("", ".", "..", "a.b.c", "é.é.é", head, f"{token}.x", f"{head}.", token[::-1]):
        _refused(bad)


@pytest.mark.parametrize("claim", ["iss", "aud", "sub", "sid", "roles", "iat", "exp", "jti"])
def test_missing_claim_is_refused(claim: str) -> None:
    """A token signed with our key but lacking any one claim is refused."""
    payload = _payload(_issue()[0])
    del payload[claim]
    _refused(_hs256({"alg": "HS256", "kid": "k1", "typ": "at+jwt"}, payload, KEYS["k1"]))


@pytest.mark.parametrize(
    ("claim", "value"),
    [("sub", 42), ("sid", None), ("roles", "staff"), ("roles", [1]), ("exp", "never")],
)
def test_claim_of_the_wrong_type_is_refused(claim: str, value: object) -> None:
    """Claims must have their types: a string subject, a list of role names, numeric dates."""
    payload = {**_payload(_issue()[0]), claim: value}
    _refused(_hs256({"alg": "HS256", "kid": "k1", "typ": "at+jwt"}, payload, KEYS["k1"]))


def test_key_rotation() -> None:
    """A token signed by the old key verifies while that key is listed, and not after."""
    old_token, _ = _issue(active_kid="k1")
    new_token, _ = _issue(active_kid="k2")
    assert jwt.get_unverified_header(new_token)["kid"] == "k2"
    assert _decode(old_token).sub == _decode(new_token).sub == "user-42"
    rotated = {"k2": KEYS["k2"]}
    assert _decode(new_token, keys=rotated).sub == "user-42"
    _refused(old_token, "unknown kid", keys=rotated)


def test_kid_picks_the_key() -> None:
    """A token signed with key k2 but labelled k1 is refused: the kid is bound to the key."""
    payload = _payload(_issue()[0])
    _refused(_hs256({"alg": "HS256", "kid": "k1", "typ": "at+jwt"}, payload, KEYS["k2"]), SIG)


def test_issuing_refuses_bad_settings() -> None:
    """Short keys, unknown kids, lifetimes outside 5-15 minutes and naive times are refused."""
    with pytest.raises(ValueError, match="32 bytes"):
        _issue(keys={"k1": b"short"})
    with pytest.raises(ValueError, match="no JWT key"):
        _issue(active_kid="k3")
    for ttl in (timedelta(minutes=4, seconds=59), timedelta(minutes=15, seconds=1)):
        with pytest.raises(ValueError, match="5 to 15 minutes"):
            _issue(ttl=ttl)
    with pytest.raises(ValueError, match="timezone-aware"):
        _issue(now=NOW.replace(tzinfo=None))
    assert _issue(ttl=timedelta(minutes=5))[1].exp - NOW.timestamp() == 300
    assert _issue(ttl=timedelta(minutes=15))[1].exp - NOW.timestamp() == 900


def test_opaque_tokens_are_256_bit_and_unique() -> None:
    """Each token is 43 base64url characters (256 bits) after its prefix, never repeated."""
    tokens = {new_opaque_token("emp_rt_") for _ in range(1000)}
    assert len(tokens) == 1000
    for token in tokens:
        assert token.startswith("emp_rt_")
        body = token.removeprefix("emp_rt_")
        assert len(body) == 43
        assert len(base64.urlsafe_b64decode(body + "=")) == 32
    assert len(new_opaque_token()) == 43
    with pytest.raises(ValueError, match="prefix"):
        new_opaque_token("bad prefix!")


def test_opaque_token_hash_is_stable_and_separated_by_purpose() -> None:
    """The stored hash is deterministic (for lookup), hex SHA-256, and differs per purpose,
    so a reset token cannot be replayed as a refresh token."""
    token = new_opaque_token()
    stored = hash_opaque_token(token, purpose="refresh")
    assert stored == hash_opaque_token(token, purpose="refresh")
    assert len(stored) == 64
    assert int(stored, 16) >= 0
    assert token not in stored
    assert hash_opaque_token(token, purpose="password_reset") != stored
    assert hash_opaque_token(token + "x", purpose="refresh") != stored
    # The purpose and the token cannot be shifted into each other.
    assert hash_opaque_token("abc", purpose="ab") != hash_opaque_token("bc", purpose="aba")
    with pytest.raises(ValueError, match="purpose"):
        hash_opaque_token(token, purpose="Refresh\x00")


def test_opaque_token_hashes_compare_in_constant_time() -> None:
    """Equal hashes compare equal, others not, whatever their text."""
    token = new_opaque_token()
    stored = hash_opaque_token(token, purpose="refresh")
    assert opaque_tokens_equal(stored, hash_opaque_token(token, purpose="refresh"))
    assert not opaque_tokens_equal(stored, hash_opaque_token(token, purpose="password_reset"))
    assert not opaque_tokens_equal(stored, "")
    assert not opaque_tokens_equal(stored, "é" * 64)
