"""Tables of the payments room: payments, refunds, the provider events applied, the money
history of each order, and the built-in test provider's own intents. Money is integer minor
units of ``currency``; a payment's ``client_secret`` is sealed."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from emporium.core.clock import utcnow
from emporium.core.db.base import Base, UTCDateTime, new_id, sealed

PAYMENT_STATES = ("pending", "requires_action", "authorized", "captured", "failed", "cancelled")
OPEN_STATES = ("pending", "requires_action", "authorized")
"""Payments that may still take money: they count against the order's unpaid balance."""
REFUND_STATES = ("pending", "succeeded", "failed")
CHANGE_KINDS = (
    "created",
    "requires_action",
    "authorized",
    "captured",
    "failed",
    "cancelled",
    "refund_requested",
    "refunded",
    "refund_failed",
)
SOURCES = ("client", "webhook", "staff", "reconcile", "expiry", "system")


def one_of(column: str, values: tuple[str, ...]) -> str:
    """SQL ``column IN ('a', 'b')`` for a CHECK constraint."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Payment(Base):
    """One attempt to take (part of) an order's money through a provider.

    ``amount`` is what was asked, ``captured_amount`` what was taken, ``refunded_amount``
    what was given back or is being given back (reserved by a pending refund); the CHECKs
    ``0 <= refunded_amount <= captured_amount <= amount`` are what make a concurrent
    over-refund impossible. ``reference`` is the provider's id (unique per provider)."""

    __tablename__ = "payment"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("customer_order.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    amount: Mapped[int] = mapped_column(BigInteger)
    captured_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str | None] = mapped_column(String(255))
    payment_method: Mapped[str | None] = mapped_column(String(64))
    client_secret_enc: Mapped[str | None] = sealed("client_secret")
    failure_code: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint(one_of("status", PAYMENT_STATES), name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "captured_amount >= 0 AND captured_amount <= amount", name="captured_within_amount"
        ),
        CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= captured_amount",
            name="refunded_within_captured",
        ),
        UniqueConstraint("provider", "reference"),
        Index("ix_payment_open", "status", "updated_at"),
    )


class Refund(Base):
    """Money given back from one payment: ``pending`` while reserved on the payment and
    asked of the provider, then ``succeeded`` or ``failed`` (the reservation released)."""

    __tablename__ = "refund"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    payment_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("payment.id", ondelete="CASCADE"), index=True
    )
    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("customer_order.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    reason: Mapped[str] = mapped_column(String(500))
    reference: Mapped[str | None] = mapped_column(String(255))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint(one_of("status", REFUND_STATES), name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        UniqueConstraint("provider", "reference"),
    )


class PaymentEvent(Base):
    """A provider event that was applied: each ``(provider, event_id)`` once."""

    __tablename__ = "payment_event"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    provider: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("provider", "event_id"),)


class PaymentChange(Base):
    """One move in an order's money history: what (``kind``), how much (``amount``, minor
    units; 0 for a change of state only), through what (``source``), who and when."""

    __tablename__ = "payment_change"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("customer_order.id", ondelete="CASCADE")
    )
    payment_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("payment.id", ondelete="CASCADE"), index=True
    )
    refund_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("refund.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    source: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_role: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint(one_of("kind", CHANGE_KINDS), name="kind_known"),
        CheckConstraint(one_of("source", SOURCES), name="source_known"),
        CheckConstraint("amount >= 0", name="amount_non_negative"),
        Index("ix_payment_change_order", "order_id", "created_at"),
    )


class TestProviderIntent(Base):
    """The built-in ``test`` provider's own state of one intent (what Stripe keeps on its
    side): written only by ``payments.providers.test``, in its own transactions."""

    __tablename__ = "test_provider_intent"
    __test__ = False  # not a pytest test class

    reference: Mapped[str] = mapped_column(String(64), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    payment_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int] = mapped_column(BigInteger)
    captured_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    payment_method: Mapped[str | None] = mapped_column(String(64))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint(one_of("status", PAYMENT_STATES), name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )


class TestProviderRefund(Base):
    """A refund at the built-in ``test`` provider, once per idempotency key."""

    __tablename__ = "test_provider_refund"
    __test__ = False  # not a pytest test class

    reference: Mapped[str] = mapped_column(String(64), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    intent_reference: Mapped[str] = mapped_column(
        String(64), ForeignKey("test_provider_intent.reference", ondelete="CASCADE")
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    refund_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
