"""Who is calling: for now, anonymous or staff holding the admin API key from settings.

Temporary: the accounts room replaces this with real identities and roles. The key is
accepted only in the ``X-API-Key`` header (never in a URL) and compared in constant time
(OWASP ASVS 2.9, 6.2).
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from emporium.core.config import Settings
from emporium.core.errors import Unauthorized


def is_staff(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """True when the request carries the configured admin API key."""
    settings: Settings = connection.app.state.settings
    expected = settings.admin_api_key
    presented = connection.headers.get("x-api-key")
    if expected is None or not presented:
        return False
    return hmac.compare_digest(presented.encode(), expected.get_secret_value().encode())


def require_staff(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Route guard for staff writes. Raises Unauthorized (401) without a valid key."""
    if not is_staff(connection):
        raise Unauthorized("This operation needs staff credentials (X-API-Key).")
