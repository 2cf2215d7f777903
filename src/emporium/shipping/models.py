"""Tables of the shipping room. Money is integer minor units; rates are basis points."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
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
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from emporium.core.clock import utcnow
from emporium.core.db.base import Base, UTCDateTime, new_id


def in_zone(
    countries: Sequence[str], regions: Sequence[str], country: str, region: str | None
) -> bool:
    """True when an address in ``country`` (and ISO 3166-2 ``region``) is in a zone of those
    ``countries`` and ``regions``."""
    return country in countries or (region is not None and region in regions)


class ShippingZone(Base):
    """Where methods ship: whole countries (ISO 3166-1 alpha-2) and/or subdivisions
    (ISO 3166-2, e.g. ``US-CA``)."""

    __tablename__ = "shipping_zone"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    countries: Mapped[list[str]] = mapped_column(JSON, default=list)
    regions: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_shipping_zone_listing", "created_at", "id"),)

    def serves(self, country: str, region: str | None) -> bool:
        """True when an address in ``country`` (and ISO 3166-2 ``region``) is in the zone."""
        return in_zone(self.countries, self.regions, country, region)


class ShippingMethod(Base):
    """A flat-rate method of a zone: ``price`` unless the discounted subtotal reaches
    ``free_over``; serves carts whose weight is within ``[min_weight_grams,
    max_weight_grams]`` (either bound optional); its price is taxed at its ``tax_class``."""

    __tablename__ = "shipping_method"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    zone_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("shipping_zone.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    carrier: Mapped[str | None] = mapped_column(String(100))
    price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    free_over: Mapped[int | None] = mapped_column(BigInteger)
    min_weight_grams: Mapped[int | None] = mapped_column(Integer)
    max_weight_grams: Mapped[int | None] = mapped_column(Integer)
    tax_class: Mapped[str] = mapped_column(String(50), default="standard")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    delivery_days_min: Mapped[int | None] = mapped_column(Integer)
    delivery_days_max: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("price >= 0", name="price_non_negative"),
        CheckConstraint("free_over IS NULL OR free_over >= 0", name="free_over_non_negative"),
        CheckConstraint(
            "(min_weight_grams IS NULL OR min_weight_grams >= 0) AND (max_weight_grams IS NULL "
            "OR max_weight_grams >= coalesce(min_weight_grams, 0))",
            name="weight_range",
        ),
        CheckConstraint(
            "(delivery_days_min IS NULL) = (delivery_days_max IS NULL) AND "
            "(delivery_days_min IS NULL OR (delivery_days_min >= 0 AND "
            "delivery_days_max >= delivery_days_min))",
            name="delivery_days_range",
        ),
        Index("ix_shipping_method_listing", "created_at", "id"),
    )


class TaxRate(Base):
    """A tax rate in basis points for one tax class in a country or, when ``region`` is not
    empty, in one of its subdivisions (which replaces the country's rate there)."""

    __tablename__ = "tax_rate"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str] = mapped_column(String(6), default="")
    tax_class: Mapped[str] = mapped_column(String(50))
    rate_bp: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("country", "region", "tax_class", name="uq_tax_rate_place_class"),
        CheckConstraint("rate_bp BETWEEN 0 AND 10000", name="rate_range"),
        Index("ix_tax_rate_listing", "created_at", "id"),
    )
