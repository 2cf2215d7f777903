"""Shared OpenAPI declarations."""

from __future__ import annotations

from litestar.openapi.spec import SecurityRequirement

BEARER: list[SecurityRequirement] = [{"bearer": []}]
"""``security`` of routes that need ``Authorization: Bearer <access token>``."""
