"""HTTP routes of inventory: staff stock adjustments and the stock ledger."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Router, get, post
from litestar.datastructures import CacheControlHeader
from litestar.params import FromPath, JSONBody

from emporium.accounts.identity import provide_caller, role
from emporium.core.db.pagination import DEFAULT_LIMIT, Cursor, Limit
from emporium.core.db.uow import DbReader, DbSession
from emporium.core.errors import problem_responses
from emporium.core.http.openapi import BEARER
from emporium.inventory import queries, service
from emporium.inventory.schemas import StockAdjustmentCreate, StockMovementPage, StockMovementRead

STAFF = role("staff")


@post(
    "/variants/{variant_id:uuid}/stock-adjustments",
    tags=["inventory"],
    guards=[STAFF],
    security=BEARER,
    summary="Adjust a variant's stock",
    responses=problem_responses(401, 403, 404, 409, 415),
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
    tags=["inventory"],
    guards=[STAFF],
    security=BEARER,
    summary="A variant's stock ledger",
    responses=problem_responses(401, 403, 404),
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


inventory_router = Router(path="/", route_handlers=[adjust_stock, list_stock_movements])
