"""HTTP routes of carts as resources (``/carts``), for guests (``Cart-Token``) and customers.
Answers carry ``Cache-Control: no-store`` (e-mail and addresses are personal data). Every
write is rate limited (policy ``cart``, ``EMPORIUM_RATE_LIMIT_CART``): a signed-in caller
per user, a guest per client address, like other anonymous writes."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Request, delete, get, patch, post
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, HeaderParameter, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.audiences import PUBLIC
from emporium.accounts.identity import customer, identify
from emporium.accounts.protect import AccountsContext, provide_accounts
from emporium.core.config import Settings, SettingsDep
from emporium.core.db.uow import DbSession
from emporium.core.errors import problem_responses
from emporium.core.http.ratelimit import Connection, caller_key, rate_limit
from emporium.core.http.routing import audience_router
from emporium.orders import carts
from emporium.orders.models import Cart
from emporium.orders.schemas import (
    CartCreate,
    CartCreated,
    CartItemCreate,
    CartItemUpdate,
    CartUpdate,
    CartView,
    PromotionCodeAdd,
    ShippingOption,
)

Ctx = NamedDependency[AccountsContext]
AnyRequest = Request[Any, Any, Any]
CartToken = Annotated[
    str | None,
    HeaderParameter(
        name="Cart-Token",
        required=False,
        max_length=200,
        description="the guest cart's token, as POST /carts answered it",
    ),
]
HOLDER = problem_responses(404, 415)
WRITE = problem_responses(404, 415, 429)


async def identified_caller(connection: Connection) -> str | None:
    """The subject a cart write or a checkout counts against: the signed-in user
    (identified here, since the rate-limit guard runs before the handler does), else the
    client address."""
    await identify(connection)
    return caller_key(connection)


CART_WRITE = rate_limit("cart", key=identified_caller)


async def _shown(
    session: AsyncSession, accounts: AccountsContext, settings: Settings, cart: Cart
) -> CartView:
    """The cart's answer, priced with the shop's tax mode."""
    return await carts.view(
        session, accounts.vault, cart, prices_include_tax=settings.prices_include_tax
    )


async def _cart(
    session: AsyncSession, request: AnyRequest, cart_id: uuid.UUID, token: str | None
) -> Cart:
    return await carts.holder_cart(session, cart_id, await identify(request), token)


@post("/carts", status_code=201, guards=[CART_WRITE], responses=problem_responses(415, 429))
async def create_cart(
    request: AnyRequest,
    session: DbSession,
    accounts: Ctx,
    settings: SettingsDep,
    data: JSONBody[CartCreate],
) -> CartCreated:
    """A cart for anyone: a guest gets its ``token`` (shown once); a signed-in customer gets
    their cart (no token needed)."""
    return await carts.create_cart(
        session,
        accounts.vault,
        await identify(request),
        data,
        currency=settings.currency,
        prices_include_tax=settings.prices_include_tax,
    )


@get("/carts/{cart_id:uuid}", responses=HOLDER)
async def get_cart(
    request: AnyRequest,
    session: DbSession,
    accounts: Ctx,
    settings: SettingsDep,
    cart_id: FromPath[uuid.UUID],
    cart_token: CartToken = None,
) -> CartView:
    """The cart, priced for its address and method (404 for anyone but its holder)."""
    cart = await _cart(session, request, cart_id, cart_token)
    return await _shown(session, accounts, settings, cart)


@patch("/carts/{cart_id:uuid}", guards=[CART_WRITE], responses=WRITE)
async def update_cart(
    request: AnyRequest,
    session: DbSession,
    accounts: Ctx,
    settings: SettingsDep,
    cart_id: FromPath[uuid.UUID],
    data: JSONBody[CartUpdate],
    cart_token: CartToken = None,
) -> CartView:
    """Set the e-mail, addresses or shipping method (422 ``shipping_method_unavailable``)."""
    cart = await _cart(session, request, cart_id, cart_token)
    await carts.update_cart(session, accounts.vault, cart, data)
    return await _shown(session, accounts, settings, cart)


@post("/carts/{cart_id:uuid}/items", status_code=200, guards=[CART_WRITE], responses=WRITE)
async def add_item(
    request: AnyRequest,
    session: DbSession,
    accounts: Ctx,
    settings: SettingsDep,
    cart_id: FromPath[uuid.UUID],
    data: JSONBody[CartItemCreate],
    cart_token: CartToken = None,
) -> CartView:
    """Add units of a variant; an existing line's quantity grows."""
    cart = await _cart(session, request, cart_id, cart_token)
    await carts.add_line(session, cart, data)
    return await _shown(session, accounts, settings, cart)


@patch("/carts/{cart_id:uuid}/items/{item_id:uuid}", guards=[CART_WRITE], responses=WRITE)
async def update_item(
    request: AnyRequest,
    session: DbSession,
    accounts: Ctx,
    settings: SettingsDep,
    cart_id: FromPath[uuid.UUID],
    item_id: FromPath[uuid.UUID],
    data: JSONBody[CartItemUpdate],
    cart_token: CartToken = None,
) -> CartView:
    """Set a line's quantity."""
    cart = await _cart(session, request, cart_id, cart_token)
    await carts.set_quantity(session, cart, item_id, data.quantity)
    return await _shown(session, accounts, settings, cart)


@delete("/carts/{cart_id:uuid}/items/{item_id:uuid}", guards=[CART_WRITE], responses=WRITE)
async def remove_item(
    request: AnyRequest,
    session: DbSession,
    cart_id: FromPath[uuid.UUID],
    item_id: FromPath[uuid.UUID],
    cart_token: CartToken = None,
) -> None:
    """Take a line out."""
    cart = await _cart(session, request, cart_id, cart_token)
    await carts.remove_line(session, cart, item_id)


@post(
    "/carts/{cart_id:uuid}/promotion-codes",
    status_code=200,
    guards=[CART_WRITE, rate_limit("promotion_code", key=identified_caller)],
    responses=problem_responses(404, 415, 422, 429),
)
async def add_promotion_code(
    request: AnyRequest,
    session: DbSession,
    accounts: Ctx,
    settings: SettingsDep,
    cart_id: FromPath[uuid.UUID],
    data: JSONBody[PromotionCodeAdd],
    cart_token: CartToken = None,
) -> CartView:
    """Enter a promotion code (case-insensitive). Refused with 422
    ``promotion_code_invalid``, ``promotion_expired``, ``promotion_exhausted`` or
    ``promotion_not_applicable``, and then nothing changes. Rate limited per caller
    (``EMPORIUM_RATE_LIMIT_PROMOTION_CODE``) besides the cart policy."""
    cart = await _cart(session, request, cart_id, cart_token)
    await carts.add_code(
        session, accounts.vault, cart, data.code, prices_include_tax=settings.prices_include_tax
    )
    return await _shown(session, accounts, settings, cart)


@delete(
    "/carts/{cart_id:uuid}/promotion-codes/{code:str}",
    status_code=200,
    guards=[CART_WRITE],
    responses=WRITE,
)
async def remove_promotion_code(
    request: AnyRequest,
    session: DbSession,
    accounts: Ctx,
    settings: SettingsDep,
    cart_id: FromPath[uuid.UUID],
    code: FromPath[str],
    cart_token: CartToken = None,
) -> CartView:
    """Take a promotion code off the cart (case-insensitive; one it does not hold changes
    nothing); answers the cart."""
    cart = await _cart(session, request, cart_id, cart_token)
    await carts.remove_code(session, cart, code)
    return await _shown(session, accounts, settings, cart)


@get("/carts/{cart_id:uuid}/shipping-methods", responses=HOLDER)
async def shipping_methods(
    request: AnyRequest,
    session: DbSession,
    accounts: Ctx,
    settings: SettingsDep,
    cart_id: FromPath[uuid.UUID],
    cart_token: CartToken = None,
) -> list[ShippingOption]:
    """The methods that serve the cart's address and weight, priced for this cart."""
    cart = await _cart(session, request, cart_id, cart_token)
    return await carts.shipping_options(
        session, accounts.vault, cart, prices_include_tax=settings.prices_include_tax
    )


@post(
    "/carts/{cart_id:uuid}/claim",
    guards=[customer, CART_WRITE],
    status_code=200,
    responses=problem_responses(401, 403, 404, 429),
)
async def claim_cart(
    request: AnyRequest,
    session: DbSession,
    accounts: Ctx,
    settings: SettingsDep,
    cart_id: FromPath[uuid.UUID],
    cart_token: CartToken = None,
) -> CartView:
    """Signed in with the guest cart's ``Cart-Token``: the cart becomes the customer's (its
    lines merge into their cart)."""
    identity = await identify(request)
    assert identity is not None  # the customer guard ran
    cart = await carts.claim(session, identity, await _cart(session, request, cart_id, cart_token))
    return await _shown(session, accounts, settings, cart)


carts_router = audience_router(
    PUBLIC,
    tags=["carts"],
    route_handlers=[
        create_cart,
        get_cart,
        update_cart,
        add_item,
        update_item,
        remove_item,
        add_promotion_code,
        remove_promotion_code,
        shipping_methods,
        claim_cart,
    ],
    dependencies={"accounts": Provide(provide_accounts, sync_to_thread=False)},
    cache_control=CacheControlHeader(no_store=True),
)
