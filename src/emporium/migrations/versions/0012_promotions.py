"""promotions: promotion, promotion_customer_use, order_promotion, cart_promotion_code

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "promotion",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("category_ids", sa.JSON(), nullable=False),
        sa.Column("product_ids", sa.JSON(), nullable=False),
        sa.Column("min_subtotal", sa.BigInteger(), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("usage_limit", sa.Integer(), nullable=True),
        sa.Column("usage_limit_per_customer", sa.Integer(), nullable=True),
        sa.Column("times_used", sa.Integer(), nullable=False),
        sa.Column("combinable", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "type IN ('percentage', 'fixed_amount', 'free_shipping')",
            name=op.f("ck_promotion_type_known"),
        ),
        sa.CheckConstraint(
            "value >= 0 AND (type <> 'percentage' OR value <= 10000) "
            "AND (type <> 'free_shipping' OR value = 0)",
            name=op.f("ck_promotion_value_in_range"),
        ),
        sa.CheckConstraint(
            "min_subtotal IS NULL OR min_subtotal >= 0", name=op.f("ck_promotion_min_subtotal_ok")
        ),
        sa.CheckConstraint(
            "starts_at IS NULL OR ends_at IS NULL OR ends_at > starts_at",
            name=op.f("ck_promotion_dates_ordered"),
        ),
        sa.CheckConstraint(
            "times_used >= 0 AND (usage_limit IS NULL OR times_used <= usage_limit)",
            name=op.f("ck_promotion_times_used_within_limit"),
        ),
        sa.CheckConstraint(
            "usage_limit IS NULL OR usage_limit >= 0", name=op.f("ck_promotion_usage_limit_ok")
        ),
        sa.CheckConstraint(
            "usage_limit_per_customer IS NULL OR usage_limit_per_customer >= 0",
            name=op.f("ck_promotion_usage_limit_per_customer_ok"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion")),
        sa.UniqueConstraint("code", name=op.f("uq_promotion_code")),
    )
    with op.batch_alter_table("promotion", schema=None) as batch_op:
        batch_op.create_index("ix_promotion_automatic", ["active", "code"], unique=False)
        batch_op.create_index("ix_promotion_listing", ["created_at", "id"], unique=False)

    op.create_table(
        "promotion_customer_use",
        sa.Column("promotion_id", sa.Uuid(), nullable=False),
        sa.Column("customer_key", sa.String(length=128), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.CheckConstraint("uses >= 0", name=op.f("ck_promotion_customer_use_uses_non_negative")),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotion.id"],
            name=op.f("fk_promotion_customer_use_promotion_id_promotion"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "promotion_id", "customer_key", name=op.f("pk_promotion_customer_use")
        ),
    )
    op.create_table(
        "order_promotion",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("promotion_id", sa.Uuid(), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("customer_key", sa.String(length=128), nullable=False),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_order_promotion_amount_non_negative")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["customer_order.id"],
            name=op.f("fk_order_promotion_order_id_customer_order"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotion.id"],
            name=op.f("fk_order_promotion_promotion_id_promotion"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("order_id", "position", name=op.f("pk_order_promotion")),
    )
    with op.batch_alter_table("order_promotion", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_order_promotion_promotion_id"), ["promotion_id"], unique=False
        )

    op.create_table(
        "cart_promotion_code",
        sa.Column("cart_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cart_id"],
            ["cart.id"],
            name=op.f("fk_cart_promotion_code_cart_id_cart"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cart_id", "code", name=op.f("pk_cart_promotion_code")),
    )


def downgrade() -> None:
    op.drop_table("cart_promotion_code")
    with op.batch_alter_table("order_promotion", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_promotion_promotion_id"))

    op.drop_table("order_promotion")
    op.drop_table("promotion_customer_use")
    with op.batch_alter_table("promotion", schema=None) as batch_op:
        batch_op.drop_index("ix_promotion_listing")
        batch_op.drop_index("ix_promotion_automatic")

    op.drop_table("promotion")
