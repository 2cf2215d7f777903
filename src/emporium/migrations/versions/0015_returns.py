"""returns: order_return, return_line, order_line.quantity_return_requested, the
``returned`` stock movement

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 23:32:55
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS_BEFORE = "kind IN ('received', 'adjustment', 'sale', 'return')"
KINDS_AFTER = "kind IN ('received', 'adjustment', 'sale', 'return', 'returned')"
REQUESTS_CHECK = "quantity_return_requested BETWEEN quantity_returned AND quantity_fulfilled"


def _create_returns() -> None:
    op.create_table(
        "order_return",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("refund_id", sa.Uuid(), nullable=True),
        sa.Column("amount_refunded", sa.BigInteger(), nullable=False),
        sa.Column("include_shipping", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('requested', 'received', 'refunded')",
            name=op.f("ck_order_return_status_known"),
        ),
        sa.CheckConstraint(
            "amount_refunded >= 0", name=op.f("ck_order_return_amount_refunded_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["customer_order.id"],
            name=op.f("fk_order_return_order_id_customer_order"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_return")),
    )
    with op.batch_alter_table("order_return", schema=None) as batch_op:
        batch_op.create_index(
            "ix_order_return_order", ["order_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "uq_order_return_shipping_once",
            ["order_id"],
            unique=True,
            sqlite_where=sa.text("include_shipping"),
            postgresql_where=sa.text("include_shipping"),
        )
    op.create_table(
        "return_line",
        sa.Column("return_id", sa.Uuid(), nullable=False),
        sa.Column("order_line_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("quantity_received", sa.Integer(), nullable=False),
        sa.Column("restocked", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_return_line_quantity_positive")),
        sa.CheckConstraint(
            "quantity_received BETWEEN 0 AND quantity",
            name=op.f("ck_return_line_received_within_quantity"),
        ),
        sa.CheckConstraint(
            "restocked BETWEEN 0 AND quantity_received",
            name=op.f("ck_return_line_restocked_within"),
        ),
        sa.ForeignKeyConstraint(
            ["order_line_id"],
            ["order_line.id"],
            name=op.f("fk_return_line_order_line_id_order_line"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["return_id"],
            ["order_return.id"],
            name=op.f("fk_return_line_return_id_order_return"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("return_id", "order_line_id", name=op.f("pk_return_line")),
    )
    with op.batch_alter_table("return_line", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_return_line_order_line_id"), ["order_line_id"], unique=False
        )


def upgrade() -> None:
    _create_returns()
    with op.batch_alter_table("order_line", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "quantity_return_requested",
                sa.Integer(),
                nullable=False,
                server_default=sa.text("0"),
            )
        )
    with op.batch_alter_table("order_line", schema=None) as batch_op:
        batch_op.alter_column("quantity_return_requested", server_default=None)
        batch_op.create_check_constraint(
            op.f("ck_order_line_return_requests_within_fulfilled"), REQUESTS_CHECK
        )
    with op.batch_alter_table("stock_movement", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_stock_movement_kind_known"), type_="check")
        batch_op.create_check_constraint(op.f("ck_stock_movement_kind_known"), KINDS_AFTER)


def downgrade() -> None:
    op.execute("UPDATE stock_movement SET kind = 'return' WHERE kind = 'returned'")
    with op.batch_alter_table("stock_movement", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_stock_movement_kind_known"), type_="check")
        batch_op.create_check_constraint(op.f("ck_stock_movement_kind_known"), KINDS_BEFORE)
    with op.batch_alter_table("order_line", schema=None) as batch_op:
        batch_op.drop_constraint(
            op.f("ck_order_line_return_requests_within_fulfilled"), type_="check"
        )
        batch_op.drop_column("quantity_return_requested")
    op.drop_table("return_line")
    op.drop_table("order_return")
