"""ASGI middleware for the API's conventions: ``X-Request-ID``, JSON-only request bodies,
and no NUL characters in URLs (no database text type can hold them).

Pure ASGI (no per-request objects) because it runs on every request.
"""

from __future__ import annotations

import re
import time
from random import getrandbits
from typing import Any

import msgspec
import structlog
from litestar import Request
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from emporium.core.actor import close_request, open_request
from emporium.core.errors import (
    DomainError,
    InvalidInput,
    problem_messages,
)

_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
access_log = structlog.get_logger("emporium.access")


def _refusal(
    scope: HTTPScope, content_type: bytes, has_body: bool
) -> tuple[Message, Message] | None:
    """The answer to a request refused before routing, or None to let it through."""
    if b"%00" in scope["query_string"] or b"%00" in scope.get("raw_path", b""):
        return problem_messages(
            422, "validation_error", "Invalid input", "NUL characters are not allowed in URLs."
        )
    if scope["method"] in _BODY_METHODS and has_body and not _is_json(content_type):
        return problem_messages(
            415,
            "unsupported_media_type",
            "Unsupported Media Type",
            "Request bodies must be JSON (Content-Type: application/json).",
        )
    return None


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


class ConventionsMiddleware:
    """Give every response an ``X-Request-ID`` (echoing a sane client one) and refuse
    non-JSON request bodies with ``415`` problem+json."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call (HTTP requests only; anything else passes through)."""
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        http_scope = scope
        request_id, content_type, has_body = _read_headers(http_scope)
        http_scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode("ascii"))
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), header]
                if http_scope["method"] == "OPTIONS":
                    headers = _with_allow(http_scope, headers)
                message["headers"] = headers
            await send(message)

        method = http_scope["method"]
        logged = structlog.contextvars.bind_contextvars(request_id=request_id)
        actor = open_request(request_id)
        try:
            refusal = _refusal(http_scope, content_type, has_body)
            if refusal is not None:
                for message in refusal:
                    await send_with_id(message)
            else:
                await self.app(scope, receive, send_with_id)
            access_log.info(
                "http_request",
                method=method,
                path=http_scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
        finally:
            close_request(actor)
            structlog.contextvars.reset_contextvars(**logged)


def _with_allow(scope: HTTPScope, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Headers with ``Allow`` naming every method of the matched path. (Litestar's own
    OPTIONS answer names only the methods of the first handler registered on a path.)"""
    template = scope.get("path_template")
    methods = _methods_of(scope["app"]).get(template) if template else None
    if not methods:
        return headers
    return [(k, v) for k, v in headers if k.lower() != b"allow"] + [(b"allow", methods)]


_ALLOW_CACHE: dict[int, dict[str, bytes]] = {}
_PARAM_TYPE = re.compile(r"\{(\w+):[^}]+\}")  # "/p/{id:uuid}" is matched as "/p/{id}"


def _methods_of(app: Any) -> dict[str, bytes]:
    """Every route path of ``app`` with its methods, as an ``Allow`` value (computed once)."""
    cached = _ALLOW_CACHE.get(id(app))
    if cached is None:
        cached = {
            _PARAM_TYPE.sub(r"{\1}", route.path): ", ".join(sorted(route.methods)).encode()
            for route in app.routes
            if hasattr(route, "methods")
        }
        _ALLOW_CACHE[id(app)] = cached
    return cached


def _read_headers(scope: HTTPScope) -> tuple[str, bytes, bool]:
    """(request id, content type, whether a body follows) from the request headers."""
    request_id = ""
    content_type = b""
    has_body = False
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _SANE_REQUEST_ID.fullmatch(value):
            request_id = value.decode("ascii")
        elif name == b"content-type":
            content_type = value
        elif name == b"content-length":
            has_body = value.strip() not in (b"0", b"")
        elif name == b"transfer-encoding":
            has_body = True
    return request_id or new_request_id(), content_type, has_body


_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)


def new_request_id() -> str:
    """A version-4 UUID in hex, as ``uuid.uuid4().hex`` gives it (the same bits set), drawn
    from :mod:`random` rather than the operating system.

    A request id correlates log lines, errors and audit events; it is not a secret (a
    client may send its own ``X-Request-ID``), so it needs no cryptographic source, and the
    system call behind ``os.urandom`` cost about as much as the rest of this middleware on
    every request (``bench/pipeline_micro.py``). :mod:`random` reseeds itself in a forked
    child, so processes do not repeat each other's ids.
    """
    return f"{getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"


_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


_PATH_PART = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


def _location(message: str) -> list[str]:
    """``["body", "variants", "0", "price"]`` from msgspec's ``... - at `$.variants[0].price```."""
    _, _, where = message.rpartition(" - at `")
    return ["body", *(a or b for a, b in _PATH_PART.findall(where.rstrip("`")))]


MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects a request body may have (the contract's bound)."""


class MalformedJSON(DomainError):
    """The body is not a JSON document we read: not JSON, not UTF-8, numbers out of range,
    or nested deeper than :data:`MAX_JSON_DEPTH` (400 ``malformed_json``)."""

    status, code, title = 400, "malformed_json", "Malformed JSON"


def decode_json(body: bytes) -> Any:
    """Decode a request body (RFC 8259 JSON, UTF-8) nested at most ``MAX_JSON_DEPTH`` deep.

    Raises MalformedJSON (400 ``malformed_json``) for anything else. msgspec itself raises
    ``RecursionError`` on a very deep document and ``UnicodeDecodeError`` on invalid
    UTF-8; both are the client's fault, not a server error.
    """
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise MalformedJSON(f"The request body is not valid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise MalformedJSON("The request body is not valid UTF-8.") from exc
    except RecursionError as exc:
        raise MalformedJSON(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.") from exc
    if _too_deep(document, MAX_JSON_DEPTH):
        raise MalformedJSON(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.")
    return document


def _too_deep(document: Any, levels: int) -> bool:
    """True when ``document`` nests arrays/objects more than ``levels`` deep."""
    if isinstance(document, dict):
        children: Any = document.values()
    elif isinstance(document, list):
        children = document
    else:
        return False
    if levels == 0:
        return True
    return any(_too_deep(child, levels - 1) for child in children if isinstance(child, dict | list))


async def check_json_body(request: Request[Any, Any, Any]) -> None:
    """``before_request`` hook: the body is checked strictly against the route's body type,
    so ``"1999"`` (a string) is not taken for the integer ``1999``, and a NUL character
    (``\\u0000``), which no database text column can store, is refused.

    Raises MalformedJSON (400 ``malformed_json``) for a body :func:`decode_json` refuses,
    InvalidInput (422 ``validation_error``) naming the offending field.
    """
    if request.method not in _BODY_METHODS:
        return
    body = await request.body()
    if _JSON_NUL.search(body):
        raise InvalidInput(
            "NUL characters are not allowed in text.",
            errors=[{"loc": ["body"], "msg": "contains a NUL character"}],
        )
    field = request.route_handler.parsed_fn_signature.parameters.get("data")
    if field is None or not body:
        return
    document = decode_json(body)
    try:
        msgspec.convert(document, type=field.annotation, strict=True)
    except msgspec.ValidationError as exc:
        message = str(exc)
        raise InvalidInput(
            "The request is not valid.",
            errors=[{"loc": _location(message), "msg": message.partition(" - at `")[0]}],
        ) from exc
