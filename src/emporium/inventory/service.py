"""Business verbs of inventory: take, return and adjust stock, each with its ledger rows.

Stock only moves through conditional updates (``UPDATE ... SET stock = stock + :delta WHERE
stock + :delta >= 0``) in the caller's transaction, backed by the ``stock_non_negative`` CHECK
constraint: on PostgreSQL the row lock makes concurrent buyers of one variant queue and each
see the stock the previous one left; on SQLite writers are serialised by the database lock.
Either way a unit is never sold twice and stock is never negative.

A variant whose stock is NULL does not track inventory (a Shopify export's empty ``Variant
Inventory Tracker``): the same update matches it and leaves it NULL (``NULL + delta`` is
NULL), so it is always sellable, writes no movement and never gets a negative stock; the
ledger invariant holds for tracked variants. Staff adjustments refuse it (``409``). A movement's
``created_at`` is read after its update returned, while the row is locked until commit, so
a variant's ledger lists its movements in the order the stock changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.audit.chain import record_audit
from emporium.catalog.changes import product_changed
from emporium.catalog.exceptions import VariantNotFound
from emporium.catalog.models import Variant
from emporium.core.clock import utcnow
from emporium.core.db.base import table_of
from emporium.core.errors import InvalidInput
from emporium.inventory.exceptions import InsufficientStock, InventoryNotTracked
from emporium.inventory.models import StockMovement
from emporium.inventory.schemas import (
    StockAdjustmentCreate,
    StockMovementRead,
)
from emporium.jobs.outbox import emit_event

LOW_STOCK = 5
"""``inventory.low_stock`` is emitted when a variant's stock drops below this."""

_V = table_of(Variant).c
_M = table_of(StockMovement).c
_INSERT_MOVEMENTS = insert(table_of(StockMovement))


_DELTA = bindparam("delta", type_=Integer)
_MOVE = (
    update(table_of(Variant))
    .where(
        _V.id == bindparam("variant_id", type_=_V.id.type),
        or_(_V.stock.is_(None), _V.stock + _DELTA >= 0),
    )
    .values(stock=_V.stock + _DELTA, updated_at=bindparam("now", type_=_V.updated_at.type))
    .returning(_V.stock, _V.product_id)
)
"""``stock += delta`` for one variant, only if the result stays at 0 or more, or if its stock
is not tracked (NULL stays NULL; built once; checkout runs it for every line)."""


async def _move(session: AsyncSession, variant_id: uuid.UUID, delta: int, now: datetime) -> Any:
    """Run :data:`_MOVE`; the variant's new stock and product, or None when refused."""
    params = {"variant_id": variant_id, "delta": delta, "now": now}
    return (await session.execute(_MOVE, params)).first()


def _announce_low_stock(
    session: AsyncSession, variant_id: uuid.UUID, product_id: uuid.UUID, before: int, after: int
) -> None:
    """Emit ``inventory.low_stock`` when stock crosses below :data:`LOW_STOCK`."""
    if after < LOW_STOCK <= before:
        emit_event(
            session,
            "inventory.low_stock",
            {
                "variant_id": str(variant_id),
                "product_id": str(product_id),
                "stock": after,
                "threshold": LOW_STOCK,
            },
        )


def _movement(
    variant_id: uuid.UUID,
    kind: str,
    delta: int,
    stock_after: int,
    *,
    now: datetime,
    reason: str = "",
    order_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "variant_id": variant_id,
        "kind": kind,
        "delta": delta,
        "stock_after": stock_after,
        "reason": reason,
        "order_id": order_id,
        "actor_id": actor_id,
        "created_at": now,
    }


async def _available(session: AsyncSession, variant_ids: Iterable[uuid.UUID]) -> dict[Any, Any]:
    rows = await session.execute(
        select(_V.id, _V.sku, _V.stock).where(_V.id.in_(list(variant_ids)))
    )
    return {r.id: (r.sku, r.stock) for r in rows}


async def take_stock(
    session: AsyncSession,
    quantities: Mapping[uuid.UUID, int],
    *,
    order_id: uuid.UUID,
    actor_id: uuid.UUID | None,
) -> None:
    """Take ``quantities`` (variant id → units > 0) for an order, all or nothing.

    Variants are updated in id order, so concurrent orders lock rows in one order and
    cannot deadlock. Each taken line writes a ``sale`` movement.

    Raises:
        InsufficientStock: (409) naming every short line; the caller's transaction must roll
            back (the request boundary does), so nothing at all changes.
    """
    now = utcnow()
    movements: list[dict[str, Any]] = []
    short: list[uuid.UUID] = []
    products: set[uuid.UUID] = set()
    for variant_id in sorted(quantities):
        units = quantities[variant_id]
        row = await _move(session, variant_id, -units, now)
        if row is None:
            short.append(variant_id)
            continue
        products.add(row.product_id)
        if row.stock is None:  # not tracked: nothing taken, nothing to record
            continue
        _announce_low_stock(session, variant_id, row.product_id, row.stock + units, row.stock)
        movements.append(
            _movement(
                variant_id,
                "sale",
                -units,
                row.stock,
                now=utcnow(),
                order_id=order_id,
                actor_id=actor_id,
            )
        )
    if short:
        available = await _available(session, short)
        lines = [
            {
                "variant_id": str(v),
                "sku": available.get(v, ("", 0))[0],
                "requested": quantities[v],
                "available": available.get(v, ("", 0))[1],
            }
            for v in short
        ]
        raise InsufficientStock(f"{len(lines)} line(s) are short of stock.", lines=lines)
    await session.execute(_INSERT_MOVEMENTS, movements)
    for product_id in products:
        product_changed(session, product_id)


async def return_stock(
    session: AsyncSession,
    quantities: Mapping[uuid.UUID, int],
    *,
    order_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    reason: str,
    kind: str = "return",
) -> None:
    """Put ``quantities`` back on hand as ``kind`` movements: ``return`` for a cancelled or
    refunded order, ``returned`` for units a customer sent back that staff restocked.
    Variants deleted since the sale are skipped: there is nothing to return to."""
    now = utcnow()
    movements: list[dict[str, Any]] = []
    for variant_id in sorted(quantities):
        units = quantities[variant_id]
        row = await _move(session, variant_id, units, now)
        if row is None:
            continue
        product_changed(session, row.product_id)
        if row.stock is None:  # not tracked
            continue
        movements.append(
            _movement(
                variant_id,
                kind,
                units,
                row.stock,
                now=utcnow(),
                order_id=order_id,
                actor_id=actor_id,
                reason=reason,
            )
        )
    if movements:
        await session.execute(insert(table_of(StockMovement)), movements)


async def adjust_stock(
    session: AsyncSession,
    variant_id: uuid.UUID,
    data: StockAdjustmentCreate,
    *,
    actor_id: uuid.UUID,
) -> StockMovementRead:
    """Add ``data.delta`` units (negative removes) with a reason, as an ``adjustment``.

    Raises:
        InvalidInput: (422) ``delta`` is 0.
        VariantNotFound: (404) no such variant.
        InsufficientStock: (409) the stock would drop below zero; nothing changes.
        InventoryNotTracked: (409) the variant's stock is not tracked (NULL).
    """
    if data.delta == 0:
        raise InvalidInput(
            "A stock adjustment moves at least one unit.",
            errors=[{"loc": ["body", "delta"], "msg": "must not be 0"}],
        )
    now = utcnow()
    row = await _move(session, variant_id, data.delta, now)
    if row is None:
        available = await _available(session, [variant_id])
        if variant_id not in available:
            raise VariantNotFound("No such variant.")
        sku, stock = available[variant_id]
        line = {
            "variant_id": str(variant_id),
            "sku": sku,
            "requested": -data.delta,
            "available": stock,
        }
        raise InsufficientStock("Stock cannot drop below zero.", lines=[line])
    if row.stock is None:
        raise InventoryNotTracked("This variant's inventory is not tracked; it has no stock.")
    product_changed(session, row.product_id)
    _announce_low_stock(session, variant_id, row.product_id, row.stock - data.delta, row.stock)
    movement = _movement(
        variant_id,
        "adjustment",
        data.delta,
        row.stock,
        now=utcnow(),
        reason=data.reason,
        actor_id=actor_id,
    )
    await session.execute(insert(table_of(StockMovement)), [movement])
    await record_audit(
        session,
        action="stock.adjusted",
        object_type="variant",
        object_id=variant_id,
        details={"delta": data.delta, "stock": row.stock},
    )
    return StockMovementRead(**movement)
