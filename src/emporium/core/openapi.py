"""Shared OpenAPI declarations."""

from __future__ import annotations

import msgspec
from litestar import Litestar
from litestar.openapi.spec import SecurityRequirement

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
