"""Server-side request forgery defence for webhook URLs (OWASP ASVS 12.6.1, OWASP SSRF
prevention cheat sheet).

A URL is refused at creation when its host is ``localhost`` or a literal address of a
forbidden kind, in any spelling the operating system accepts: the host is parsed the way a
connection would parse it (``getaddrinfo`` with ``AI_NUMERICHOST``, i.e. ``inet_aton``
rules for IPv4), so ``127.1``, ``2130706433``, ``0x7f000001``, ``017700000001``,
``0177.0.0.1``, ``0x7f.1``, ``0`` and ``[::ffff:127.0.0.1]`` are all recognised as the
loopback or unspecified addresses they are. At every delivery and every redirect the host
is resolved (``getaddrinfo``, in a thread) and refused if ANY of its addresses is loopback,
link-local, private, shared, reserved, multicast or unspecified (IPv4-mapped, 6to4 and
NAT64 IPv6 addresses are judged as the IPv4 address they carry too). The connection then
goes to the checked address itself, so a second DNS answer cannot swap in another one (DNS
rebinding).
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


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries: IPv4-mapped, 6to4 or NAT64 (RFC 4291,
    3056, 6052), so that each is judged as the IPv4 address it reaches."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def forbidden(ip: IPAddress) -> bool:
    """True for every address that is not a public unicast one (an IPv6 address carrying
    an IPv4 one is judged by both)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None and forbidden(embedded):
            return True
    return (
        ip.is_loopback
        or ip.is_link_local
        or ip.is_private
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or not ip.is_global
    )


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
        if any(ch.isspace() for ch in host):
            raise _refuse("The URL's host is not valid.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, host, port, path


def _literal(host: str) -> IPAddress | None:
    """The address ``host`` spells, if it is a numeric address in any form the system's
    resolver accepts (``getaddrinfo`` with ``AI_NUMERICHOST``: no DNS query, so it is
    instant), else None for a host name."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(bare, None, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError, ValueError):
        return None
    return ipaddress.ip_address(str(infos[0][4][0]).split("%", 1)[0])


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
