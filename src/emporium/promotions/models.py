"""Tables of the promotions room. Money is integer minor units; percentages are basis points."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from emporium.core.clock import utcnow
from emporium.core.db.base import Base, UTCDateTime, new_id

PROMOTION_TYPES = ("percentage", "fixed_amount", "free_shipping")


def one_of(column: str, values: tuple[str, ...]) -> str:
    """A CHECK clause: ``column`` holds one of ``values``."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Promotion(Base):
    """A discount: ``percentage`` (``value`` basis points, 1000 = 10 %), ``fixed_amount``
    (``value`` minor units of ``currency``) or ``free_shipping`` (``value`` 0), on the whole
    order or on the lines of ``category_ids`` (sub-categories included) or ``product_ids``;
    from ``min_subtotal`` (goods' subtotal before discounts); between ``starts_at`` and
    ``ends_at``; at most ``usage_limit`` orders in all and ``usage_limit_per_customer`` per
    buyer. Without ``code`` it applies by itself. ``times_used`` counts the orders that hold
    it (given back when one is cancelled); the database keeps it within ``usage_limit``."""

    __tablename__ = "promotion"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    code: Mapped[str | None] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(20))
    value: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    category_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    product_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    min_subtotal: Mapped[int | None] = mapped_column(BigInteger)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    usage_limit: Mapped[int | None] = mapped_column(Integer)
    usage_limit_per_customer: Mapped[int | None] = mapped_column(Integer)
    times_used: Mapped[int] = mapped_column(Integer, default=0)
    combinable: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint(one_of("type", PROMOTION_TYPES), name="type_known"),
        CheckConstraint(
            "value >= 0 AND (type <> 'percentage' OR value <= 10000) "
            "AND (type <> 'free_shipping' OR value = 0)",
            name="value_in_range",
        ),
        CheckConstraint("min_subtotal IS NULL OR min_subtotal >= 0", name="min_subtotal_ok"),
        CheckConstraint(
            "starts_at IS NULL OR ends_at IS NULL OR ends_at > starts_at", name="dates_ordered"
        ),
        CheckConstraint("usage_limit IS NULL OR usage_limit >= 0", name="usage_limit_ok"),
        CheckConstraint(
            "usage_limit_per_customer IS NULL OR usage_limit_per_customer >= 0",
            name="usage_limit_per_customer_ok",
        ),
        CheckConstraint(
            "times_used >= 0 AND (usage_limit IS NULL OR times_used <= usage_limit)",
            name="times_used_within_limit",
        ),
        Index("ix_promotion_listing", "created_at", "id"),
        Index("ix_promotion_automatic", "active", "code"),
    )


class PromotionCustomerUse(Base):
    """How many orders of one buyer hold a promotion: ``customer_key`` is the keyed hash of
    the buyer's e-mail (the order's ``email_index``), so a guest and a customer with the
    same e-mail count as one. The database keeps ``uses`` non-negative; the per-customer
    limit is enforced by the conditional update that takes a use (``usage``)."""

    __tablename__ = "promotion_customer_use"

    promotion_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("promotion.id", ondelete="CASCADE"), primary_key=True
    )
    customer_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    uses: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (CheckConstraint("uses >= 0", name="uses_non_negative"),)
