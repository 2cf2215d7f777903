"""The client address: the peer, or what trusted proxies forwarded, never what a client
wrote into ``X-Forwarded-For`` by itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from accounts.support import API, sign_up
from core.conftest import Peer, Serve
from emporium.core.config import Settings
from emporium.core.http.clientip import ProxyTrust, resolve


def _scope(peer: str | None, *headers: tuple[str, str], scheme: str = "http") -> Any:
    return {
        "type": "http",
        "scheme": scheme,
        "client": None if peer is None else (peer, 40000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
    }


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    """A client cannot pick its own address by sending X-Forwarded-For."""
    scope = _scope("203.0.113.7", ("X-Forwarded-For", "198.51.100.1"))
    assert resolve(scope, ProxyTrust([])) == ("203.0.113.7", "http")


def test_an_untrusted_peer_cannot_forward() -> None:
    """Only the configured proxies may speak for someone else."""
    scope = _scope("203.0.113.7", ("X-Forwarded-For", "198.51.100.1"))
    assert resolve(scope, ProxyTrust(["10.0.0.0/8"]))[0] == "203.0.113.7"


def test_behind_proxies_the_rightmost_untrusted_hop_is_the_client() -> None:
    """What the client prepended (a forged first entry) is skipped; trusted hops too."""
    scope = _scope(
        "10.0.0.2",
        ("X-Forwarded-For", "1.1.1.1, 198.51.100.9"),
        ("X-Forwarded-For", "10.0.0.3"),
        ("X-Forwarded-Proto", "https"),
    )
    address, scheme = resolve(scope, ProxyTrust(["10.0.0.0/8"]))
    assert (address, scheme) == ("198.51.100.9", "https")


def test_a_proxy_without_header_is_the_client_and_mapped_addresses_are_canonical() -> None:
    """No header: the peer; an IPv4-mapped IPv6 hop counts as its IPv4 address."""
    trust = ProxyTrust(["127.0.0.1", "::1"])
    assert resolve(_scope("127.0.0.1"), trust)[0] == "127.0.0.1"
    scope = _scope("::1", ("X-Forwarded-For", "::ffff:198.51.100.4"))
    assert resolve(scope, trust)[0] == "198.51.100.4"
    assert resolve(_scope(None), trust) == (None, "http")


def test_malformed_trusted_proxies_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo in the setting is a start-up error, not a silently open door."""
    monkeypatch.setenv("EMPORIUM_TRUSTED_PROXIES", "10.0.0.0/33")
    with pytest.raises(ValueError, match="trusted_proxies"):
        Settings()


@pytest.fixture
async def peer(serve: Serve) -> AsyncIterator[Peer]:
    """Clients from chosen addresses, on an app that trusts 127.0.0.1 as its proxy."""
    async with serve() as make:
        yield make


async def test_sessions_record_the_forwarded_address(peer: Peer) -> None:
    """A session opened through the proxy records the client's address, not the proxy's."""
    proxy = peer("127.0.0.1")
    proxy.headers["X-Forwarded-For"] = "198.51.100.23"
    account = await sign_up(proxy)  # type: ignore[arg-type]
    response = await proxy.get(f"{API}/auth/sessions", headers=account.headers)
    assert [s["ip"] for s in response.json()] == ["198.51.100.23"]


async def test_metrics_are_not_opened_to_everyone_by_a_local_proxy(peer: Peer) -> None:
    """Behind a proxy on the same host, a remote caller is not a loopback client."""
    proxy = peer("127.0.0.1")
    response = await proxy.get("/metrics", headers={"X-Forwarded-For": "198.51.100.23"})
    assert response.status_code == 403
    assert (await proxy.get("/metrics")).status_code == 200
    forged = await peer("198.51.100.23").get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
    assert forged.status_code == 403
