"""payments: payment, refund, payment_event, payment_change, test_provider_intent; the
payment an Idempotency-Key made

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 18:50:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAYMENT_STATES = ("pending", "requires_action", "authorized", "captured", "failed", "cancelled")
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


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _times() -> list[sa.Column[Any]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def _payment() -> None:
    op.create_table(
        "payment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("captured_amount", sa.BigInteger(), nullable=False),
        sa.Column("refunded_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("payment_method", sa.String(length=64), nullable=True),
        sa.Column("client_secret_enc", sa.Text(), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        *_times(),
        sa.CheckConstraint(_one_of("status", PAYMENT_STATES), name=op.f("ck_payment_status_known")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payment_amount_positive")),
        sa.CheckConstraint(
            "captured_amount >= 0 AND captured_amount <= amount",
            name=op.f("ck_payment_captured_within_amount"),
        ),
        sa.CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= captured_amount",
            name=op.f("ck_payment_refunded_within_captured"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["customer_order.id"],
            name=op.f("fk_payment_order_id_customer_order"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment")),
        sa.UniqueConstraint("provider", "reference", name=op.f("uq_payment_provider")),
    )
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.create_index(op.f("ix_payment_order_id"), ["order_id"], unique=False)
        batch_op.create_index("ix_payment_open", ["status", "updated_at"], unique=False)


def _refund() -> None:
    op.create_table(
        "refund",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("payment_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        *_times(),
        sa.CheckConstraint(_one_of("status", REFUND_STATES), name=op.f("ck_refund_status_known")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_refund_amount_positive")),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payment.id"],
            name=op.f("fk_refund_payment_id_payment"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["customer_order.id"],
            name=op.f("fk_refund_order_id_customer_order"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund")),
        sa.UniqueConstraint("provider", "reference", name=op.f("uq_refund_provider")),
    )
    with op.batch_alter_table("refund", schema=None) as batch_op:
        batch_op.create_index(op.f("ix_refund_order_id"), ["order_id"], unique=False)
        batch_op.create_index(op.f("ix_refund_payment_id"), ["payment_id"], unique=False)


def _events_and_changes() -> None:
    op.create_table(
        "payment_event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_event")),
        sa.UniqueConstraint("provider", "event_id", name=op.f("uq_payment_event_provider")),
    )
    op.create_table(
        "payment_change",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("payment_id", sa.Uuid(), nullable=False),
        sa.Column("refund_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_role", sa.String(length=20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            _one_of("kind", CHANGE_KINDS), name=op.f("ck_payment_change_kind_known")
        ),
        sa.CheckConstraint(_one_of("source", SOURCES), name=op.f("ck_payment_change_source_known")),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_payment_change_amount_non_negative")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["customer_order.id"],
            name=op.f("fk_payment_change_order_id_customer_order"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payment.id"],
            name=op.f("fk_payment_change_payment_id_payment"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["refund_id"],
            ["refund.id"],
            name=op.f("fk_payment_change_refund_id_refund"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_change")),
    )
    with op.batch_alter_table("payment_change", schema=None) as batch_op:
        batch_op.create_index(op.f("ix_payment_change_payment_id"), ["payment_id"], unique=False)
        batch_op.create_index("ix_payment_change_order", ["order_id", "created_at"], unique=False)


def _test_provider() -> None:
    op.create_table(
        "test_provider_intent",
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("payment_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("captured_amount", sa.BigInteger(), nullable=False),
        sa.Column("refunded_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("payment_method", sa.String(length=64), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        *_times(),
        sa.CheckConstraint(
            _one_of("status", PAYMENT_STATES), name=op.f("ck_test_provider_intent_status_known")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_test_provider_intent_amount_positive")),
        sa.PrimaryKeyConstraint("reference", name=op.f("pk_test_provider_intent")),
        sa.UniqueConstraint(
            "idempotency_key", name=op.f("uq_test_provider_intent_idempotency_key")
        ),
    )
    op.create_table(
        "test_provider_refund",
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("intent_reference", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("refund_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["intent_reference"],
            ["test_provider_intent.reference"],
            name=op.f("fk_test_provider_refund_intent_reference_test_provider_intent"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("reference", name=op.f("pk_test_provider_refund")),
        sa.UniqueConstraint(
            "idempotency_key", name=op.f("uq_test_provider_refund_idempotency_key")
        ),
    )


def upgrade() -> None:
    _payment()
    _refund()
    _events_and_changes()
    _test_provider()
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resource_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.drop_column("resource_id")
    for table in (
        "test_provider_refund",
        "test_provider_intent",
        "payment_change",
        "payment_event",
        "refund",
        "payment",
    ):
        op.drop_table(table)
