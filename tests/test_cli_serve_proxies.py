"""``emporium serve`` believes ``X-Forwarded-For`` only from ``EMPORIUM_TRUSTED_PROXIES``.

uvicorn's own proxy handling (on by default, trusting 127.0.0.1) would rewrite the client
address before the application sees it: any client behind a local proxy, sidecar or tunnel
could then pick its own address. These tests go through a real ``emporium serve`` process,
reached from loopback, because the ASGI app alone never sees what uvicorn did.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from servers import server_env, servers, upgrade_database

PASSWORD = "Quartz lantern drifts over 9 fjords"
FORGED = "203.0.113.9"
GENERAL_LIMIT = 8


def _session_ip(base: str, forwarded_for: str) -> str | None:
    """Register, sign in with ``X-Forwarded-For``, and read the address the session records."""
    api = f"{base}/api/v1"
    email = "proxy.test@example.com"
    body = {"email": email, "password": PASSWORD}
    headers = {"X-Forwarded-For": forwarded_for}
    assert httpx.post(f"{api}/auth/register", json=body, headers=headers).status_code == 201
    tokens = httpx.post(f"{api}/auth/login", json=body, headers=headers).json()
    auth = {"Authorization": f"Bearer {tokens['access_token']}", **headers}
    listed = httpx.get(f"{api}/auth/sessions", headers=auth)
    assert listed.status_code == 200, listed.text
    ip: str | None = listed.json()[0]["ip"]
    return ip


def _refusals(base: str, count: int) -> int:
    """Send ``count`` requests, each claiming a different address; return how many got 429."""
    statuses = [
        httpx.get(
            f"{base}/api/v1/categories", headers={"X-Forwarded-For": f"198.51.100.{n}"}
        ).status_code
        for n in range(1, count + 1)
    ]
    assert set(statuses) <= {200, 429}, statuses
    return statuses.count(429)


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = server_env(
        f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}",
        tmp_path / "keys.json",
        rate_limit_general=f"{GENERAL_LIMIT}/minute",
        **settings,
    )
    upgrade_database(env, tmp_path)
    return env


@pytest.mark.slow
def test_loopback_client_cannot_forge_its_address(tmp_path: Path) -> None:
    """With no trusted proxy, a loopback client's ``X-Forwarded-For`` is ignored: its
    session records 127.0.0.1 and every claimed address shares one per-address budget."""
    with servers(1, _env(tmp_path), tmp_path) as (base,):
        assert _session_ip(base, FORGED) == "127.0.0.1"
        assert _refusals(base, GENERAL_LIMIT + 4) >= 4


@pytest.mark.slow
def test_trusted_proxy_forwards_the_client_address(tmp_path: Path) -> None:
    """With ``EMPORIUM_TRUSTED_PROXIES=127.0.0.1`` the header is believed: the session
    records the forwarded address and each forwarded address has its own budget."""
    env = _env(tmp_path, trusted_proxies="127.0.0.1")
    with servers(1, env, tmp_path) as (base,):
        assert _session_ip(base, FORGED) == FORGED
        assert _refusals(base, GENERAL_LIMIT + 4) == 0


@pytest.mark.slow
def test_guest_cart_writes_are_counted_per_forwarded_address(tmp_path: Path) -> None:
    """Behind the trusted proxy a guest's cart writes count against its forwarded address:
    over ``EMPORIUM_RATE_LIMIT_CART`` it gets 429 with ``Retry-After`` and its cart keeps
    what it had, while a guest at another forwarded address still writes."""
    env = _env(tmp_path, trusted_proxies="127.0.0.1", rate_limit_cart="2/minute")
    with servers(1, env, tmp_path) as (base,):
        api = f"{base}/api/v1"
        guest = {"X-Forwarded-For": "198.51.100.40"}
        created = httpx.post(f"{api}/carts", json={}, headers=guest)
        assert created.status_code == 201, created.text
        url = f"{api}/carts/{created.json()['id']}"
        guest |= {"Cart-Token": created.json()["token"]}
        first = httpx.patch(url, json={"email": "first@example.com"}, headers=guest)
        assert first.status_code == 200, first.text
        refused = httpx.patch(url, json={"email": "second@example.com"}, headers=guest)
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["retry-after"]) > 0
        assert httpx.get(url, headers=guest).json()["email"] == "first@example.com"
        other = httpx.post(f"{api}/carts", json={}, headers={"X-Forwarded-For": "198.51.100.41"})
        assert other.status_code == 201, other.text
