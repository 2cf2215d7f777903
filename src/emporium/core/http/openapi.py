"""Shared OpenAPI declarations: security schemes, operationIds, named enums, one-of rules
and the refusals every operation may give (OpenAPI 3.1)."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msgspec
from litestar import Litestar
from litestar.datastructures import ResponseHeader
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import (
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    Schema,
    SecurityRequirement,
)
from litestar.routes import HTTPRoute
from litestar.types import Method

G = TypeVar("G")

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


_PROBLEM = {
    "application/problem+json": OpenAPIMediaType(
        schema=Reference(ref="#/components/schemas/ProblemDetails")
    )
}
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


# --- operationIds: one rule, a few explicit names ------------------------------------------

OPERATION_IDS: dict[str, str] = {
    "me": "getMe",
    "erase_me": "deleteMe",
    "export_me": "exportMyData",
    "list_deliveries": "listWebhookDeliveries",
    "retry_delivery": "retryWebhookDelivery",
    "healthz": "getHealth",
    "readyz": "getReadiness",
}
"""Handler names whose camelCase would be a poor operationId, and the name they get."""


def camel_case(name: str) -> str:
    """``"place_order"`` -> ``"placeOrder"``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def operation_id(handler: HTTPRouteHandler, method: Method, _path: list[Any]) -> str:
    """Litestar ``operation_id_creator``: the handler function's name in camelCase
    (``place_order`` -> ``placeOrder``), or its entry in :data:`OPERATION_IDS`; short and
    stable (it does not change when a route moves). A handler serving several methods gets
    the method as a prefix. Uniqueness is checked by the tests."""
    name = handler.handler_name
    base = OPERATION_IDS.get(name) or camel_case(name)
    if len(handler.http_methods) > 1:
        return method.lower() + base[:1].upper() + base[1:]
    return base


# --- security: X-API-Key on the routes that accept one ---------------------------------------

API_KEY_SCHEME = "apiKey"
ScopeOf = Callable[[Any, str], str]
"""``(handler, method) -> scope``: the API-key scope a route needs."""


def accepts_api_key(guard: G, scope_of: ScopeOf) -> G:
    """Mark a route guard as one that also lets an ``X-API-Key`` with the route's scope
    (``scope_of(handler, method)``) through; :func:`declare_api_keys` documents it."""
    guard.api_key_scope_of = scope_of  # type: ignore[attr-defined]
    return guard


def declare_api_keys(app: Litestar) -> None:
    """``on_startup`` hook: operations whose guards accept an API key list
    ``{"apiKey": [<scope>]}`` as an alternative to the bearer token (OpenAPI 3.1 allows
    scopes, here the key's scope, on any security scheme)."""
    paths = app.openapi_schema.paths or {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path_format not in paths:
            continue
        item = paths[route.path_format]
        for handler in route.route_handlers:
            scope_of = next(
                (
                    getattr(g, "api_key_scope_of", None)
                    for g in handler.resolve_guards()
                    if getattr(g, "api_key_scope_of", None)
                ),
                None,
            )
            if scope_of is None:
                continue
            for method in handler.http_methods:
                operation = getattr(item, method.lower(), None)
                if operation is None:
                    continue
                security = list(operation.security or BEARER)
                security.append({API_KEY_SCHEME: [scope_of(handler, method)]})
                operation.security = security


# --- named enums and one-of rules -------------------------------------------------------------


def name_enums(named: Mapping[str, tuple[Any, ...]]) -> Callable[[Litestar], None]:
    """An ``on_startup`` hook: every inline ``enum`` whose values are those of an entry of
    ``named`` (name -> values, e.g. from ``typing.get_args`` of a ``Literal``) becomes a
    ``$ref`` to a component schema of that name, so generated clients get named types."""
    by_values = {frozenset(values): name for name, values in named.items()}

    def hook(app: Litestar) -> None:
        components = app.openapi_schema.components
        schemas = components.schemas = dict(components.schemas or {})
        for name, values in named.items():
            schemas.setdefault(name, Schema(type=OpenAPIType.STRING, enum=list(values), title=name))
        for name, schema in list(schemas.items()):
            if name not in named:
                _replace_enums(schema, by_values)
        for item in (app.openapi_schema.paths or {}).values():
            _replace_enums(item, by_values)

    return hook


def _enum_ref(node: Any, by_values: Mapping[frozenset[Any], str]) -> Any:
    """``node`` as a reference to its named enum (nullable enums: ``oneOf [ref, null]``),
    or None when it is not one."""
    if not isinstance(node, Schema) or not node.enum:
        return None
    values = [v for v in node.enum if v is not None]
    name = by_values.get(frozenset(values))
    if name is None:
        return None
    ref = Reference(ref=f"#/components/schemas/{name}")
    if len(values) == len(node.enum):
        return ref
    return Schema(one_of=[ref, Schema(type=OpenAPIType.NULL)])


def _replace_enums(node: Any, by_values: Mapping[frozenset[Any], str]) -> None:
    """Walk the spec objects under ``node`` and replace named enums in place."""
    if isinstance(node, list):
        for i, child in enumerate(node):
            node[i] = _enum_ref(child, by_values) or child
            _replace_enums(node[i], by_values)
    elif isinstance(node, dict):
        for key, child in node.items():
            node[key] = _enum_ref(child, by_values) or child
            _replace_enums(node[key], by_values)
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        for field in dataclasses.fields(node):
            child = getattr(node, field.name)
            replaced = _enum_ref(child, by_values)
            if replaced is not None:
                setattr(node, field.name, replaced)
            else:
                _replace_enums(child, by_values)


def declare_one_of(app: Litestar) -> None:
    """``on_startup`` hook: a request body struct with ``one_of_required`` (a ClassVar
    mapping a suffix to the fields that alternative requires, non-null) is documented as a
    ``oneOf`` of one component per alternative (``<Struct><Suffix>``): each has the struct's
    fields minus those of the other alternatives, its own required and non-null, so that
    generated clients get one complete type per alternative; the handler enforces the same
    rule (422 otherwise)."""
    schemas = app.openapi_schema.components.schemas
    if schemas is None:
        return
    for struct in _strict_structs():
        alternatives: Mapping[str, tuple[str, ...]] | None = getattr(
            struct, "one_of_required", None
        )
        base = schemas.get(struct.__name__)
        if base is None or not alternatives:
            continue
        grouped = {name for fields in alternatives.values() for name in fields}
        refs: list[Reference | Schema] = []
        for suffix, fields in alternatives.items():
            properties = {
                name: _not_null(prop) if name in fields else prop
                for name, prop in (base.properties or {}).items()
                if name in fields or name not in grouped
            }
            name = f"{struct.__name__}{suffix}"
            schemas[name] = Schema(
                type=OpenAPIType.OBJECT,
                title=name,
                properties=properties,
                required=sorted({*(base.required or []), *fields}),
                additional_properties=base.additional_properties,
                description=f"{struct.__name__} with {' and '.join(fields)}",
            )
            refs.append(Reference(ref=f"#/components/schemas/{name}"))
        schemas[struct.__name__] = Schema(
            one_of=refs, title=struct.__name__, description=inspect.cleandoc(struct.__doc__ or "")
        )


def _not_null(schema: Schema | Reference) -> Schema | Reference:
    """``schema`` without its ``null`` alternative (``oneOf [X, null]`` -> ``X``)."""
    if isinstance(schema, Schema) and schema.one_of:
        rest = [s for s in schema.one_of if not (isinstance(s, Schema) and s.type == "null")]
        if len(rest) == 1:
            return rest[0]
    return schema


IDEMPOTENT_REPLAYED = ResponseHeader(
    name="Idempotent-Replayed",
    value="true",
    required=False,
    documentation_only=True,
    description="true when the answer is the replay of an earlier request",
)
"""The header a request honouring ``Idempotency-Key`` answers on a replay (documented)."""
