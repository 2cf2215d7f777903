"""guest orders: e-mail, billing address and order token on orders; payment and fulfilment
status with paid and refunded totals; fulfilled and returned quantities on lines

Existing orders are carried over from their status: ``paid``, ``fulfilled`` and
``delivered`` orders were paid in full (``paid_total = total``), ``refunded`` ones refunded
in full; ``fulfilled`` and ``delivered`` orders shipped every unit. Their e-mail stays null
(v1 orders had none; the account has it).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 15:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAYMENT = ("unpaid", "authorized", "partially_paid", "paid", "partially_refunded", "refunded")
FULFILLMENT = (
    "unfulfilled",
    "partially_fulfilled",
    "fulfilled",
    "delivered",
    "partially_returned",
    "returned",
)
ZERO = sa.text("0")
NEW_ORDER_COLUMNS = (
    "expires_at",
    "refunded_total",
    "paid_total",
    "fulfillment_status",
    "payment_status",
    "order_token_hash",
    "email_index",
    "email_enc",
    "billing_address_enc",
)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


ORDER_CHECKS = {
    "payment_status_known": _one_of("payment_status", PAYMENT),
    "fulfillment_status_known": _one_of("fulfillment_status", FULFILLMENT),
    "refunds_within_payments": (
        "paid_total >= 0 AND refunded_total >= 0 AND refunded_total <= paid_total"
    ),
}
LINE_CHECKS = {
    "fulfilled_within_quantity": "quantity_fulfilled BETWEEN 0 AND quantity",
    "returned_within_fulfilled": "quantity_returned BETWEEN 0 AND quantity_fulfilled",
}


def upgrade() -> None:
    with op.batch_alter_table("customer_order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("billing_address_enc", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("email_enc", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("email_index", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("order_token_hash", sa.String(64), nullable=True))
        batch_op.add_column(
            sa.Column("payment_status", sa.String(20), nullable=False, server_default="unpaid")
        )
        batch_op.add_column(
            sa.Column(
                "fulfillment_status", sa.String(20), nullable=False, server_default="unfulfilled"
            )
        )
        batch_op.add_column(
            sa.Column("paid_total", sa.BigInteger(), nullable=False, server_default=ZERO)
        )
        batch_op.add_column(
            sa.Column("refunded_total", sa.BigInteger(), nullable=False, server_default=ZERO)
        )
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("order_line", schema=None) as batch_op:
        for column in ("quantity_fulfilled", "quantity_returned"):
            batch_op.add_column(
                sa.Column(column, sa.Integer(), nullable=False, server_default=ZERO)
            )
    op.execute(
        "UPDATE customer_order SET payment_status = 'paid', paid_total = total "
        "WHERE status IN ('paid', 'fulfilled', 'delivered')"
    )
    op.execute(
        "UPDATE customer_order SET payment_status = 'refunded', paid_total = total, "
        "refunded_total = total WHERE status = 'refunded'"
    )
    op.execute(
        "UPDATE customer_order SET fulfillment_status = status "
        "WHERE status IN ('fulfilled', 'delivered')"
    )
    op.execute(
        "UPDATE order_line SET quantity_fulfilled = quantity WHERE order_id IN "
        "(SELECT id FROM customer_order WHERE status IN ('fulfilled', 'delivered'))"
    )
    with op.batch_alter_table("customer_order", schema=None) as batch_op:
        for column in ("payment_status", "fulfillment_status", "paid_total", "refunded_total"):
            batch_op.alter_column(column, server_default=None)
        for name, sql in ORDER_CHECKS.items():
            batch_op.create_check_constraint(op.f(f"ck_customer_order_{name}"), sql)
        batch_op.create_unique_constraint(
            op.f("uq_customer_order_order_token_hash"), ["order_token_hash"]
        )
        batch_op.create_index(op.f("ix_customer_order_email_index"), ["email_index"], unique=False)
    with op.batch_alter_table("order_line", schema=None) as batch_op:
        for column in ("quantity_fulfilled", "quantity_returned"):
            batch_op.alter_column(column, server_default=None)
        for name, sql in LINE_CHECKS.items():
            batch_op.create_check_constraint(op.f(f"ck_order_line_{name}"), sql)


def downgrade() -> None:
    with op.batch_alter_table("order_line", schema=None) as batch_op:
        for name in LINE_CHECKS:
            batch_op.drop_constraint(op.f(f"ck_order_line_{name}"), type_="check")
        batch_op.drop_column("quantity_returned")
        batch_op.drop_column("quantity_fulfilled")
    with op.batch_alter_table("customer_order", schema=None) as batch_op:
        batch_op.drop_index(op.f("ix_customer_order_email_index"))
        batch_op.drop_constraint(op.f("uq_customer_order_order_token_hash"), type_="unique")
        for name in ORDER_CHECKS:
            batch_op.drop_constraint(op.f(f"ck_customer_order_{name}"), type_="check")
    with op.batch_alter_table("customer_order", schema=None) as batch_op:
        for column in NEW_ORDER_COLUMNS:
            batch_op.drop_column(column)
