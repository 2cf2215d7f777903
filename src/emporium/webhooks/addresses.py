"""Server-side request forgery defence for webhook URLs (OWASP ASVS 12.6.1, OWASP SSRF
prevention cheat sheet).

A URL is refused at creation when its host is ``localhost`` or a literal address of a
forbidden kind. At every delivery and every redirect the host is resolved
(``getaddrinfo``, in a thread) and refused if ANY of its addresses is loopback, link-local,
private, shared, reserved, multicast or unspecified (IPv4-mapped IPv6 addresses are judged
as the IPv4 address they carry). The connection then goes to the checked address itself,
so a second DNS answer cannot swap in another one (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from emporium.core.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]


class AddressRefused(InvalidInput):
    """The URL's host is, or resolves to, an address webhooks may not reach (422)."""

    code = "webhook_url_refused"


@dataclass(frozen=True)
class Target:
    """A URL split for a pinned connection: connect to ``address``, name ``host``."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


def forbidden(ip: IPAddress) -> bool:
    """True for every address that is not a public unicast one."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_reserved
        or ip.is_multicast or ip.is_unspecified or not ip.is_global
    )  # fmt: skip


def _refuse(reason: str) -> AddressRefused:
    return AddressRefused(reason, errors=[{"loc": ["body", "url"], "msg": reason}])


def split_url(url: str, *, allow_private: bool) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path?query)`` of an http(s) URL. Raises AddressRefused for
    another scheme, credentials in the URL, ``localhost`` or a forbidden literal address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refuse("The URL must be http:// or https:// with a host.")
    if parts.username is not None or parts.password is not None:
        raise _refuse("The URL must not carry credentials.")
    host = parts.hostname.rstrip(".").lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise _refuse("The URL's port is not valid.") from None
    if not allow_private:
        if host == "localhost" or host.endswith(".localhost"):
            raise _refuse("Webhooks may not target localhost.")
        literal = _literal(host)
        if literal is not None and forbidden(literal):
            raise _refuse("Webhooks may not target loopback, link-local or private addresses.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, host, port, path


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (``getaddrinfo`` in a thread: it blocks)."""
    infos = await asyncio.to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]).split("%", 1)[0] for info in infos]


async def resolve_target(url: str, *, allow_private: bool, resolver: Resolver) -> Target:
    """Check ``url`` and choose the address to connect to. Raises AddressRefused when the
    host does not resolve or any of its addresses is forbidden."""
    scheme, host, port, path = split_url(url, allow_private=allow_private)
    literal = _literal(host)
    if literal is not None:
        return Target(scheme, host, port, path, str(literal))
    try:
        addresses = await resolver(host, port)
    except OSError:
        raise _refuse(f"The host {host} does not resolve.") from None
    ips = [ipaddress.ip_address(a) for a in addresses]
    if not ips:
        raise _refuse(f"The host {host} does not resolve.")
    if not allow_private and any(forbidden(ip) for ip in ips):
        raise _refuse(f"The host {host} resolves to a loopback, link-local or private address.")
    return Target(scheme, host, port, path, str(ips[0]))
