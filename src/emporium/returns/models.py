"""Tables of the returns room: a return asked for on an order, and its lines."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from emporium.core.clock import utcnow
from emporium.core.db.base import Base, UTCDateTime, new_id

STATUSES = ("requested", "received", "refunded")
"""``requested``: asked for, the parcel not yet in; ``received``: staff counted it in, line
by line; ``refunded``: the money for the received units was sent back."""


class OrderReturn(Base):
    """A return of some of an order's shipped units: who asked (``requested_by``: the
    role, ``customer``, ``guest`` or ``staff``), why, where it stands, and once refunded the
    refund (``refund_id``: the first of its refunds, gift card first) and
    ``amount_refunded`` (minor units of the order's currency). ``include_shipping`` marks
    the one return of an order whose refund gave the shipping back (a partial unique index
    keeps it to one)."""

    __tablename__ = "order_return"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("customer_order.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(String(20), default="requested")
    requested_by: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(500))
    refund_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    include_shipping: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("status IN ('requested', 'received', 'refunded')", name="status_known"),
        CheckConstraint("amount_refunded >= 0", name="amount_refunded_non_negative"),
        Index("ix_order_return_order", "order_id", "created_at", "id"),
        Index(
            "uq_order_return_shipping_once",
            "order_id",
            unique=True,
            sqlite_where=text("include_shipping"),
            postgresql_where=text("include_shipping"),
        ),
    )


class ReturnLine(Base):
    """Units of one order line in a return: ``quantity`` asked for, ``quantity_received``
    counted in by staff, of which ``restocked`` went back on the shelf (the rest were
    damaged), and the customer's ``reason``."""

    __tablename__ = "return_line"

    return_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("order_return.id", ondelete="CASCADE"), primary_key=True
    )
    order_line_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("order_line.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    quantity: Mapped[int] = mapped_column(Integer)
    quantity_received: Mapped[int] = mapped_column(Integer, default=0)
    restocked: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(500), default="")

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "quantity_received BETWEEN 0 AND quantity", name="received_within_quantity"
        ),
        CheckConstraint("restocked BETWEEN 0 AND quantity_received", name="restocked_within"),
    )
