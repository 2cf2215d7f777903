"""Who may act on an order's money and parcels from outside the orders room (payments,
returns): the guest's ``Order-Token`` header, the guard that lets it through, and the
caller it resolves to."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.params import HeaderParameter

from emporium.accounts import api_keys
from emporium.accounts.identity import Caller, identify, signed_in_or_key
from emporium.core.http.openapi import accepts_api_key

ORDER_TOKEN = "order-token"  # noqa: S105 (a header name, not a secret)
OrderToken = Annotated[
    str | None,
    HeaderParameter(
        name="Order-Token",
        required=False,
        max_length=200,
        description="a guest order's token, as POST /orders answered it",
    ),
]
"""The ``Order-Token`` header of a guest's order (a capability shown once at checkout)."""


async def _order_holder(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """A guest's ``Order-Token`` alone (checked against the order by the service), else
    what ``signed_in_or_key`` lets through (a person, or an API key with the route's
    scope). Raises what ``signed_in_or_key`` raises (401, 403)."""
    headers = connection.headers
    if ORDER_TOKEN in headers and "authorization" not in headers and "x-api-key" not in headers:
        return
    await signed_in_or_key(connection, handler)


order_holder = accepts_api_key(_order_holder, api_keys.required_scope)
"""Guard of routes on one order for its holder: the guest with its token, its customer,
staff, or an API key with the route's scope (the OpenAPI document says so)."""


async def order_caller(request: Request[Any, Any, Any]) -> Caller | None:
    """The caller of such a route: the API key, the signed-in person, or None (a guest with
    the order's token)."""
    api_key = request.scope.get("state", {}).get("api_key")
    return api_key if api_key is not None else await identify(request)
