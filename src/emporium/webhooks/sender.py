"""One signed HTTP delivery attempt: pinned to checked addresses, redirects followed by hand.

Headers follow the Standard Webhooks specification (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``), computed by its reference library ``standardwebhooks``. The
attempt as a whole (every redirect included) is bounded by ``webhooks_timeout_seconds``.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin

import httpx
from standardwebhooks import Webhook

from emporium.webhooks.addresses import AddressRefused, Resolver, Target, resolve_target

REDIRECTS = {301, 302, 303, 307, 308}


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: a status code, or an error; and how long it took."""

    status_code: int | None
    duration_ms: int
    error: str | None

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return self.status_code is not None and 200 <= self.status_code < 300


def signed_headers(secret: str, msg_id: str, body: str, now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of ``body`` sent at ``now``."""
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=now, data=body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": "Emporium-Webhooks/1",
    }


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default TLS context (certifi's CA bundle), built once per process: loading the
    bundle costs tens of milliseconds of CPU, and every attempt opens a new client."""
    return httpx.create_ssl_context()


def _pinned(target: Target) -> tuple[str, dict[str, str], dict[str, str]]:
    """URL to the checked address, with the original Host header and TLS server name."""
    ip = f"[{target.address}]" if ":" in target.address else target.address
    default = 443 if target.scheme == "https" else 80
    host = target.host if target.port == default else f"{target.host}:{target.port}"
    url = f"{target.scheme}://{ip}:{target.port}{target.path}"
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return url, {"host": host}, extensions


async def _post(
    url: str,
    body: str,
    headers: dict[str, str],
    *,
    allow_private: bool,
    max_redirects: int,
    resolver: Resolver,
    transport: httpx.AsyncBaseTransport | None,
    limit: float,
) -> int:
    async with httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        transport=transport,
        timeout=limit,
        verify=_tls(),
    ) as client:
        for _hop in range(max_redirects + 1):
            target = await resolve_target(url, allow_private=allow_private, resolver=resolver)
            pinned, host, extensions = _pinned(target)
            response = await client.post(
                pinned, content=body, headers={**headers, **host}, extensions=extensions
            )
            location = response.headers.get("location")
            if response.status_code not in REDIRECTS or not location:
                return response.status_code
            url = urljoin(url, location)
    raise httpx.TooManyRedirects(f"more than {max_redirects} redirects")


async def send(
    url: str,
    body: str,
    headers: dict[str, str],
    *,
    allow_private: bool,
    time_limit: float,
    max_redirects: int,
    resolver: Resolver,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Outcome:
    """POST ``body`` to ``url`` within ``time_limit`` seconds (redirects included); never
    raises for network trouble, refusals or timeouts (they come back as ``Outcome.error``)."""
    started = time.monotonic()
    status, error = None, None
    try:
        async with asyncio.timeout(time_limit):
            status = await _post(
                url,
                body,
                headers,
                allow_private=allow_private,
                max_redirects=max_redirects,
                resolver=resolver,
                transport=transport,
                limit=time_limit,
            )
    except AddressRefused as exc:
        error = f"refused: {exc.detail}"
    except TimeoutError:
        error = f"timed out after {time_limit:g} s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    duration_ms = int((time.monotonic() - started) * 1000)
    return Outcome(status, duration_ms, error)
