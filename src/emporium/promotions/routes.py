"""Staff routes of the promotions room (MFA as every staff route; API keys with
``promotions:read`` / ``promotions:write``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Request, delete, get, patch, post
from litestar.datastructures import CacheControlHeader
from litestar.params import FromPath, JSONBody, QueryParameter

from emporium.accounts.audiences import STAFF
from emporium.accounts.identity import identify
from emporium.core.config import SettingsDep
from emporium.core.db.pagination import DEFAULT_LIMIT, Cursor, Limit
from emporium.core.db.uow import DbSession
from emporium.core.errors import problem_responses
from emporium.core.http.clientip import client_ip
from emporium.core.http.routing import audience_router
from emporium.promotions import service
from emporium.promotions.schemas import (
    PromotionCreate,
    PromotionPage,
    PromotionRead,
    PromotionUpdate,
)

WRITE = problem_responses(404, 409, 415)  # what writes answer beyond the staff refusals
AnyRequest = Request[Any, Any, Any]


async def _actor(request: AnyRequest) -> service.Actor:
    identity = await identify(request)
    key = request.scope.get("state", {}).get("api_key")
    who = identity.user_id if identity else f"api_key:{getattr(key, 'id', None)}"
    return service.Actor(user_id=who, client_ip=client_ip(request))


@get("/promotions")
async def list_promotions(
    session: DbSession,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    active: Annotated[bool | None, QueryParameter()] = None,
    code: Annotated[str | None, QueryParameter(max_length=200)] = None,
) -> PromotionPage:
    """Staff: promotions, oldest first; ``active`` filters on the flag, ``code`` finds one
    code (any case)."""
    return await service.list_promotions(
        session, limit=limit, cursor=cursor, active=active, code=code
    )


@post("/promotions", responses=WRITE)
async def create_promotion(
    request: AnyRequest, session: DbSession, settings: SettingsDep, data: JSONBody[PromotionCreate]
) -> PromotionRead:
    """Staff: a promotion (422 on nonsense, 409 ``promotion_code_taken``)."""
    return await service.create_promotion(
        session, await _actor(request), data, currency=settings.currency
    )


@get("/promotions/{promotion_id:uuid}", responses=problem_responses(404))
async def get_promotion(session: DbSession, promotion_id: FromPath[uuid.UUID]) -> PromotionRead:
    """Staff: one promotion with its ``times_used``."""
    return await service.get_promotion(session, promotion_id)


@patch("/promotions/{promotion_id:uuid}", responses=WRITE)
async def update_promotion(
    request: AnyRequest,
    session: DbSession,
    promotion_id: FromPath[uuid.UUID],
    data: JSONBody[PromotionUpdate],
) -> PromotionRead:
    """Staff: change a promotion (``usage_limit`` never below ``times_used``)."""
    return await service.update_promotion(session, await _actor(request), promotion_id, data)


@delete("/promotions/{promotion_id:uuid}", responses=WRITE)
async def delete_promotion(
    request: AnyRequest, session: DbSession, promotion_id: FromPath[uuid.UUID]
) -> None:
    """Staff: delete a promotion (409 ``promotion_in_use`` while orders hold it)."""
    await service.delete_promotion(session, await _actor(request), promotion_id)


promotions_router = audience_router(
    STAFF,
    tags=["promotions"],
    route_handlers=[
        list_promotions,
        create_promotion,
        get_promotion,
        update_promotion,
        delete_promotion,
    ],
    cache_control=CacheControlHeader(no_store=True),
)
