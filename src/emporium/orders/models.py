"""Tables of the orders room: cart lines, orders with their lines and status history, and
idempotency keys. Money is integer minor units; the shipping address is sealed personal data."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from emporium.core.clock import utcnow
from emporium.core.db import Base, UTCDateTime, new_id

STATUSES = ("pending", "paid", "fulfilled", "delivered", "cancelled", "refunded")
PAID_STATUSES = ("paid", "fulfilled", "delivered")
"""Orders whose purchase counts as made (a ``verified_purchase`` review)."""


class CartItem(Base):
    """One variant in a customer's cart; the price is read at display and checkout time."""

    __tablename__ = "cart_item"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="CASCADE")
    )
    variant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("variant.id", ondelete="CASCADE")
    )
    quantity: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("customer_id", "variant_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )


class Order(Base):
    """An order: its totals are computed by the server; ``total = subtotal`` (no shipping or
    tax yet), equal to the sum of its lines."""

    __tablename__ = "customer_order"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    customer_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="SET NULL")
    )
    subtotal: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    shipping_address_enc: Mapped[str] = mapped_column(Text)
    external_ref: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'paid', 'fulfilled', 'delivered', 'cancelled', 'refunded')",
            name="status_known",
        ),
        CheckConstraint("subtotal >= 0", name="subtotal_non_negative"),
        CheckConstraint("total = subtotal", name="total_is_subtotal"),
        Index("ix_customer_order_customer", "customer_id", "created_at", "id"),
        Index("ix_customer_order_listing", "created_at", "id"),
    )


class OrderLine(Base):
    """One line of an order, with the SKU, title and unit price as they were at checkout.

    A variant that was ordered cannot be deleted (``RESTRICT``): its product is archived
    instead, so orders, the ledger and verified reviews keep pointing at it."""

    __tablename__ = "order_line"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("customer_order.id", ondelete="CASCADE"), index=True
    )
    variant_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("variant.id", ondelete="RESTRICT"), index=True
    )
    product_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    position: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(512))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(BigInteger)
    line_total: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_non_negative"),
        CheckConstraint("line_total = unit_price * quantity", name="line_total_product"),
    )


class OrderStatusChange(Base):
    """One move of an order's status: from, to, who (user and role) and when."""

    __tablename__ = "order_status_change"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("customer_order.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdempotencyKey(Base):
    """A client's ``Idempotency-Key`` for one principal: claimed while in flight (with a lease
    ``locked_until``), then holding the stored answer: ``status_code`` and the order it made
    (``order_id``; the body is rendered again from the order, so no personal data is kept
    here)."""

    __tablename__ = "idempotency_key"

    scope: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    claim: Mapped[str | None] = mapped_column(String(32))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    order_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("customer_order.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
