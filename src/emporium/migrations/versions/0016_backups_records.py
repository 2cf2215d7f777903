"""backups: backup and backup_copy (each backup made and its copy at each destination)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 02:09:35
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "backup",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("engine", sa.String(length=20), nullable=False),
        sa.Column("schema_version", sa.String(length=64), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backup")),
    )
    op.create_index("ix_backup_created", "backup", ["created_at"], unique=False)
    op.create_table(
        "backup_copy",
        sa.Column("backup_id", sa.String(length=40), nullable=False),
        sa.Column("destination", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("copied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["backup_id"],
            ["backup.id"],
            name=op.f("fk_backup_copy_backup_id_backup"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("backup_id", "destination", name=op.f("pk_backup_copy")),
    )


def downgrade() -> None:
    op.drop_table("backup_copy")
    op.drop_index("ix_backup_created", table_name="backup")
    op.drop_table("backup")
