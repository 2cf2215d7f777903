"""search at scale: a covering index for ranking the newest matches (PostgreSQL only)

Relevance search ranks the ``MAX_RANKED`` newest products matching the words (ADR 0023):
PostgreSQL walks ``(published, created_at, id)`` backwards and checks each entry's
``search_vector``. With the vector in the index (``INCLUDE``) that walk is an index-only
scan: no table row is read to find or rank the candidates. SQLite's FTS5 index already
returns matches newest first; nothing changes there.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 02:25:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_product_search_vector_recent"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE INDEX {INDEX} ON product (published, created_at, id) INCLUDE (search_vector)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
