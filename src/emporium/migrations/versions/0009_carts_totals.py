"""carts: the totals model of orders (discount, tax, shipping) held by CHECK constraints;
shipping zones, methods and tax rates; products' tax_class and variants' weight_grams

Existing orders are carried over with no discount, shipping or tax: their lines' new
``total`` is their ``subtotal`` (v1's ``line_total``, renamed), so every new equation holds.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 12:40:00
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tax(amount: str, rate: str, included: str) -> str:
    # orders.models.tax_rounding, frozen here: the tax rule rounded half up in integers.
    return (
        f"CASE WHEN {included} THEN (2 * ({amount}) * {rate} + 10000 + {rate}) / "
        f"(2 * (10000 + {rate})) ELSE (2 * ({amount}) * {rate} + 10000) / 20000 END"
    )


def _added(tax: str, included: str) -> str:
    return f"CASE WHEN {included} THEN 0 ELSE {tax} END"


LINE_CHECKS = {
    "subtotal_product": "subtotal = unit_price * quantity",
    "discount_within_subtotal": "discount_total >= 0 AND discount_total <= subtotal",
    "tax_rate_range": "tax_rate BETWEEN 0 AND 10000",
    "tax_rounded": "tax_total = "
    + _tax("subtotal - discount_total", "tax_rate", "prices_include_tax"),
    "total_equation": "total = subtotal - discount_total + "
    + _added("tax_total", "prices_include_tax"),
}
ORDER_CHECKS = {
    "discount_within_subtotal": "discount_total >= 0 AND discount_total <= subtotal",
    "shipping_non_negative": "shipping_total >= 0",
    "shipping_tax_rate_range": "shipping_tax_rate BETWEEN 0 AND 10000",
    "shipping_tax_rounded": "shipping_tax_total = "
    + _tax("shipping_total", "shipping_tax_rate", "prices_include_tax"),
    "tax_includes_shipping_tax": "tax_total >= shipping_tax_total",
    "total_equation": "total = subtotal - discount_total + shipping_total + "
    + _added("tax_total", "prices_include_tax"),
}
ZERO = sa.text("0")


def _money(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=False, server_default=ZERO)


def _upgrade_lines() -> None:
    with op.batch_alter_table("order_line", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_order_line_line_total_product"), type_="check")
        batch_op.alter_column("line_total", new_column_name="subtotal")
        batch_op.add_column(_money("discount_total"))
        batch_op.add_column(
            sa.Column("tax_rate", sa.Integer(), nullable=False, server_default=ZERO)
        )
        batch_op.add_column(_money("tax_total"))
        batch_op.add_column(_money("total"))
        batch_op.add_column(
            sa.Column("prices_include_tax", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute("UPDATE order_line SET total = subtotal")
    with op.batch_alter_table("order_line", schema=None) as batch_op:
        for column in ("discount_total", "tax_rate", "tax_total", "total", "prices_include_tax"):
            batch_op.alter_column(column, server_default=None)
        for name, sql in LINE_CHECKS.items():
            batch_op.create_check_constraint(op.f(f"ck_order_line_{name}"), sql)


def _upgrade_orders() -> None:
    with op.batch_alter_table("customer_order", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_customer_order_total_is_subtotal"), type_="check")
        for name in ("discount_total", "shipping_total", "shipping_tax_total", "tax_total"):
            batch_op.add_column(_money(name))
        batch_op.add_column(
            sa.Column("shipping_tax_rate", sa.Integer(), nullable=False, server_default=ZERO)
        )
        batch_op.add_column(
            sa.Column("prices_include_tax", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("shipping_method_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("shipping_method_name", sa.String(200), nullable=True))
    with op.batch_alter_table("customer_order", schema=None) as batch_op:
        for column in (
            "discount_total",
            "shipping_total",
            "shipping_tax_total",
            "tax_total",
            "shipping_tax_rate",
            "prices_include_tax",
        ):
            batch_op.alter_column(column, server_default=None)
        for name, sql in ORDER_CHECKS.items():
            batch_op.create_check_constraint(op.f(f"ck_customer_order_{name}"), sql)


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def _create_shipping() -> None:
    op.create_table(
        "shipping_zone",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("countries", sa.JSON(), nullable=False),
        sa.Column("regions", sa.JSON(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipping_zone")),
    )
    op.create_index("ix_shipping_zone_listing", "shipping_zone", ["created_at", "id"])
    op.create_table(
        "shipping_method",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("zone_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("carrier", sa.String(length=100), nullable=True),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("free_over", sa.BigInteger(), nullable=True),
        sa.Column("min_weight_grams", sa.Integer(), nullable=True),
        sa.Column("max_weight_grams", sa.Integer(), nullable=True),
        sa.Column("tax_class", sa.String(length=50), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("delivery_days_min", sa.Integer(), nullable=True),
        sa.Column("delivery_days_max", sa.Integer(), nullable=True),
        *_timestamps(),
        sa.CheckConstraint("price >= 0", name=op.f("ck_shipping_method_price_non_negative")),
        sa.CheckConstraint(
            "free_over IS NULL OR free_over >= 0",
            name=op.f("ck_shipping_method_free_over_non_negative"),
        ),
        sa.CheckConstraint(
            "(min_weight_grams IS NULL OR min_weight_grams >= 0) AND (max_weight_grams IS NULL "
            "OR max_weight_grams >= coalesce(min_weight_grams, 0))",
            name=op.f("ck_shipping_method_weight_range"),
        ),
        sa.CheckConstraint(
            "(delivery_days_min IS NULL) = (delivery_days_max IS NULL) AND "
            "(delivery_days_min IS NULL OR (delivery_days_min >= 0 AND "
            "delivery_days_max >= delivery_days_min))",
            name=op.f("ck_shipping_method_delivery_days_range"),
        ),
        sa.ForeignKeyConstraint(
            ["zone_id"],
            ["shipping_zone.id"],
            name=op.f("fk_shipping_method_zone_id_shipping_zone"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipping_method")),
    )
    op.create_index("ix_shipping_method_listing", "shipping_method", ["created_at", "id"])
    op.create_index(op.f("ix_shipping_method_zone_id"), "shipping_method", ["zone_id"])
    op.create_table(
        "tax_rate",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("tax_class", sa.String(length=50), nullable=False),
        sa.Column("rate_bp", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        *_timestamps(),
        sa.CheckConstraint("rate_bp BETWEEN 0 AND 10000", name=op.f("ck_tax_rate_rate_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tax_rate")),
        sa.UniqueConstraint("country", "region", "tax_class", name="uq_tax_rate_place_class"),
    )
    op.create_index("ix_tax_rate_listing", "tax_rate", ["created_at", "id"])


def _upgrade_catalog() -> None:
    # Plain ADD COLUMN: a batch "move and copy" of ``product`` on SQLite would drop the
    # full-text triggers that migration 0001 put on it.
    op.add_column(
        "product",
        sa.Column("tax_class", sa.String(length=50), nullable=False, server_default="standard"),
    )
    with op.batch_alter_table("variant", schema=None) as batch_op:
        batch_op.add_column(sa.Column("weight_grams", sa.Integer(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_variant_weight_non_negative"), "weight_grams IS NULL OR weight_grams >= 0"
        )


def _create_carts() -> None:
    op.create_table(
        "cart",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("email_enc", sa.Text(), nullable=True),
        sa.Column("shipping_address_enc", sa.Text(), nullable=True),
        sa.Column("billing_address_enc", sa.Text(), nullable=True),
        sa.Column("shipping_method_id", sa.Uuid(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        *_timestamps(),
        sa.CheckConstraint(
            "customer_id IS NOT NULL OR token_hash IS NOT NULL", name=op.f("ck_cart_has_holder")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["user_account.id"],
            name=op.f("fk_cart_customer_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["shipping_method_id"],
            ["shipping_method.id"],
            name=op.f("fk_cart_shipping_method_id_shipping_method"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cart")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_cart_customer_id")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_cart_token_hash")),
    )
    op.create_index("ix_cart_updated", "cart", ["updated_at"])


def _move_cart_items() -> None:
    """v1 cart lines belonged to a customer; they now belong to that customer's cart."""
    with op.batch_alter_table("cart_item", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cart_id", sa.Uuid(), nullable=True))
    conn = op.get_bind()
    owners = conn.execute(
        sa.text(
            "SELECT ci.customer_id, min(v.currency) FROM cart_item ci "
            "JOIN variant v ON v.id = ci.variant_id GROUP BY ci.customer_id"
        )
    ).all()
    cart = sa.table(
        "cart",
        sa.column("id", sa.Uuid()),
        sa.column("customer_id", sa.Uuid()),
        sa.column("currency", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    item = sa.table(
        "cart_item", sa.column("cart_id", sa.Uuid()), sa.column("customer_id", sa.Uuid())
    )
    now = datetime.now(UTC)
    for raw_customer_id, currency in owners:
        # SQLite answers a plain SELECT with the stored hex text, PostgreSQL with a UUID.
        customer_id = uuid.UUID(str(raw_customer_id))
        cart_id = uuid.uuid4()
        conn.execute(
            sa.insert(cart).values(
                id=cart_id,
                customer_id=customer_id,
                currency=currency,
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            sa.update(item).where(item.c.customer_id == customer_id).values(cart_id=cart_id)
        )
    with op.batch_alter_table("cart_item", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_cart_item_customer_id"), type_="unique")
        batch_op.drop_constraint(op.f("fk_cart_item_customer_id_user_account"), type_="foreignkey")
        batch_op.drop_column("customer_id")
        batch_op.alter_column("cart_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.create_foreign_key(
            op.f("fk_cart_item_cart_id_cart"), "cart", ["cart_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_unique_constraint(op.f("uq_cart_item_cart_id"), ["cart_id", "variant_id"])


def upgrade() -> None:
    _upgrade_lines()
    _upgrade_orders()
    _create_shipping()
    _upgrade_catalog()
    _create_carts()
    _move_cart_items()


def downgrade() -> None:
    with op.batch_alter_table("cart_item", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_id", sa.Uuid(), nullable=True))
    op.execute(
        "UPDATE cart_item SET customer_id = (SELECT c.customer_id FROM cart c "
        "WHERE c.id = cart_item.cart_id)"
    )
    op.execute("DELETE FROM cart_item WHERE customer_id IS NULL")  # guest carts are dropped
    with op.batch_alter_table("cart_item", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_cart_item_cart_id"), type_="unique")
        batch_op.drop_constraint(op.f("fk_cart_item_cart_id_cart"), type_="foreignkey")
        batch_op.drop_column("cart_id")
        batch_op.alter_column("customer_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.create_foreign_key(
            op.f("fk_cart_item_customer_id_user_account"),
            "user_account",
            ["customer_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_unique_constraint(
            op.f("uq_cart_item_customer_id"), ["customer_id", "variant_id"]
        )
    op.drop_table("cart")
    with op.batch_alter_table("variant", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_variant_weight_non_negative"), type_="check")
        batch_op.drop_column("weight_grams")
    op.drop_column("product", "tax_class")
    op.drop_table("tax_rate")
    op.drop_table("shipping_method")
    op.drop_table("shipping_zone")
    with op.batch_alter_table("customer_order", schema=None) as batch_op:
        for name in ORDER_CHECKS:
            batch_op.drop_constraint(op.f(f"ck_customer_order_{name}"), type_="check")
        for column in (
            "discount_total",
            "shipping_total",
            "shipping_tax_total",
            "tax_total",
            "shipping_tax_rate",
            "prices_include_tax",
            "shipping_method_id",
            "shipping_method_name",
        ):
            batch_op.drop_column(column)
        batch_op.create_check_constraint(
            op.f("ck_customer_order_total_is_subtotal"), "total = subtotal"
        )
    with op.batch_alter_table("order_line", schema=None) as batch_op:
        for name in LINE_CHECKS:
            batch_op.drop_constraint(op.f(f"ck_order_line_{name}"), type_="check")
        for column in ("discount_total", "tax_rate", "tax_total", "total", "prices_include_tax"):
            batch_op.drop_column(column)
        batch_op.alter_column("subtotal", new_column_name="line_total")
        batch_op.create_check_constraint(
            op.f("ck_order_line_line_total_product"), "line_total = unit_price * quantity"
        )
