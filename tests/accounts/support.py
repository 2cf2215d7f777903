"""Helpers of the accounts tests: sign up and sign in through the HTTP API, read problems,
and look at what the database holds.

Imported by the test modules as ``accounts.support``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pyotp

from factories import API, Client, Json, assert_problem

PASSWORD = "Quartz lantern drifts over 9 fjords"
"""A password the policy accepts (a passphrase of unrelated words)."""
OTHER_PASSWORD = "Zebra-kettle-Orbit-57 mango"

__all__ = [
    "API",
    "OTHER_PASSWORD",
    "PASSWORD",
    "Account",
    "Client",
    "Json",
    "assert_problem",
    "bearer",
    "enable_mfa",
    "login",
    "new_email",
    "register",
    "sign_up",
]


def new_email(stem: str = "user") -> str:
    """A fresh e-mail address nobody has used yet."""
    return f"{stem}.{uuid.uuid4().hex[:10]}@example.com"


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of an access token."""
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Account:
    """A registered user and the tokens of one of their sessions."""

    id: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        """Authorization headers of this session."""
        return bearer(self.access_token)


async def register(
    client: Client, email: str | None = None, password: str = PASSWORD, **fields: Any
) -> Json:
    """Register a customer through the API (201) and return the profile."""
    body = {"email": email or new_email(), "password": password, **fields}
    response = await client.post(f"{API}/auth/register", json=body)
    assert response.status_code == 201, response.text
    assert password not in response.text
    profile: Json = response.json()
    return profile


async def login(client: Client, email: str, password: str = PASSWORD) -> Json:
    """Sign in through the API (200) and return the token pair."""
    response = await client.post(f"{API}/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    pair: Json = response.json()
    return pair


async def sign_up(
    client: Client, email: str | None = None, password: str = PASSWORD, **fields: Any
) -> Account:
    """Register and sign in through the API."""
    profile = await register(client, email, password, **fields)
    pair = await login(client, profile["email"], password)
    return Account(
        id=profile["id"],
        email=profile["email"],
        password=password,
        access_token=pair["access_token"],
        refresh_token=pair["refresh_token"],
    )


@dataclass
class Mfa:
    """A confirmed TOTP enrolment: the secret and the recovery codes shown once."""

    secret: str
    recovery_codes: list[str]
    confirm_code: str
    """The TOTP code that confirmed the enrolment (so already used)."""

    def code(self, at: float | None = None) -> str:
        """The TOTP code at Unix time ``at`` (default: now)."""
        totp = pyotp.TOTP(self.secret)
        return totp.now() if at is None else totp.at(at)


async def enable_mfa(client: Client, headers: dict[str, str], at: float | None = None) -> Mfa:
    """Enrol TOTP and confirm it with the code of Unix time ``at`` (default: now), through
    the API."""
    response = await client.post(f"{API}/auth/mfa/totp", headers=headers)
    assert response.status_code == 200, response.text
    secret = response.json()["secret"]
    code = pyotp.TOTP(secret).now() if at is None else pyotp.TOTP(secret).at(at)
    response = await client.post(
        f"{API}/auth/mfa/totp/confirm", json={"code": code}, headers=headers
    )
    assert response.status_code == 200, response.text
    codes = response.json()["recovery_codes"]
    return Mfa(secret=secret, recovery_codes=codes, confirm_code=code)
