"""API shapes of inventory: stock adjustments and the stock ledger."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct

MAX_ADJUSTMENT = 1_000_000

Delta = Annotated[
    int,
    Meta(
        ge=-MAX_ADJUSTMENT,
        le=MAX_ADJUSTMENT,
        description="units to add (positive) or remove (negative); not 0",
    ),
]
MovementKind = Literal["received", "adjustment", "sale", "return", "returned"]


class StockAdjustmentCreate(Struct, forbid_unknown_fields=True):
    """A staff correction of stock: ``delta`` units (not 0) and why."""

    delta: Delta
    reason: Annotated[str, Meta(min_length=1, max_length=500)]


class StockMovementRead(Struct):
    """One ledger row: ``delta`` units of ``kind``, the stock after it, why, who, when.

    For every variant, ``stock`` equals the sum of ``delta`` over its movements
    (received + adjustments - sold + returned). ``actor_id`` is the person's id, or the API
    key's for a change made with a key; None for imports and the system.
    """

    id: uuid.UUID
    variant_id: uuid.UUID
    kind: MovementKind
    delta: int
    stock_after: int
    reason: str
    order_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    created_at: datetime


class StockMovementPage(Struct):
    """A keyset page of a variant's movements, newest first."""

    items: list[StockMovementRead]
    next_cursor: str | None
