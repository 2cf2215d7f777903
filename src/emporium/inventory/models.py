"""The stock ledger: one row per change to a variant's stock."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from emporium.core.clock import utcnow
from emporium.core.db.base import Base, UTCDateTime, new_id

KINDS = ("received", "adjustment", "sale", "return", "returned")
"""``received``: initial stock and imports; ``adjustment``: staff corrections; ``sale``:
taken by an order (negative); ``return``: given back by a cancelled or refunded order
(the units never left); ``returned``: units a customer sent back, restocked by staff."""


class StockMovement(Base):
    """One change to one variant's stock: ``delta`` units, the stock after it, why and who."""

    __tablename__ = "stock_movement"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    variant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("variant.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(20))
    delta: Mapped[int] = mapped_column(Integer)
    stock_after: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(500), default="")
    order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint(
            "kind IN ('received', 'adjustment', 'sale', 'return', 'returned')", name="kind_known"
        ),
        CheckConstraint("delta <> 0", name="delta_not_zero"),
        CheckConstraint("stock_after >= 0", name="stock_after_non_negative"),
        Index("ix_stock_movement_variant_listing", "variant_id", "created_at", "id"),
    )
