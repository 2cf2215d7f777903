"""Who is the client: the peer address, or the address a trusted proxy forwarded.

``X-Forwarded-For`` is believed only when the direct peer is one of the configured trusted
proxies (``EMPORIUM_TRUSTED_PROXIES``, addresses or CIDR networks); the header is then read
right to left, skipping trusted hops, and the first untrusted address is the client. A client
can prepend anything to the header, but cannot forge what the proxies appended after it
(the header is client-controlled, as RFC 7239's security considerations warn). With no
trusted proxy configured the header is ignored.

The result is computed once per request by the hardening middleware, stored in
``scope["state"]["client_ip"]`` and bound to the log context as ``client_ip``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from litestar.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ProxyTrust:
    """The trusted proxies: a set of networks, checked per address."""

    def __init__(self, proxies: Iterable[str]) -> None:
        """Parse ``proxies`` (``"10.0.0.1"``, ``"10.0.0.0/8"``, ``"::1"``).

        Raises ValueError for an entry that is neither an address nor a network.
        """
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(p.strip(), strict=False) for p in proxies if p.strip()
        )

    def trusts(self, address: str) -> bool:
        """True when ``address`` is inside one of the trusted networks."""
        if not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)


def _forwarded_for(scope: Scope) -> list[str]:
    """Every address of every ``X-Forwarded-For`` header, in order (left to right)."""
    hops: list[str] = []
    for name, value in scope["headers"]:
        if name == b"x-forwarded-for":
            hops.extend(h.strip() for h in value.decode("latin-1").split(","))
    return [h for h in hops if h]


def _forwarded_proto(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-forwarded-proto":
            proto = value.decode("latin-1").split(",")[-1].strip().lower()
            return proto if proto in ("http", "https") else None
    return None


def resolve(scope: Scope, trust: ProxyTrust) -> tuple[str | None, str]:
    """``(client address, scheme)`` of a request.

    The address is None when the server did not name a peer (some test transports); the
    scheme is ``scope["scheme"]`` or, behind a trusted proxy, its ``X-Forwarded-Proto``.
    """
    client = scope.get("client")
    peer: str | None = client[0] if client else None
    scheme = str(scope.get("scheme", "http"))
    if peer is None or not trust.trusts(peer):
        return peer, scheme
    scheme = _forwarded_proto(scope) or scheme
    address = peer
    for hop in reversed(_forwarded_for(scope)):
        address = hop
        if not trust.trusts(hop):
            break
    return _canonical(address), scheme


def _canonical(address: str) -> str:
    """``address`` in canonical form (so ``::FFFF:1.2.3.4`` and ``1.2.3.4`` key alike);
    anything that is not an address (a garbled header) is kept as sent, bounded in length."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def client_ip(connection: Any) -> str | None:
    """The client address of a request or connection, as resolved by the middleware
    (falls back to the direct peer when the middleware did not run)."""
    state = connection.scope.get("state") or {}
    if "client_ip" in state:
        resolved: str | None = state["client_ip"]
        return resolved
    client = connection.scope.get("client")
    return client[0] if client else None
