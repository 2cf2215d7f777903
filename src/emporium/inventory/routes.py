"""HTTP routes of inventory: staff stock adjustments and the stock ledger."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, get, post
from litestar.datastructures import CacheControlHeader
from litestar.params import FromPath, JSONBody

from emporium.accounts.audiences import STAFF
from emporium.accounts.identity import provide_caller
from emporium.core.db.pagination import DEFAULT_LIMIT, Cursor, Limit
from emporium.core.db.uow import DbReader, DbSession
from emporium.core.errors import problem_responses
from emporium.core.http.routing import audience_router
from emporium.inventory import queries, service
from emporium.inventory.schemas import StockAdjustmentCreate, StockMovementPage, StockMovementRead


@post(
    "/variants/{variant_id:uuid}/stock-adjustments",
    summary="Adjust a variant's stock",
    responses=problem_responses(409, 415),
)
async def adjust_stock(
    request: Request[Any, Any, Any],
    session: DbSession,
    variant_id: FromPath[uuid.UUID],
    data: JSONBody[StockAdjustmentCreate],
) -> StockMovementRead:
    """Staff, or an API key with ``inventory:write``: add or remove units with a reason;
    stock never drops below zero (409 ``insufficient_stock``). Returns the ledger row
    written, whose ``actor_id`` is the person's or the key's id."""
    caller = await provide_caller(request)
    return await service.adjust_stock(session, variant_id, data, actor_id=caller.actor_id)


@get(
    "/variants/{variant_id:uuid}/stock-movements",
    summary="A variant's stock ledger",
    cache_control=CacheControlHeader(no_store=True),
)
async def list_stock_movements(
    reader: DbReader,
    variant_id: FromPath[uuid.UUID],
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> StockMovementPage:
    """Staff, or an API key with ``inventory:read``: every change to the variant's stock,
    newest first; their ``delta`` sums to the current stock."""
    return await queries.list_movements(reader, variant_id, limit=limit, cursor=cursor)


inventory_router = audience_router(
    STAFF,
    tags=["inventory"],
    refusals=(404,),
    route_handlers=[adjust_stock, list_stock_movements],
)
