"""Tables of the orders room: cart lines, orders with their lines and status history, and
idempotency keys. Money is integer minor units; the shipping address is sealed personal data."""

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
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from emporium.core.clock import utcnow
from emporium.core.db.base import Base, UTCDateTime, new_id, sealed

STATUSES = ("pending", "paid", "fulfilled", "delivered", "cancelled", "refunded")
PAYMENT_STATUSES = (
    "unpaid",
    "authorized",
    "partially_paid",
    "paid",
    "partially_refunded",
    "refunded",
)
FULFILLMENT_STATUSES = (
    "unfulfilled",
    "partially_fulfilled",
    "fulfilled",
    "delivered",
    "partially_returned",
    "returned",
)
ORDER_TOKEN_PURPOSE = "order"  # noqa: S105 (the name of a token kind, not a secret)
"""What a guest order's token is hashed for (``accounts.tokens``), bound into its hash."""
PAID_STATUSES = ("paid", "fulfilled", "delivered")
"""Orders whose purchase counts as made (a ``verified_purchase`` review)."""


class Cart(Base):
    """A cart: a customer's (``customer_id``, one per account) or a guest's, whose holder
    proves it with a secret token stored only as ``token_hash``. E-mail and addresses are
    sealed personal data; the shipping method is the one chosen for the address."""

    __tablename__ = "cart"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), unique=True
    )
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    email_enc: Mapped[str | None] = sealed("email")
    shipping_address_enc: Mapped[str | None] = sealed("shipping_address")
    billing_address_enc: Mapped[str | None] = sealed("billing_address")
    shipping_method_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("shipping_method.id", ondelete="SET NULL")
    )
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("customer_id IS NOT NULL OR token_hash IS NOT NULL", name="has_holder"),
        Index("ix_cart_updated", "updated_at"),
    )


class CartItem(Base):
    """One variant in a cart; the price is read at display and checkout time."""

    __tablename__ = "cart_item"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    cart_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cart.id", ondelete="CASCADE"))
    variant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("variant.id", ondelete="CASCADE")
    )
    quantity: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("cart_id", "variant_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )


class CartPromotionCode(Base):
    """A promotion code entered on a cart (stored normalised: upper case, no spaces). It
    stays until removed; a code that stops applying is reported on the cart, not used."""

    __tablename__ = "cart_promotion_code"

    cart_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("cart.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def tax_rounding(amount: str, rate: str, included: str) -> str:
    """SQL for the contract's tax rule, ``amount * rate / 10000`` (or, with tax-inclusive
    prices, ``amount * rate / (10000 + rate)``) rounded half up, in integer arithmetic that
    SQLite and PostgreSQL evaluate alike: ``(2n + d) / 2d`` truncated is ``n / d`` rounded
    half up for ``n >= 0`` (``orders.pricing.tax_of`` computes the same in Python)."""
    return (
        f"CASE WHEN {included} THEN (2 * ({amount}) * {rate} + 10000 + {rate}) / "
        f"(2 * (10000 + {rate})) ELSE (2 * ({amount}) * {rate} + 10000) / 20000 END"
    )


def added_tax(tax: str, included: str) -> str:
    """SQL for the tax a total adds: ``tax`` when prices exclude tax, else nothing."""
    return f"CASE WHEN {included} THEN 0 ELSE {tax} END"


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Order(Base):
    """An order with every figure of its price, as ``orders.pricing`` computed it at
    checkout; CHECK constraints hold the contract's equations on each row (the sums over
    lines are the pricing function's, verified by the property tests).

    A guest's order has no ``customer_id``: its holder proves it with a secret token stored
    only as ``order_token_hash``. E-mail and addresses are sealed personal data;
    ``email_index`` is the e-mail's keyed blind index (staff search by e-mail).
    ``paid_total`` and ``refunded_total`` are minor units of ``currency``."""

    __tablename__ = "customer_order"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    customer_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="SET NULL")
    )
    subtotal: Mapped[int] = mapped_column(BigInteger)
    discount_total: Mapped[int] = mapped_column(BigInteger, default=0)
    shipping_total: Mapped[int] = mapped_column(BigInteger, default=0)
    shipping_tax_rate: Mapped[int] = mapped_column(Integer, default=0)
    shipping_tax_total: Mapped[int] = mapped_column(BigInteger, default=0)
    tax_total: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    prices_include_tax: Mapped[bool] = mapped_column(Boolean, default=False)
    shipping_method_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    shipping_method_name: Mapped[str | None] = mapped_column(String(200))
    shipping_address_enc: Mapped[str] = sealed("shipping_address")
    billing_address_enc: Mapped[str | None] = sealed("billing_address")
    email_enc: Mapped[str | None] = sealed("email")
    email_index: Mapped[str | None] = mapped_column(String(64), index=True)
    order_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    payment_status: Mapped[str] = mapped_column(String(20), default="unpaid")
    fulfillment_status: Mapped[str] = mapped_column(String(20), default="unfulfilled")
    paid_total: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_total: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    external_ref: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'paid', 'fulfilled', 'delivered', 'cancelled', 'refunded')",
            name="status_known",
        ),
        CheckConstraint(_one_of("payment_status", PAYMENT_STATUSES), name="payment_status_known"),
        CheckConstraint(
            _one_of("fulfillment_status", FULFILLMENT_STATUSES), name="fulfillment_status_known"
        ),
        CheckConstraint(
            "paid_total >= 0 AND refunded_total >= 0 AND refunded_total <= paid_total",
            name="refunds_within_payments",
        ),
        CheckConstraint("subtotal >= 0", name="subtotal_non_negative"),
        CheckConstraint(
            "discount_total >= 0 AND discount_total <= subtotal", name="discount_within_subtotal"
        ),
        CheckConstraint("shipping_total >= 0", name="shipping_non_negative"),
        CheckConstraint("shipping_tax_rate BETWEEN 0 AND 10000", name="shipping_tax_rate_range"),
        CheckConstraint(
            "shipping_tax_total = "
            + tax_rounding("shipping_total", "shipping_tax_rate", "prices_include_tax"),
            name="shipping_tax_rounded",
        ),
        CheckConstraint("tax_total >= shipping_tax_total", name="tax_includes_shipping_tax"),
        CheckConstraint(
            "total = subtotal - discount_total + shipping_total + "
            + added_tax("tax_total", "prices_include_tax"),
            name="total_equation",
        ),
        Index("ix_customer_order_customer", "customer_id", "created_at", "id"),
        Index("ix_customer_order_listing", "created_at", "id"),
    )


class OrderLine(Base):
    """One line of an order, with the SKU, title and unit price as they were at checkout,
    and its priced figures (``orders.pricing.PricedLine``); ``prices_include_tax`` repeats
    the order's so that the row's CHECKs can state the line's equations.

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
    subtotal: Mapped[int] = mapped_column(BigInteger)
    discount_total: Mapped[int] = mapped_column(BigInteger, default=0)
    tax_rate: Mapped[int] = mapped_column(Integer, default=0)
    tax_total: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger)
    prices_include_tax: Mapped[bool] = mapped_column(Boolean, default=False)
    quantity_fulfilled: Mapped[int] = mapped_column(Integer, default=0)
    quantity_returned: Mapped[int] = mapped_column(Integer, default=0)
    quantity_return_requested: Mapped[int] = mapped_column(Integer, default=0)
    """Units in returns that were asked for and not turned away: the returns room's
    race-proof counter (a conditional update, backed by ``return_requests_within_fulfilled``),
    at least ``quantity_returned`` and at most ``quantity_fulfilled``."""

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "quantity_fulfilled BETWEEN 0 AND quantity", name="fulfilled_within_quantity"
        ),
        CheckConstraint(
            "quantity_returned BETWEEN 0 AND quantity_fulfilled", name="returned_within_fulfilled"
        ),
        CheckConstraint(
            "quantity_return_requested BETWEEN quantity_returned AND quantity_fulfilled",
            name="return_requests_within_fulfilled",
        ),
        CheckConstraint("unit_price >= 0", name="unit_price_non_negative"),
        CheckConstraint("subtotal = unit_price * quantity", name="subtotal_product"),
        CheckConstraint(
            "discount_total >= 0 AND discount_total <= subtotal", name="discount_within_subtotal"
        ),
        CheckConstraint("tax_rate BETWEEN 0 AND 10000", name="tax_rate_range"),
        CheckConstraint(
            "tax_total = "
            + tax_rounding("subtotal - discount_total", "tax_rate", "prices_include_tax"),
            name="tax_rounded",
        ),
        CheckConstraint(
            "total = subtotal - discount_total + " + added_tax("tax_total", "prices_include_tax"),
            name="total_equation",
        ),
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


class OrderPromotion(Base):
    """A promotion an order holds, as it was at checkout: its ``code`` and ``name`` and the
    discount it gave (``amount``, minor units; for free shipping, the shipping price it
    waived), with the buyer's ``customer_key`` under which its use was counted (given back
    when the order is cancelled). The promotion itself may since be deleted."""

    __tablename__ = "order_promotion"

    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("customer_order.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    promotion_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("promotion.id", ondelete="SET NULL"), index=True
    )
    code: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    amount: Mapped[int] = mapped_column(BigInteger)
    customer_key: Mapped[str] = mapped_column(String(128))

    __table_args__ = (CheckConstraint("amount >= 0", name="amount_non_negative"),)


class IdempotencyKey(Base):
    """A client's ``Idempotency-Key`` for one principal: claimed while in flight (with a lease
    ``locked_until``), then holding the stored answer: ``status_code`` and the order it made
    (``order_id``; the body is rendered again from the order, so no personal data is kept
    here), and for a request that made something within an order (a payment), its id
    (``resource_id``)."""

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
    resource_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
