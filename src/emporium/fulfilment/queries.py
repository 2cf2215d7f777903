"""Reading parcels (writes nothing): an order's fulfilments with their lines."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.core.db.base import Reader, table_of
from emporium.fulfilment.models import Fulfillment, FulfillmentLine
from emporium.fulfilment.schemas import FulfillmentLineRead, FulfillmentRead
from emporium.orders.exceptions import OrderNotFound
from emporium.orders.models import Order

Db = AsyncSession | Reader
_F, _FL, _O = table_of(Fulfillment).c, table_of(FulfillmentLine).c, table_of(Order).c


async def _reads(db: Db, rows: Sequence[Any]) -> list[FulfillmentRead]:
    """The API shapes of ``fulfillment`` rows, their lines read in one query."""
    if not rows:
        return []
    lines: dict[Any, list[FulfillmentLineRead]] = defaultdict(list)
    found = await db.execute(
        select(_FL.fulfillment_id, _FL.order_line_id, _FL.quantity)
        .where(_FL.fulfillment_id.in_([r.id for r in rows]))
        .order_by(_FL.order_line_id)
    )
    for line in found:
        lines[line.fulfillment_id].append(FulfillmentLineRead(line.order_line_id, line.quantity))
    return [
        FulfillmentRead(
            id=r.id,
            order_id=r.order_id,
            status=r.status,
            carrier=r.carrier,
            tracking_number=r.tracking_number,
            tracking_url=r.tracking_url,
            lines=lines[r.id],
            shipped_at=r.shipped_at,
            delivered_at=r.delivered_at,
            created_at=r.created_at,
        )
        for r in rows
    ]


async def get_fulfillment(db: Db, fulfillment_id: uuid.UUID) -> FulfillmentRead | None:
    """One parcel, or None when there is no such parcel."""
    rows = list(await db.execute(select(table_of(Fulfillment)).where(_F.id == fulfillment_id)))
    reads = await _reads(db, rows)
    return reads[0] if reads else None


async def list_fulfillments(db: Db, order_id: uuid.UUID) -> list[FulfillmentRead]:
    """Staff: the order's parcels, oldest first. Raises OrderNotFound (404) when there is
    no such order."""
    if (await db.execute(select(_O.id).where(_O.id == order_id))).first() is None:
        raise OrderNotFound("No such order.")
    rows = list(
        await db.execute(
            select(table_of(Fulfillment))
            .where(_F.order_id == order_id)
            .order_by(_F.created_at, _F.id)
        )
    )
    return await _reads(db, rows)
