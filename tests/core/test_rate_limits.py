"""Rate limits, attacked: password guessing, mass registration, a flood from one client,
and the usual tricks to slip past (a forged X-Forwarded-For, rotating addresses)."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from accounts.support import API, PASSWORD, new_email, register
from core.conftest import Serve
from emporium.core.config import Settings
from emporium.core.http.ratelimit import RateLimiter, rate_limit
from factories import assert_problem

LOGIN = f"{API}/auth/login"
OFF = ""


def assert_throttled(response: object, limit: int) -> int:
    """A 429 problem with its headers; returns Retry-After (seconds)."""
    assert_problem(response, 429, "rate_limited")
    headers = response.headers  # type: ignore[attr-defined]
    retry_after = int(headers["retry-after"])
    assert 0 < retry_after <= 3600
    assert headers["ratelimit-limit"] == str(limit)
    assert headers["ratelimit-remaining"] == "0"
    assert 0 < int(headers["ratelimit-reset"]) <= 3600
    return retry_after


async def test_password_guessing_from_one_address_is_throttled(serve: Serve) -> None:
    """After the login limit, even the right password is refused until the window ends,
    and the refusal is logged as a security event with the client address."""
    # The account's own brute-force throttle (accounts.throttle) is set aside here, so that
    # only the per-address rate limit is at work.
    throttle = {"login_delay_after_failures": 100, "login_lock_after_failures": 100}
    async with serve(rate_limit_login="3/minute", **throttle) as peer:
        attacker = peer("198.51.100.66")
        email = new_email()
        await register(attacker, email)  # type: ignore[arg-type]
        for guess in range(3):
            response = await attacker.post(LOGIN, json={"email": email, "password": f"g{guess}"})
            assert response.status_code == 401
            assert response.headers["ratelimit-remaining"] == str(2 - guess)
        with capture_logs() as logs:
            response = await attacker.post(LOGIN, json={"email": email, "password": PASSWORD})
        assert_throttled(response, 3)
        [event] = [e for e in logs if e["event"] == "excess_rate_limit_exceeded"]
        assert event == {
            "event": "excess_rate_limit_exceeded",
            "log_level": "warning",
            "policy": "login",
            "client_ip": "198.51.100.66",
            "user_id": None,
        }
        # Forging X-Forwarded-For does not make a new client of the attacker...
        response = await attacker.post(
            LOGIN,
            json={"email": email, "password": PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.1"},
        )
        assert_throttled(response, 3)
        # ... while another client is not affected.
        response = await peer("198.51.100.67").post(
            LOGIN, json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 200


async def test_guessing_one_account_from_many_addresses_is_throttled(serve: Serve) -> None:
    """Rotating addresses (a botnet) does not buy more guesses at one account."""
    async with serve(rate_limit_login="100/minute", rate_limit_login_account="4/minute") as peer:
        email = new_email()
        await register(peer("198.51.100.1"), email)  # type: ignore[arg-type]
        for n in range(4):
            response = await peer(f"203.0.113.{n + 1}").post(
                LOGIN, json={"email": email, "password": "wrong guess"}
            )
            assert response.status_code == 401
        victim_login = {"email": email.upper(), "password": PASSWORD}  # same account
        assert_throttled(await peer("203.0.113.99").post(LOGIN, json=victim_login), 4)
        other = await peer("203.0.113.99").post(LOGIN, json={"email": new_email(), "password": "x"})
        assert other.status_code == 401


async def test_mass_registration_is_throttled(serve: Serve) -> None:
    """Account farming from one address stops at the register limit."""
    async with serve(rate_limit_register="2/hour") as peer:
        farm = peer("198.51.100.5")
        for _ in range(2):
            await register(farm)  # type: ignore[arg-type]
        body = {"email": new_email(), "password": PASSWORD}
        response = await farm.post(f"{API}/auth/register", json=body)
        assert 60 < assert_throttled(response, 2) <= 3600


async def test_a_flood_from_one_client_gets_429_before_any_work(serve: Serve) -> None:
    """The general per-client limit covers every API route; health probes are exempt."""
    async with serve(rate_limit_general="5/minute") as peer:
        flood = peer("198.51.100.9")
        for n in range(5):
            response = await flood.get(f"{API}/products")
            assert response.status_code == 200
            assert response.headers["ratelimit-remaining"] == str(4 - n)
        with capture_logs() as logs:
            response = await flood.get(f"{API}/categories")
        assert_throttled(response, 5)
        assert "x-request-id" in response.headers
        [event] = [e for e in logs if e["event"] == "excess_rate_limit_exceeded"]
        assert (event["policy"], event["client_ip"]) == ("general", "198.51.100.9")
        assert (await flood.get("/healthz")).status_code == 200
        assert (await peer("198.51.100.10").get(f"{API}/products")).status_code == 200


async def test_a_policy_set_empty_is_off(serve: Serve) -> None:
    """``EMPORIUM_RATE_LIMIT_GENERAL=""`` turns the general limit off (no headers)."""
    async with serve(rate_limit_general=OFF) as peer:
        client = peer("198.51.100.9")
        for _ in range(3):
            response = await client.get("/healthz")
        response = await client.get(f"{API}/products")
        assert response.status_code == 200
        assert "ratelimit-limit" not in response.headers


def test_malformed_limits_are_refused_at_start() -> None:
    """A typo in a limit is a start-up error naming the setting, not an open door."""
    with pytest.raises(ValueError, match="EMPORIUM_RATE_LIMIT_LOGIN"):
        Settings(rate_limit_login="10 per fortnight")


def test_a_route_policy_without_a_setting_is_refused_at_start() -> None:
    """``rate_limit("typo")`` on a route fails when the app is built, not silently later."""
    rate_limit("no_such_policy")
    try:
        with pytest.raises(ValueError, match="no_such_policy"):
            RateLimiter(Settings().rate_limit_policies())
    finally:
        from emporium.core.http import ratelimit

        ratelimit._USED_POLICIES.discard("no_such_policy")


async def test_validation_failures_are_logged_without_the_input(serve: Serve) -> None:
    """A 422 leaves an ``input_validation_fail`` security event, never the values sent."""
    async with serve() as peer:
        client = peer("198.51.100.3")
        secret = "Sup3r-secret-attempt-value"
        with capture_logs() as logs:
            response = await client.post(
                f"{API}/auth/register", json={"email": "not-an-email", "password": secret}
            )
        assert response.status_code == 422
        assert [e for e in logs if e["event"] == "input_validation_fail"] == [
            {
                "event": "input_validation_fail",
                "log_level": "warning",
                "method": "POST",
                "path": f"{API}/auth/register",
                "user_id": None,
                "client_ip": "198.51.100.3",
            }
        ]
        assert secret not in repr(logs)
        assert "not-an-email" not in repr(logs)


async def test_memory_counters_expire_and_are_reclaimed() -> None:
    """Without Redis: a window's end restores the budget, and the counters of clients gone
    quiet are dropped from memory (the sweep is paced, not skipped)."""
    limiter = RateLimiter({**Settings().rate_limit_policies(), "general": "1/second"})
    verdicts = [await limiter.hit("general", "ip:a") for _ in range(2)]
    assert [v.allowed if v else None for v in verdicts] == [True, False]
    for n in range(50):
        await limiter.hit("general", f"ip:{n}")
    await asyncio.sleep(1.2)
    again = await limiter.hit("general", "ip:a")
    assert again is not None
    assert again.allowed
    await asyncio.sleep(0.05)  # let the sweep run
    assert len(limiter.storage.storage) == 1  # type: ignore[attr-defined]


async def test_rotating_ipv6_addresses_inside_one_network_buys_nothing(serve: Serve) -> None:
    """An IPv6 client holds a whole /64: every address in it shares one budget."""
    async with serve(rate_limit_register="2/hour") as peer:
        for n in range(2):
            await register(peer(f"2001:db8:1:2::{n + 1}"))  # type: ignore[arg-type]
        body = {"email": new_email(), "password": PASSWORD}
        response = await peer("2001:db8:1:2:ffff::9").post(f"{API}/auth/register", json=body)
        assert_throttled(response, 2)
        await register(peer("2001:db8:1:3::1"))  # type: ignore[arg-type]
