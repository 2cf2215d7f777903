"""Tokens and sessions run out: access tokens after their lifetime, sessions after their
idle and absolute timeouts, shorter for staff. The clock is moved, never slept on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.support import (
    API,
    PASSWORD,
    Account,
    Client,
    assert_problem,
    bearer,
    login,
    new_email,
    sign_up,
)
from emporium.core.clock import MovableClock
from emporium.core.config import Settings

Clock = MovableClock


@pytest.fixture
def clock() -> MovableClock:
    """The clock of the test's app: session checks and token issuing follow it."""
    return MovableClock()


class Session:
    """One signed-in device that refreshes its tokens like an app would."""

    def __init__(self, client: Client, access_token: str, refresh_token: str) -> None:
        self.client = client
        self.access_token = access_token
        self.refresh_token = refresh_token

    async def refresh(self) -> int:
        """Refresh; the status (200 keeps the new pair)."""
        response = await self.client.post(
            f"{API}/auth/refresh", json={"refresh_token": self.refresh_token}
        )
        if response.status_code == 200:
            pair = response.json()
            self.access_token, self.refresh_token = pair["access_token"], pair["refresh_token"]
        else:
            assert_problem(response, response.status_code)
        return response.status_code

    async def me(self) -> int:
        """The status of GET /users/me with the current access token."""
        response = await self.client.get(f"{API}/users/me", headers=bearer(self.access_token))
        return response.status_code


def _session(client: Client, account: Account) -> Session:
    return Session(client, account.access_token, account.refresh_token)


async def test_access_token_expires_after_its_lifetime(
    client: Client, clock: Clock, settings: Settings
) -> None:
    """The access token works until expires_in seconds have passed, then answers 401
    invalid_token; a refresh gives a working one."""
    account = await sign_up(client)
    session = _session(client, account)
    lifetime = timedelta(minutes=settings.access_token_minutes)
    clock.advance(lifetime - timedelta(seconds=5))
    assert await session.me() == 200
    clock.advance(timedelta(seconds=10))
    response = await client.get(f"{API}/users/me", headers=account.headers)
    assert_problem(response, 401, "invalid_token")
    assert await session.refresh() == 200
    assert await session.me() == 200


async def test_customer_session_idle_and_absolute_timeouts(
    client: Client, clock: Clock, settings: Settings
) -> None:
    """A customer session survives a week of use between refreshes, ends after more idle
    time than the idle timeout, and ends at the absolute timeout however often it is used."""
    idle = timedelta(minutes=settings.customer_idle_timeout_minutes)
    absolute = timedelta(minutes=settings.customer_absolute_timeout_minutes)
    account = await sign_up(client)
    forgotten = _session(client, account)
    clock.advance(idle + timedelta(minutes=1))
    assert await forgotten.refresh() == 401

    pair = await login(client, account.email)
    busy = Session(client, pair["access_token"], pair["refresh_token"])
    step = idle - timedelta(hours=1)
    elapsed = timedelta()
    while elapsed + step < absolute:
        clock.advance(step)
        elapsed += step
        assert await busy.refresh() == 200, elapsed
        assert await busy.me() == 200
    clock.advance(absolute - elapsed + timedelta(minutes=1))
    assert await busy.refresh() == 401


async def _staff_account(client: Client, admin_headers: dict[str, str]) -> Session:
    email = new_email("staff")
    response = await client.post(
        f"{API}/users",
        json={"email": email, "password": PASSWORD, "roles": ["staff"]},
        headers=admin_headers,
    )
    assert response.status_code == 201, response.text
    pair = await login(client, email)
    return Session(client, pair["access_token"], pair["refresh_token"])


async def _keep_alive_until(session: Session, clock: Clock, end: timedelta, step: timedelta) -> int:
    """Refresh every ``step`` until ``end`` has passed; the status of the last refresh."""
    elapsed = timedelta()
    status = 200
    while elapsed < end and status == 200:
        clock.advance(step)
        elapsed += step
        status = await session.refresh()
    return status


@pytest.mark.slow
async def test_staff_sessions_are_shorter(
    client: Client, clock: Clock, settings: Settings, admin_headers: dict[str, str]
) -> None:
    """A staff session ends after the staff idle timeout (minutes, not days) and, even when
    used all along, after the staff absolute timeout."""
    idle = timedelta(minutes=settings.staff_idle_timeout_minutes)
    absolute = timedelta(minutes=settings.staff_absolute_timeout_minutes)
    forgotten = await _staff_account(client, admin_headers)
    staff = await _staff_account(client, admin_headers)
    customer = _session(client, await sign_up(client))
    clock.advance(idle - timedelta(minutes=10))
    assert await staff.refresh() == 200
    clock.advance(timedelta(minutes=11))
    assert await forgotten.refresh() == 401
    assert await customer.refresh() == 200
    assert await staff.refresh() == 200

    step = idle - timedelta(minutes=5)
    elapsed = idle + timedelta(minutes=1)
    assert await _keep_alive_until(staff, clock, absolute - step - elapsed, step) == 200
    clock.advance(step)
    assert await staff.refresh() == 401


async def test_promoted_customer_gets_staff_timeouts(
    client: Client, clock: Clock, settings: Settings, admin_headers: dict[str, str]
) -> None:
    """A customer promoted to staff keeps using the session already open, but from then on
    it is held to the staff timeouts: it cannot outlive a staff session."""
    idle = timedelta(minutes=settings.staff_idle_timeout_minutes)
    absolute = timedelta(minutes=settings.staff_absolute_timeout_minutes)
    account = await sign_up(client)
    response = await client.patch(
        f"{API}/users/{account.id}", json={"roles": ["staff"]}, headers=admin_headers
    )
    assert response.status_code == 200
    promoted = _session(client, account)
    assert await promoted.me() == 200

    step = idle - timedelta(minutes=5)
    status = await _keep_alive_until(promoted, clock, absolute + 2 * step, step)
    assert status == 401, "a staff session lived past the staff absolute timeout"
