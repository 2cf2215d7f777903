"""Shared OpenAPI declarations."""

from __future__ import annotations

import msgspec
from litestar import Litestar
from litestar.openapi.spec import (
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    Schema,
    SecurityRequirement,
)

BEARER: list[SecurityRequirement] = [{"bearer": []}]
"""``security`` of routes that need ``Authorization: Bearer <access token>``."""


def _strict_structs() -> list[type[msgspec.Struct]]:
    found: list[type[msgspec.Struct]] = []
    pending = list(msgspec.Struct.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("emporium.") and cls.__struct_config__.forbid_unknown_fields:
            found.append(cls)
    return found


def declare_closed_bodies(app: Litestar) -> None:
    """``on_startup`` hook: request bodies that refuse unknown fields (msgspec
    ``forbid_unknown_fields``) say so in the OpenAPI document (``additionalProperties:
    false``), so clients and schema-driven tests know what the server really does."""
    schemas = app.openapi_schema.components.schemas or {}
    for struct in _strict_structs():
        schema = schemas.get(struct.__name__)
        if schema is not None:
            schema.additional_properties = False


_PROBLEM = {"application/problem+json": OpenAPIMediaType(
    schema=Reference(ref="#/components/schemas/ProblemDetails")
)}  # fmt: skip
_TOO_MANY = OpenAPIResponse(
    description="Too many requests (code rate_limited): wait Retry-After seconds",
    content=_PROBLEM,
    headers={
        "Retry-After": OpenAPIHeader(
            schema=Schema(type=OpenAPIType.INTEGER), description="seconds to wait"
        )
    },
)
_TOO_LARGE = OpenAPIResponse(
    description="The body is larger than the server accepts (code payload_too_large)",
    content=_PROBLEM,
)


def declare_refusals(app: Litestar) -> None:
    """``on_startup`` hook: every API operation may answer ``429`` (the general per-client
    rate limit, or its own policy) and every operation with a body ``413``; the OpenAPI
    document says so, so that schema-driven clients and tests expect them."""
    for path, item in (app.openapi_schema.paths or {}).items():
        if not path.startswith("/api/"):
            continue
        for method in ("get", "post", "put", "patch", "delete"):
            operation = getattr(item, method, None)
            if operation is None:
                continue
            responses = operation.responses if operation.responses is not None else {}
            responses.setdefault("429", _TOO_MANY)
            if operation.request_body is not None:
                responses.setdefault("413", _TOO_LARGE)
            operation.responses = responses
