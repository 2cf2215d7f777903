"""Brute force against sign-in: failures slow an account down, then lock it for a while,
per account and per client address, and the answers never tell an attacker whether the
account exists or is locked. The clock is moved, never slept on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.conftest import MovedClock
from accounts.support import API, PASSWORD, Client, Json, enable_mfa, login, new_email, sign_up
from emporium.accounts.models import LoginThrottle
from emporium.app import create_app
from emporium.core.config import Settings

WRONG = "Definitely not the 1 password"


async def _attempt(client: Client, email: str, password: str) -> tuple[int, Json]:
    response = await client.post(f"{API}/auth/login", json={"email": email, "password": password})
    return response.status_code, response.json()


def _refused(answer: tuple[int, Json]) -> Json:
    status, body = answer
    assert (status, body["code"]) == (401, "invalid_credentials"), body
    return body


async def test_failures_slow_then_lock_the_account(client: Client, clock: MovedClock) -> None:
    """After 3 failures the right password is refused until a short delay has passed; a
    success clears the count; after 10 failures the account locks for 15 minutes (even the
    right password is refused, with the very same answer), then opens again by itself."""
    account = await sign_up(client)
    for _ in range(3):
        wrong = _refused(await _attempt(client, account.email, WRONG))
    assert _refused(await _attempt(client, account.email, PASSWORD)) == wrong
    clock.advance(1)
    assert (await _attempt(client, account.email, PASSWORD))[0] == 200

    for _ in range(10):
        clock.advance(31)  # past the longest delay: every failure is really checked
        _refused(await _attempt(client, account.email, WRONG))
    for _ in range(3):
        clock.advance(5 * 60 - 1)
        assert _refused(await _attempt(client, account.email, PASSWORD)) == wrong
    clock.advance(3)
    assert (await _attempt(client, account.email, PASSWORD))[0] == 200


async def test_an_unknown_account_is_throttled_the_same(client: Client, clock: MovedClock) -> None:
    """An e-mail without an account answers exactly like a real one at every stage, so an
    attacker learns neither whether it exists nor whether it is locked."""
    account = await sign_up(client)
    ghost = new_email("ghost")
    for attempt in range(12):
        clock.advance(31 if attempt else 0)
        real = await _attempt(client, account.email, WRONG)
        assert await _attempt(client, ghost, WRONG) == real
    assert _refused(await _attempt(client, account.email, PASSWORD))


@pytest.mark.slow
async def test_an_hour_of_guessing_stays_below_100_checked_passwords(
    client: Client, session: AsyncSession, clock: MovedClock
) -> None:
    """An attacker guessing every minute for an hour has fewer than 100 of the guesses
    actually checked (NIST SP 800-63B 5.2.2), and the lock is never permanent."""
    account = await sign_up(client)
    for _ in range(60):
        clock.advance(60)
        _refused(await _attempt(client, account.email, WRONG))
    counted = await session.scalar(
        select(LoginThrottle.failures).where(LoginThrottle.key.startswith("acct:"))
    )
    assert counted is not None
    assert 10 <= counted < 100
    clock.advance(15 * 60)
    assert (await _attempt(client, account.email, PASSWORD))[0] == 200


@pytest.fixture
async def strict_client(settings: Settings, clock: MovedClock) -> AsyncIterator[Client]:
    """A client of an app that locks a client address after 10 failures."""
    strict = settings.model_copy(update={"login_ip_lock_after_failures": 10})
    async with AsyncTestClient(app=create_app(strict, clock=clock)) as test_client:
        yield test_client


async def test_failures_from_one_address_lock_that_address(
    strict_client: Client, clock: MovedClock
) -> None:
    """Guessing across many accounts from one address (credential stuffing) locks the
    address: even a right password from there is refused until the lock ends."""
    account = await sign_up(strict_client)
    for _ in range(10):
        _refused(await _attempt(strict_client, new_email("victim"), WRONG))
    _refused(await _attempt(strict_client, account.email, PASSWORD))
    clock.advance(15 * 60 + 1)
    assert (await _attempt(strict_client, account.email, PASSWORD))[0] == 200


async def test_wrong_mfa_codes_count_as_failures(client: Client, clock: MovedClock) -> None:
    """Guessing the second factor is throttled too: wrong codes on fresh challenges lock
    the account, and then even the right code is refused."""
    account = await sign_up(client)
    mfa = await enable_mfa(client, account.headers)
    for _ in range(10):
        clock.advance(31)
        token = (await login(client, account.email))["mfa_token"]
        response = await client.post(
            f"{API}/auth/login/mfa", json={"mfa_token": token, "code": "000000"}
        )
        assert response.json()["code"] == "invalid_mfa_code"
    clock.advance(31)
    _refused(await _attempt(client, account.email, PASSWORD))
    clock.advance(15 * 60)
    token = (await login(client, account.email))["mfa_token"]
    response = await client.post(
        f"{API}/auth/login/mfa",
        json={"mfa_token": token, "code": mfa.code(at=clock.timestamp())},
    )
    assert response.status_code == 200, response.text


async def test_a_stolen_session_cannot_guess_its_way_to_disabling_mfa(
    client: Client, clock: MovedClock
) -> None:
    """Wrong codes or passwords offered to turn MFA off count against the account: after
    the lock threshold even the right code is refused and MFA stays on."""
    account = await sign_up(client)
    mfa = await enable_mfa(client, account.headers)
    url = f"{API}/auth/mfa/totp"
    for attempt in range(10):
        clock.advance(31)
        body = {"code": "000000"} if attempt % 2 else {"password": WRONG}
        response = await client.request("DELETE", url, json=body, headers=account.headers)
        assert response.status_code in (401, 422), response.text
    clock.advance(31)
    right = {"code": mfa.code(at=clock.timestamp())}
    response = await client.request("DELETE", url, json=right, headers=account.headers)
    assert response.json()["code"] == "invalid_mfa_code"
    assert (await client.get(f"{API}/users/me", headers=account.headers)).json()["mfa_enabled"]
