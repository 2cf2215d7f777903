"""tracing: outbox_event.trace_context and job.trace_context (W3C Trace Context carriers)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 02:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_event") as batch:
        batch.add_column(sa.Column("trace_context", sa.JSON(), nullable=True))
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("trace_context", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_column("trace_context")
    with op.batch_alter_table("outbox_event") as batch:
        batch.drop_column("trace_context")
