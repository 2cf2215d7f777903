"""Forged, altered, expired and misplaced access tokens on a protected route: every one is a
401 problem, and none reveals the account it names."""

from __future__ import annotations

import base64
import json
import warnings
from datetime import timedelta
from typing import Any

import jwt
import jwt.warnings

from accounts.support import API, Client, assert_problem, bearer, sign_up
from conftest import SignIn
from emporium.accounts.tokens import issue_access_token
from emporium.core.clock import utcnow
from emporium.core.config import Settings
from emporium.core.crypto.keys import load_key_file

ME = f"{API}/users/me"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return _unb64(header), _unb64(payload), signature


def _segment(part: dict[str, Any]) -> str:
    return _b64(json.dumps(part, separators=(",", ":")).encode())


def _compact(header: dict[str, Any], payload: dict[str, Any], signature: str) -> str:
    return f"{_segment(header)}.{_segment(payload)}.{signature}"


def _with_payload(token: str, payload: dict[str, Any]) -> str:
    """``token`` with its payload replaced, header and signature bytes kept as they were."""
    header, _, signature = token.split(".")
    return f"{header}.{_segment(payload)}.{signature}"


def _hs512(claims: dict[str, Any], key: bytes, kid: str) -> str:
    """The claims signed with the real key, but with HS512 (an algorithm not pinned)."""
    with warnings.catch_warnings():  # PyJWT finds a 32-byte key short for HS512
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(claims, key, algorithm="HS512", headers={"kid": kid, "typ": "at+jwt"})


def _mint(settings: Settings, claims: dict[str, Any], **overrides: Any) -> str:
    """A token signed with the deployment's real key, with some claims changed."""
    ring = load_key_file(settings.key_file)
    arguments: dict[str, Any] = {
        "keys": ring.jwt_keys,
        "active_kid": ring.active_jwt_kid,
        "subject": claims["sub"],
        "session_id": claims["sid"],
        "roles": claims["roles"],
        "issuer": settings.jwt_issuer,
        "audience": settings.jwt_audience,
        "ttl": timedelta(minutes=10),
        "now": utcnow(),
    }
    arguments.update(overrides)
    token, _ = issue_access_token(**arguments)
    return token


async def test_forged_and_altered_tokens_are_refused(
    client: Client, settings: Settings, sign_in: SignIn
) -> None:
    """alg none, a guessed key, another audience or issuer, an expired token, a changed
    subject or role, an unknown key id: all 401 problem+json, and the genuine token still
    works."""
    victim = await sign_up(client)
    other = await sign_up(client)
    token = victim.access_token
    header, claims, _ = _parts(token)
    assert header["alg"] == "HS256"
    assert claims["sub"] == victim.id
    ring = load_key_file(settings.key_file)
    kid = ring.active_jwt_kid

    forged: dict[str, str] = {
        "alg none": _compact({**header, "alg": "none"}, claims, ""),
        "alg none, no typ": _compact({"alg": "none", "typ": "JWT"}, claims, ""),
        "HS256 with a wrong key": jwt.encode(
            claims, "x" * 32, algorithm="HS256", headers={"kid": kid, "typ": "at+jwt"}
        ),
        "HS512 with the real key": _hs512(claims, ring.jwt_keys[kid], kid),
        "real key, no typ": jwt.encode(
            claims, ring.jwt_keys[kid], algorithm="HS256", headers={"kid": kid}
        ),
        "unknown kid": jwt.encode(
            claims, ring.jwt_keys[kid], algorithm="HS256", headers={"kid": "other", "typ": "at+jwt"}
        ),
        "other audience": _mint(settings, claims, audience="another-api"),
        "other issuer": _mint(settings, claims, issuer="https://evil.example"),
        "expired": _mint(settings, claims, now=utcnow() - timedelta(minutes=11)),
        "issued in the future": _mint(settings, claims, now=utcnow() + timedelta(minutes=5)),
        "sub changed, signature kept": _with_payload(token, {**claims, "sub": other.id}),
        "roles changed, signature kept": _with_payload(
            token, {**claims, "roles": ["admin", "staff"]}
        ),
        "exp pushed, signature kept": _with_payload(
            token, {**claims, "exp": claims["exp"] + 86400}
        ),
        "signature removed": _compact(header, claims, ""),
        "signature of another token": _compact(header, claims, other.access_token.split(".")[2]),
        "not a JWT": "not-a-token",
        "refresh token as access token": victim.refresh_token,
    }
    for kind, attempt in forged.items():
        response = await client.get(ME, headers=bearer(attempt))
        assert response.status_code == 401, (kind, response.text)
        assert_problem(response, 401)
        assert victim.email not in response.text, kind
        assert other.email not in response.text, kind
    admin_only = await client.get(
        f"{API}/users", headers=bearer(forged["roles changed, signature kept"])
    )
    assert_problem(admin_only, 401)

    response = await client.get(ME, headers=victim.headers)
    assert response.status_code == 200
    assert response.json()["id"] == victim.id


async def test_other_authorization_schemes_are_refused(client: Client) -> None:
    """Only 'Bearer <token>' counts: other schemes, an empty token or a bare token are 401."""
    account = await sign_up(client)
    token = account.access_token
    for value in (f"Basic {token}", f"Token {token}", token, "Bearer ", "Bearer"):
        response = await client.get(ME, headers={"Authorization": value})
        assert_problem(response, 401)
    response = await client.get(ME, headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200


async def test_token_in_the_query_string_is_ignored(client: Client) -> None:
    """A token in the URL (kept by logs and browser history) does not sign anyone in: the
    request is refused outright (400 ``credentials_in_url``)."""
    account = await sign_up(client)
    for name in ("access_token", "token", "jwt", "authorization"):
        response = await client.get(ME, params={name: account.access_token})
        assert_problem(response, 400, "credentials_in_url")
        response = await client.get(ME, params={name: f"Bearer {account.access_token}"})
        assert_problem(response, 400, "credentials_in_url")
    response = await client.get(ME, headers={"Cookie": f"access_token={account.access_token}"})
    assert_problem(response, 401)
