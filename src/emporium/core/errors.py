"""Domain errors with stable codes, and the one place that maps errors to problem details.

Every error answer is RFC 9457 ``application/problem+json``:
``{"type", "title", "status", "detail", "code"}`` plus ``errors`` for validation failures and
``request_id`` for server errors. A database outage is a 503 ``service_unavailable`` with
``Retry-After`` (``core.db.outages``). Unknown exceptions become a 500 that carries the request
id and never a stack trace; they are logged, not guessed into a 4xx.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    InternalServerException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import Message

from emporium.core.db.outages import RETRY_AFTER_SECONDS, outage_kind, report_outage

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("emporium.errors")


class DomainError(Exception):
    """A business rule refused the request; ``code`` is stable and machine-readable."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"
    keep_changes: bool = False
    """True when the transaction must commit even though the request fails (for example,
    revoking a session whose refresh token was replayed)."""
    retry_after: int | None = None
    """Seconds sent as ``Retry-After`` (RFC 9110 section 10.2.3) when the client may simply
    try again later (a 503)."""

    def __init__(self, detail: str, *, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = dict(extra or {})


_DISCONNECTED = "client disconnected prematurely"  # Litestar's detail when the peer leaves


class ClientDisconnected(DomainError):
    """The client closed the connection before it had sent the whole request: nobody reads
    the answer, and it is no server error; 499 is the status proxies (nginx) log for it."""

    status, code, title = 499, "client_closed_request", "Client closed request"


class NotFound(DomainError):
    """The object does not exist, or the caller may not see it (the two look the same)."""

    status, code, title = 404, "not_found", "Not found"


class Conflict(DomainError):
    """The request conflicts with the current state (duplicate, in use, ...)."""

    status, code, title = 409, "conflict", "Conflict"


class InvalidInput(DomainError):
    """The input is well-formed JSON but breaks a rule; ``errors`` lists ``{loc, msg}``."""

    status, code, title = 422, "validation_error", "Invalid input"

    def __init__(self, detail: str, *, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(detail, extra={"errors": [dict(e) for e in errors]})


class Unauthorized(DomainError):
    """No valid credentials were presented."""

    status, code, title = 401, "unauthorized", "Authentication required"


class Forbidden(DomainError):
    """The caller is known but may not do this."""

    status, code, title = 403, "forbidden", "Forbidden"


class ValidationItem(msgspec.Struct):
    """Where (``loc``, e.g. ``["query", "limit"]``) and what (``msg``) is wrong."""

    loc: list[str]
    msg: str


class ShortLine(msgspec.Struct):
    """A line short of stock (``insufficient_stock``): the variant, its SKU (null when it
    has none), the units asked for and the units on hand."""

    variant_id: str
    sku: str | None
    requested: int
    available: int


class ProblemDetails(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details, as every error of the API is shaped: ``code`` is the stable
    machine code; ``errors`` comes with ``validation_error`` (what and where), ``lines`` with
    ``insufficient_stock`` (every short line), ``request_id`` with unexpected errors."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[ValidationItem] | None = None
    lines: list[ShortLine] | None = None
    request_id: str | None = None


_DESCRIPTIONS = {
    400: "Malformed request, such as a body that is not JSON (code malformed_json)",
    401: "Credentials missing or invalid",
    403: "Not allowed",
    404: "No such resource, or not visible to the caller",
    409: "Conflicts with the current state",
    415: "The body is not JSON",
    422: "Invalid input; `errors` lists each problem",
    429: "Too many requests: wait `Retry-After` seconds (code rate_limited)",
    503: "Not ready, or the database cannot be reached (code service_unavailable): retry "
    "after `Retry-After` seconds",
}


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI descriptions of the problem+json answers a route can give (plus 400, 422)."""
    return {
        status: ResponseSpec(
            data_container=ProblemDetails,
            description=_DESCRIPTIONS[status],
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in sorted({*statuses, 400, 422})
    }


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[bytes]:
    """Build one problem+json response (RFC 9457)."""
    return Response(
        content=problem_body(status, code, detail, title=title, extra=extra),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


def problem_body(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """The JSON body of a problem (RFC 9457): ``{type, title, status, detail, code}`` and
    ``extra`` members; the title defaults to the status phrase. The one place problem
    bodies are made (routes through :func:`problem`, middleware through
    :func:`problem_messages`)."""
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if extra:
        body.update(extra)
    return msgspec.json.encode(body)


def problem_messages(status: int, code: str, title: str, detail: str) -> tuple[Message, Message]:
    """The ASGI messages of a problem+json answer given by middleware, before routing."""
    body = problem_body(status, code, detail, title=title)
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": body, "more_body": False}


def _validation_errors(exc: ValidationException) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        source = item.get("source") or "body"
        loc: list[str] = [str(getattr(source, "value", source))]
        key = item.get("key")
        if key and not (loc == ["body"] and key == "data"):
            loc.extend(str(key).split("."))
        errors.append({"loc": loc, "msg": str(item.get("message", "invalid value"))})
    if not errors:
        errors.append({"loc": ["body"], "msg": exc.detail})
    return errors


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Map any exception raised while handling a request to problem+json."""
    if isinstance(exc, DomainError):
        retry = {} if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
        return problem(
            exc.status, exc.code, exc.detail, title=exc.title, extra=exc.extra, headers=retry
        )
    if isinstance(exc, ValidationException):
        return problem(
            422,
            "validation_error",
            "The request is not valid.",
            title="Invalid input",
            extra={"errors": _validation_errors(exc)},
        )
    if isinstance(exc, NotFoundException):
        return problem(404, "not_found", "No such resource.")
    if isinstance(exc, NotAuthorizedException | PermissionDeniedException):
        status = exc.status_code
        return problem(status, _HTTP_CODES[status], exc.detail)
    if isinstance(exc, HTTPException) and exc.status_code == 400 and "JSON" in exc.detail:
        return problem(400, "malformed_json", "The request body is not valid JSON.")
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        status = exc.status_code
        code = _HTTP_CODES.get(status, "bad_request")
        return problem(status, code, exc.detail, headers=exc.headers)
    if isinstance(exc, InternalServerException) and exc.detail == _DISCONNECTED:
        # Not a server failure: nobody reads this answer, and no operator should be paged.
        log.info("client_disconnected", path=request.url.path)
        exc = ClientDisconnected("The client closed the connection mid-request.")
        return problem(exc.status, exc.code, exc.detail, title=exc.title)
    kind = outage_kind(exc)
    if kind is not None:
        report_outage(kind, exc)
        return problem(
            503,
            "service_unavailable",
            "The database cannot be reached; retry later.",
            title="Service unavailable",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    request_id = request.scope.get("state", {}).get("request_id", "")
    log.exception("unhandled_exception", path=request.url.path, request_id=request_id)
    return problem(
        500,
        "internal_error",
        "The server failed to answer; the request id identifies it in the logs.",
        extra={"request_id": request_id},
    )
