"""gift cards: gift_card, gift_card_movement

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gift_card",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code_index", sa.String(length=64), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("initial_balance", sa.BigInteger(), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note_enc", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_gift_card_balance_non_negative")),
        sa.CheckConstraint(
            "initial_balance > 0", name=op.f("ck_gift_card_initial_balance_positive")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gift_card")),
        sa.UniqueConstraint("code_index", name=op.f("uq_gift_card_code_index")),
    )
    with op.batch_alter_table("gift_card", schema=None) as batch_op:
        batch_op.create_index("ix_gift_card_created", ["created_at", "id"], unique=False)

    op.create_table(
        "gift_card_movement",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("gift_card_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("payment_id", sa.Uuid(), nullable=True),
        sa.Column("refund_id", sa.Uuid(), nullable=True),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(kind = 'debit' AND amount < 0) OR (kind <> 'debit' AND amount > 0)",
            name=op.f("ck_gift_card_movement_amount_signed"),
        ),
        sa.CheckConstraint(
            "kind IN ('issued', 'debit', 'credit')", name=op.f("ck_gift_card_movement_kind_known")
        ),
        sa.CheckConstraint(
            "balance_after >= 0", name=op.f("ck_gift_card_movement_balance_after_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["gift_card_id"],
            ["gift_card.id"],
            name=op.f("fk_gift_card_movement_gift_card_id_gift_card"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gift_card_movement")),
        sa.UniqueConstraint("refund_id", name=op.f("uq_gift_card_movement_refund_id")),
    )
    with op.batch_alter_table("gift_card_movement", schema=None) as batch_op:
        batch_op.create_index(
            "ix_gift_card_movement_card", ["gift_card_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "uq_gift_card_movement_debit_payment",
            ["payment_id"],
            unique=True,
            sqlite_where=sa.text("kind = 'debit'"),
            postgresql_where=sa.text("kind = 'debit'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("gift_card_movement", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_gift_card_movement_debit_payment",
            sqlite_where=sa.text("kind = 'debit'"),
            postgresql_where=sa.text("kind = 'debit'"),
        )
        batch_op.drop_index("ix_gift_card_movement_card")

    op.drop_table("gift_card_movement")
    with op.batch_alter_table("gift_card", schema=None) as batch_op:
        batch_op.drop_index("ix_gift_card_created")

    op.drop_table("gift_card")
