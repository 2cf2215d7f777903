"""The audiences of the API's routes: who may call a group of routes, how they prove it
(OpenAPI security) and the refusals that brings. Rooms group their handlers by audience
with ``core.http.routing.audience_router`` (docs/architecture.md, "Routes").

The platform rooms below accounts (jobs, webhooks) use ``jobs.routes.ADMIN`` instead of
:data:`ADMIN` (the same check, through the application's ``admin_guard``).
"""

from __future__ import annotations

from emporium.accounts.identity import customer, role, signed_in, signed_in_or_key
from emporium.core.http.openapi import BEARER
from emporium.core.http.routing import Audience

PUBLIC = Audience()
"""Anyone, no credential (a handler may still add its own rate-limit guard)."""

GUEST_OR_SIGNED_IN = Audience(security=(*BEARER, {}), refusals=(401, 403))
"""Guests and signed-in callers: a bearer token is optional (security ``[bearer, {}]``); the
handler's own guard or service decides (checkout, a guest's order with its token)."""

SIGNED_IN = Audience(guards=(signed_in,), security=tuple(BEARER), refusals=(401,))
"""Any signed-in person (``identity.signed_in``): their own account, sessions, MFA."""

SIGNED_IN_OR_KEY = Audience(guards=(signed_in_or_key,), security=tuple(BEARER), refusals=(401, 403))
"""Any signed-in person, or an API key with the route's scope; the service decides what
each sees (orders)."""

CUSTOMER = Audience(guards=(customer,), security=tuple(BEARER), refusals=(401, 403))
"""Signed-in customers (``identity.customer``): the v1 cart, posting reviews."""

STAFF = Audience(guards=(role("staff"),), security=tuple(BEARER), refusals=(401, 403))
"""Staff and admins with MFA, or an API key with the route's scope (``<room>:read`` /
``<room>:write``, declared in the OpenAPI document by ``declare_api_keys``)."""

ADMIN = Audience(guards=(role("admin"),), security=tuple(BEARER), refusals=(401, 403))
"""Admins with MFA; never an API key."""
