"""Tables of the fulfilment room: parcels (``fulfillment``) and the units each carries
(``fulfillment_line``). Carrier and tracking are no personal data: they name a parcel, not a
person, and go to the customer and to webhooks as they are."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from emporium.core.clock import utcnow
from emporium.core.db.base import Base, UTCDateTime, new_id

STATUSES = ("shipped", "delivered")
TRACKING_URL_MAX = 2000


class Fulfillment(Base):
    """One parcel of an order: ``shipped`` when made (``shipped_at``), ``delivered`` when
    staff mark it so (``delivered_at``); ``created_by`` is the staff member or API key that
    shipped it. ``tracking_url`` is an ``https`` URL (checked on the way in)."""

    __tablename__ = "fulfillment"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("customer_order.id", ondelete="CASCADE")
    )
    carrier: Mapped[str | None] = mapped_column(String(100))
    tracking_number: Mapped[str | None] = mapped_column(String(100))
    tracking_url: Mapped[str | None] = mapped_column(String(TRACKING_URL_MAX))
    status: Mapped[str] = mapped_column(String(20), default="shipped")
    shipped_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("status IN ('shipped', 'delivered')", name="status_known"),
        CheckConstraint(
            "(status = 'delivered') = (delivered_at IS NOT NULL)", name="delivered_when"
        ),
        Index("ix_fulfillment_order", "order_id", "created_at", "id"),
    )


class FulfillmentLine(Base):
    """``quantity`` units of one order line in one parcel (at least one)."""

    __tablename__ = "fulfillment_line"

    fulfillment_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("fulfillment.id", ondelete="CASCADE"), primary_key=True
    )
    order_line_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("order_line.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    quantity: Mapped[int] = mapped_column(Integer)

    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)
