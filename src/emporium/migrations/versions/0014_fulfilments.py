"""fulfilments: fulfillment, fulfillment_line

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 23:34:25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fulfillment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("carrier", sa.String(length=100), nullable=True),
        sa.Column("tracking_number", sa.String(length=100), nullable=True),
        sa.Column("tracking_url", sa.String(length=2000), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(status = 'delivered') = (delivered_at IS NOT NULL)",
            name=op.f("ck_fulfillment_delivered_when"),
        ),
        sa.CheckConstraint(
            "status IN ('shipped', 'delivered')", name=op.f("ck_fulfillment_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["customer_order.id"],
            name=op.f("fk_fulfillment_order_id_customer_order"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fulfillment")),
    )
    with op.batch_alter_table("fulfillment", schema=None) as batch_op:
        batch_op.create_index(
            "ix_fulfillment_order", ["order_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "fulfillment_line",
        sa.Column("fulfillment_id", sa.Uuid(), nullable=False),
        sa.Column("order_line_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_fulfillment_line_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["fulfillment_id"],
            ["fulfillment.id"],
            name=op.f("fk_fulfillment_line_fulfillment_id_fulfillment"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["order_line_id"],
            ["order_line.id"],
            name=op.f("fk_fulfillment_line_order_line_id_order_line"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "fulfillment_id", "order_line_id", name=op.f("pk_fulfillment_line")
        ),
    )
    with op.batch_alter_table("fulfillment_line", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fulfillment_line_order_line_id"), ["order_line_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("fulfillment_line", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fulfillment_line_order_line_id"))
    op.drop_table("fulfillment_line")
    with op.batch_alter_table("fulfillment", schema=None) as batch_op:
        batch_op.drop_index("ix_fulfillment_order")
    op.drop_table("fulfillment")
