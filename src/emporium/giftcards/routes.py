"""HTTP routes of gift cards (``../shared/API.md``, Promotions and gift cards), by audience.

Staff with MFA (or an API key with ``giftcards:read`` / ``giftcards:write``) issue, list,
read and disable cards; the code is in the creation's answer only. Anyone may check a
balance by code (``POST``, so the code never sits in a URL or an access log), limited per
client address by the ``gift_card_balance`` policy (``EMPORIUM_RATE_LIMIT_GIFT_CARD_BALANCE``);
an unknown, disabled or expired code gets one and the same 404. Answers carry
``Cache-Control: no-store``.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Router, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from emporium.accounts.audiences import PUBLIC, STAFF
from emporium.accounts.identity import client_ip, identify
from emporium.accounts.protect import AccountsContext
from emporium.core.db.pagination import DEFAULT_LIMIT, Cursor, Limit
from emporium.core.db.uow import DbSession
from emporium.core.errors import problem_responses
from emporium.core.http.ratelimit import address_key, rate_limit
from emporium.core.http.routing import audience_router
from emporium.giftcards import service
from emporium.giftcards.schemas import (
    BalanceCheck,
    BalanceRead,
    GiftCardCreate,
    GiftCardCreated,
    GiftCardDetail,
    GiftCardPage,
)

AnyRequest = Request[Any, Any, Any]
Accounts = NamedDependency[AccountsContext]
BALANCE_POLICY = "gift_card_balance"


async def _per_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The balance check counts per client address (IPv6: per /64), signed in or not."""
    return address_key(client_ip(connection))


async def _actor(request: AnyRequest) -> service.Actor:
    identity = await identify(request)
    key = request.scope.get("state", {}).get("api_key")
    return service.Actor(
        user_id=identity.user_id if identity is not None else None,
        client_ip=client_ip(request),
        api_key_id=getattr(key, "id", None),
    )


@get("/gift-cards")
async def list_gift_cards(
    session: DbSession, accounts: Accounts, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> GiftCardPage:
    """Staff: gift cards, newest first (without codes)."""
    return await service.list_cards(session, accounts.vault, limit=limit, cursor=cursor)


@post("/gift-cards", responses=problem_responses(415))
async def create_gift_card(
    request: AnyRequest, session: DbSession, accounts: Accounts, data: JSONBody[GiftCardCreate]
) -> GiftCardCreated:
    """Staff: issue a gift card of ``initial_balance`` minor units of ``currency``; the
    answer carries its ``code``, shown this once (422 for a balance <= 0, an unknown
    currency or an expiry in the past)."""
    return await service.create_card(session, accounts.vault, await _actor(request), data)


@get("/gift-cards/{card_id:uuid}")
async def get_gift_card(
    session: DbSession, accounts: Accounts, card_id: FromPath[uuid.UUID]
) -> GiftCardDetail:
    """Staff: one gift card and its ledger (every issue, debit and credit)."""
    return await service.get_card(session, accounts.vault, card_id)


@post("/gift-cards/{card_id:uuid}/disable", status_code=200)
async def disable_gift_card(
    request: AnyRequest, session: DbSession, accounts: Accounts, card_id: FromPath[uuid.UUID]
) -> GiftCardDetail:
    """Staff: disable a gift card for good; nothing can spend it any more."""
    return await service.disable_card(session, accounts.vault, await _actor(request), card_id)


@post(
    "/gift-cards/balance",
    status_code=200,
    guards=[rate_limit(BALANCE_POLICY, key=_per_address)],
    responses=problem_responses(404, 415, 429),
)
async def check_gift_card_balance(
    request: AnyRequest, session: DbSession, accounts: Accounts, data: JSONBody[BalanceCheck]
) -> BalanceRead:
    """Anyone: the balance, currency and expiry of a gift card by its code; an unknown,
    disabled or expired code answers the same ``404`` (``gift_card_not_found``)."""
    return await service.check_balance(session, accounts.vault.ring, data.code, client_ip(request))


giftcards_router = Router(
    path="/",
    route_handlers=[
        audience_router(
            STAFF,
            tags=["gift cards"],
            refusals=(404,),
            route_handlers=[
                list_gift_cards,
                create_gift_card,
                get_gift_card,
                disable_gift_card,
            ],
        ),
        audience_router(PUBLIC, tags=["gift cards"], route_handlers=[check_gift_card_balance]),
    ],
    cache_control=CacheControlHeader(no_store=True),
)
