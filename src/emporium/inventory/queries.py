"""Inventory reads: a variant's stock ledger, newest first (writes are in ``service``)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.catalog.exceptions import VariantNotFound
from emporium.catalog.models import Variant
from emporium.core.db.base import Reader, table_of
from emporium.core.db.pagination import CreatedSort, by_created_at, created_at_cursor
from emporium.inventory.models import StockMovement
from emporium.inventory.schemas import StockMovementPage, StockMovementRead

_V = table_of(Variant).c
_M = table_of(StockMovement).c


_LISTING = select(
    _M.id,
    _M.variant_id,
    _M.kind,
    _M.delta,
    _M.stock_after,
    _M.reason,
    _M.order_id,
    _M.actor_id,
    _M.created_at,
)
SORT: CreatedSort = "-created_at"


async def list_movements(
    db: AsyncSession | Reader, variant_id: uuid.UUID, *, limit: int, cursor: str | None
) -> StockMovementPage:
    """A variant's stock movements, newest first, as a keyset page.

    Raises:
        VariantNotFound: (404) no such variant.
        InvalidInput: (422) a bad cursor.
    """
    exists = (await db.execute(select(_V.id).where(_V.id == variant_id))).first()
    if exists is None:
        raise VariantNotFound("No such variant.")
    stmt = _LISTING.where(_M.variant_id == variant_id)
    stmt = by_created_at(stmt, SORT, _M.created_at, _M.id, cursor)
    rows = (await db.execute(stmt.limit(limit + 1))).all()
    items = [StockMovementRead(**r._mapping) for r in rows[:limit]]
    more = len(rows) > limit
    return StockMovementPage(items=items, next_cursor=created_at_cursor(items, more, SORT))
