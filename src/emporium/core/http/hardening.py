"""Baseline HTTP hardening, as two pure-ASGI layers around the application.

``SecurityHeaders`` (outermost) resolves the client address once (``core.http.clientip``), binds
it to the log context, and gives every response the security headers: ``nosniff``,
``Referrer-Policy``, a ``Content-Security-Policy`` with ``frame-ancestors 'none'``, HSTS when
served over TLS, and the ``RateLimit-*`` headers of the request's tightest rate-limit verdict.
It also logs ``input_validation_fail`` for every 422 (never the input itself).

``RequestGate`` (inside ``ConventionsMiddleware``, so its refusals carry ``X-Request-ID``)
refuses ``TRACE``/``CONNECT`` (405), credentials in the query string (400
``credentials_in_url``: URLs end up in logs, histories and ``Referer``), and applies the
``general`` per-client rate limit (429).

OWASP ASVS 14.4 (HTTP security headers), 14.5.1 (unused methods), 3.1.1 / API2:2023 (no
tokens in URLs), API4:2023 (resource consumption).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from emporium.core.errors import problem_messages
from emporium.core.http.clientip import ProxyTrust, resolve
from emporium.core.http.ratelimit import (
    RateLimiter,
    Verdict,
    address_key,
    log_excess,
    record,
    security_log,
)

_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
_API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
# The viewer (core.http.docs_viewer) loads only its own scripts and styles, from this origin. Inline
# style attributes stay allowed (Swagger UI sets some); no inline script, nothing external.
_DOCS_CSP = (
    b"content-security-policy",
    b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    b"form-action 'self'; frame-ancestors 'none'",
)
_HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
# The headers every response gets, by (documentation viewer?, served over HTTPS?).
_EXTRA = {
    (docs, https): (*_COMMON, _DOCS_CSP if docs else _API_CSP, *([_HSTS] if https else []))
    for docs in (False, True)
    for https in (False, True)
}
_REFUSED_METHODS = frozenset({"TRACE", "CONNECT", "TRACK"})
_CREDENTIAL_PARAMS = frozenset(
    {
        "access_token",
        "refresh_token",
        "id_token",
        "token",
        "mfa_token",
        "jwt",
        "bearer",
        "api_key",
        "apikey",
        "x_api_key",
        "authorization",
        "auth",
        "password",
        "session",
        "sessionid",
        "session_id",
    }
)
_UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class SecurityHeaders:
    """Outermost layer: client address, security and rate-limit headers, 422 logging."""

    def __init__(self, app: ASGIApp, *, trust: ProxyTrust) -> None:
        self.app = app
        self.trust = trust

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call (HTTP requests only; anything else passes through)."""
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        address, scheme = resolve(scope, self.trust)
        state = scope.setdefault("state", {})
        state["client_ip"] = address
        path = scope["path"]
        extra = _EXTRA[path.startswith("/docs"), scheme == "https"]
        own_policy = path.startswith("/admin")

        async def send_hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                verdict: Verdict | None = state.get("rate_limit")
                headers = [*message.get("headers", ()), *extra]
                if own_policy:  # core.http.admin_ui sets its own (nonce) policy: keep that one
                    headers = _without_second_csp(headers)
                if verdict is not None:
                    headers.extend(verdict.headers())
                message["headers"] = headers
                if message["status"] == 422:
                    _log_validation_failure(scope)
            await send(message)

        logged = structlog.contextvars.bind_contextvars(client_ip=address)
        try:
            await self.app(scope, receive, send_hardened)
        finally:
            structlog.contextvars.reset_contextvars(**logged)


def _without_second_csp(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` keeping only the first Content-Security-Policy (a browser would enforce
    every one it gets, so two would add up to the stricter)."""
    kept: list[tuple[bytes, bytes]] = []
    seen = False
    for name, value in headers:
        if name.lower() == b"content-security-policy":
            if seen:
                continue
            seen = True
        kept.append((name, value))
    return kept


def _log_validation_failure(scope: Scope) -> None:
    state = scope.get("state", {})
    user_id = getattr(state.get("identity"), "user_id", None)
    security_log().warning(
        "input_validation_fail",
        method=scope.get("method"),
        path=scope["path"],
        user_id=None if user_id is None else str(user_id),
        client_ip=state.get("client_ip"),
    )


class RequestGate:
    """Refuses unsafe methods and credentials in URLs; applies the general rate limit."""

    def __init__(self, app: ASGIApp, *, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call (HTTP requests only; anything else passes through)."""
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        refusal = _refusal(scope)
        if refusal is None and self.limiter.enabled("general"):
            refusal = await self._general_limit(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        for message in refusal:
            await send(message)

    async def _general_limit(self, scope: Scope) -> tuple[Message, Message] | None:
        key = address_key(scope.get("state", {}).get("client_ip"))
        if key is None or scope["path"] in _UNLIMITED_PATHS:
            return None
        verdict = await self.limiter.hit("general", key)
        if verdict is None:
            return None
        record(scope, verdict)
        if verdict.allowed:
            return None
        log_excess(scope, "general")
        return problem_messages(
            429,
            "rate_limited",
            "Too many requests",
            f"Too many requests; retry in {verdict.reset_seconds} s.",
        )


def _refusal(scope: HTTPScope) -> tuple[Message, Message] | None:
    method = scope["method"]
    if method in _REFUSED_METHODS:
        return problem_messages(
            405, "method_not_allowed", "Method Not Allowed", f"{method} is not served."
        )
    query = scope["query_string"]
    if query and _has_credentials(query):
        return problem_messages(
            400,
            "credentials_in_url",
            "Bad request",
            "Credentials are never accepted in a URL; send 'Authorization: Bearer ...' "
            "or 'X-API-Key'.",
        )
    return None


def _has_credentials(query: bytes) -> bool:
    """True when a query parameter is named like a credential (``?access_token=...``)."""
    for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name.strip().lower().replace("-", "_") in _CREDENTIAL_PARAMS:
            return True
    return False
