"""HTTP routes of carts and orders. Answers carry ``Cache-Control: no-store``: orders hold a
shipping address (personal data, OWASP ASVS 8.2.1)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Annotated, Any

from litestar import Response, Router, delete, get, patch, post
from litestar.connection import ASGIConnection
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency, Provide
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.audiences import CUSTOMER, GUEST_OR_SIGNED_IN, SIGNED_IN_OR_KEY, STAFF
from emporium.accounts.identity import (
    Caller,
    Identity,
    customer,
    identify,
    provide_caller,
    provide_identity,
    require_identity,
    signed_in_or_key,
)
from emporium.accounts.protect import AccountsContext, provide_accounts
from emporium.core.config import SettingsDep
from emporium.core.db import uow
from emporium.core.db.pagination import DEFAULT_LIMIT, Cursor, Limit
from emporium.core.db.uow import DbReader, DbSession
from emporium.core.errors import InvalidInput, problem_responses
from emporium.core.http.openapi import IDEMPOTENT_REPLAYED
from emporium.core.http.ratelimit import rate_limit
from emporium.core.http.routing import audience_router
from emporium.core.resources import ResourcesDep
from emporium.orders import cart, carts, checkout, disclosure, idempotency, lifecycle
from emporium.orders.cart_routes import CART_WRITE, AnyRequest, CartToken, identified_caller
from emporium.orders.holders import ORDER_TOKEN, OrderToken
from emporium.orders.schemas import (
    CartItemCreate,
    CartItemUpdate,
    CartRead,
    FulfillmentStatus,
    OrderCreate,
    OrderCreated,
    OrderPage,
    OrderRead,
    OrderStatus,
    OrderTransition,
    PaymentStatus,
)

# Every route has a guard: guards run before dependencies are resolved, so an anonymous
# caller is refused before a database connection is taken for the request.
Ctx = NamedDependency[AccountsContext]
Me = NamedDependency[Identity]
CallerDep = NamedDependency[Caller]


@get("/cart")
async def get_my_cart(session: DbSession, me: Me, settings: SettingsDep) -> CartRead:
    """The caller's cart at current prices."""
    return await cart.get_cart(
        session, me, currency=settings.currency, prices_include_tax=settings.prices_include_tax
    )


@post("/cart/items", guards=[CART_WRITE], responses=problem_responses(409, 415, 429))
async def add_cart_item(
    session: DbSession, me: Me, settings: SettingsDep, data: JSONBody[CartItemCreate]
) -> CartRead:
    """Add units of a variant (422 ``variant_unavailable``); returns the cart."""
    return await cart.add_item(
        session,
        me,
        data,
        currency=settings.currency,
        prices_include_tax=settings.prices_include_tax,
    )


@patch(
    "/cart/items/{item_id:uuid}", guards=[CART_WRITE], responses=problem_responses(404, 415, 429)
)
async def update_cart_item(
    session: DbSession,
    me: Me,
    settings: SettingsDep,
    item_id: FromPath[uuid.UUID],
    data: JSONBody[CartItemUpdate],
) -> CartRead:
    """Set a line's quantity; returns the cart."""
    return await cart.update_item(
        session,
        me,
        item_id,
        data,
        currency=settings.currency,
        prices_include_tax=settings.prices_include_tax,
    )


@delete("/cart/items/{item_id:uuid}", guards=[CART_WRITE], responses=problem_responses(404, 429))
async def remove_cart_item(session: DbSession, me: Me, item_id: FromPath[uuid.UUID]) -> None:
    """Take a line out of the cart."""
    await cart.remove_item(session, me, item_id)


IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        description="1-255 characters; kept 24 h or more",
        max_length=255,
        min_length=1,
    ),
]


async def _buyer(
    request: AnyRequest,
    session: AsyncSession,
    accounts: AccountsContext,
    data: OrderCreate,
    cart_token: str | None,
    include_tax: bool,
    payment_minutes: int,
) -> tuple[str, Callable[[], Awaitable[OrderCreated]]]:
    """Who is checking out: the idempotency scope and the placing of the order. A cart's
    holder (its customer, or a guest with its token) orders the cart; otherwise only a
    signed-in customer may order (401/403 as the ``customer`` guard answers)."""
    if data.cart_id is not None:
        given = (
            data.items,
            data.shipping_address,
            data.address_id,
            data.shipping_method_id,
            data.promotion_codes,
        )
        if any(field is not None for field in given):
            raise InvalidInput(
                "With cart_id, the cart gives lines, addresses, method and codes: send only it.",
                errors=[{"loc": ["body", "cart_id"], "msg": "send cart_id alone"}],
            )
        cart = await carts.holder_cart(session, data.cart_id, await identify(request), cart_token)
        scope = (
            idempotency.cart_scope(cart.id)
            if cart.customer_id is None
            else idempotency.scope_of(cart.customer_id)
        )
        return scope, partial(
            checkout.place_cart_order,
            session,
            accounts,
            cart,
            prices_include_tax=include_tax,
            payment_minutes=payment_minutes,
        )
    await customer(request, request.route_handler)
    me = await require_identity(request)
    return idempotency.scope_of(me.user_id), partial(
        checkout.place_order,
        session,
        accounts,
        customer_id=me.user_id,
        data=data,
        prices_include_tax=include_tax,
        payment_minutes=payment_minutes,
    )


@post(
    "/orders",
    guards=[rate_limit("checkout", key=identified_caller)],
    status_code=201,
    responses=problem_responses(409, 415, 429, 503),
    response_headers=[IDEMPOTENT_REPLAYED],
)
async def place_order(
    request: AnyRequest,
    resources: ResourcesDep,
    session: DbSession,
    accounts: Ctx,
    settings: SettingsDep,
    data: JSONBody[OrderCreate],
    idempotency_key: IdempotencyKey = None,
    cart_token: CartToken = None,
) -> Response[OrderCreated]:
    """Check out a cart (``cart_id``: anyone holding it, a guest with ``Cart-Token``; a
    guest's answer carries ``order_token``, shown once) or, signed in as a customer,
    ``items`` or the v1 cart. 409 ``insufficient_stock`` names short lines; nothing changes.
    Honours ``Idempotency-Key`` (Stripe's semantics)."""
    scope, place = await _buyer(
        request,
        session,
        accounts,
        data,
        cart_token,
        settings.prices_include_tax,
        settings.order_payment_minutes,
    )
    answer = await checkout.checkout(
        session,
        resources.sessionmaker,
        scope=scope,
        data=data,
        place=place,
        replay=partial(checkout.replay_order, session, accounts.vault),
        idempotency_key=idempotency_key,
        ttl=timedelta(hours=settings.idempotency_key_ttl_hours),
        lease=timedelta(seconds=settings.idempotency_lease_seconds),
        commit=partial(uow.commit, resources, session),
    )
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else {}
    return Response(
        content=answer.body,  # type: ignore[arg-type]
        status_code=answer.status_code,
        media_type="application/json",
        headers=headers,
    )


@get("/orders")
async def list_orders(
    reader: DbReader,
    resources: ResourcesDep,
    accounts: Ctx,
    caller: CallerDep,
    status: Annotated[OrderStatus | None, QueryParameter()] = None,
    payment_status: Annotated[PaymentStatus | None, QueryParameter()] = None,
    fulfillment_status: Annotated[FulfillmentStatus | None, QueryParameter()] = None,
    customer_id: Annotated[uuid.UUID | None, QueryParameter()] = None,
    email: Annotated[str | None, QueryParameter(max_length=254)] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> OrderPage:
    """Customers: their own orders; staff and API keys with ``orders:read``: all, filtered
    by ``status``, ``payment_status``, ``fulfillment_status``, ``customer_id`` and
    ``email`` (the exact address, guests' orders included). A listing of other people's
    orders by staff or a key is recorded in the audit trail (``order.listed``)."""
    return await disclosure.list_orders(
        reader,
        resources,
        accounts.vault,
        caller,
        status=status,
        customer_id=customer_id,
        limit=limit,
        cursor=cursor,
        payment_status=payment_status,
        fulfillment_status=fulfillment_status,
        email=email,
    )


async def _signed_in_key_or_order_token(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard of reading one order: a guest's ``Order-Token`` alone (checked against the
    order by the service), else what ``signed_in_or_key`` lets through."""
    headers = connection.headers
    if ORDER_TOKEN in headers and "authorization" not in headers and "x-api-key" not in headers:
        return
    await signed_in_or_key(connection, handler)


@get("/orders/{order_id:uuid}", guards=[_signed_in_key_or_order_token])
async def get_order(
    request: AnyRequest,
    reader: DbReader,
    resources: ResourcesDep,
    accounts: Ctx,
    order_id: FromPath[uuid.UUID],
    order_token: OrderToken = None,
) -> OrderRead:
    """One order: its owner's, a guest's with its ``Order-Token``, or, for staff and API
    keys with ``orders:read``, any (404 otherwise); staff's and keys' reads of another
    person's order are recorded in the audit trail (``order.personal_data_read``)."""
    api_key = request.scope.get("state", {}).get("api_key")
    caller = api_key if api_key is not None else await identify(request)
    return await disclosure.read_order(
        reader, resources, accounts.vault, caller, order_id, order_token
    )


@post("/orders/{order_id:uuid}/cancel", status_code=200, responses=problem_responses(404, 409))
async def cancel_order(
    session: DbSession, accounts: Ctx, caller: CallerDep, order_id: FromPath[uuid.UUID]
) -> OrderRead:
    """Cancel and return the stock: owner while pending, staff (or an API key with
    ``orders:write``) while pending or paid."""
    return await lifecycle.cancel_order(session, accounts.vault, caller, order_id)


@post(
    "/orders/{order_id:uuid}/transitions",
    status_code=200,
    responses=problem_responses(404, 409, 415),
)
async def transition_order(
    session: DbSession,
    accounts: Ctx,
    caller: CallerDep,
    order_id: FromPath[uuid.UUID],
    data: JSONBody[OrderTransition],
) -> OrderRead:
    """Staff, or an API key with ``orders:write``: move the order along its status machine
    (409 ``invalid_transition``)."""
    return await lifecycle.transition_order(session, accounts.vault, caller, order_id, data.to)


orders_router = Router(
    path="/",
    route_handlers=[
        audience_router(
            CUSTOMER,
            tags=["cart"],
            route_handlers=[get_my_cart, add_cart_item, update_cart_item, remove_cart_item],
        ),
        audience_router(
            GUEST_OR_SIGNED_IN,
            tags=["orders"],
            refusals=(404,),
            route_handlers=[place_order, get_order],
        ),
        audience_router(
            SIGNED_IN_OR_KEY, tags=["orders"], route_handlers=[list_orders, cancel_order]
        ),
        audience_router(STAFF, tags=["orders"], route_handlers=[transition_order]),
    ],
    dependencies={
        "accounts": Provide(provide_accounts, sync_to_thread=False),
        "me": Provide(provide_identity),
        "caller": Provide(provide_caller),
    },
    cache_control=CacheControlHeader(no_store=True),
)
