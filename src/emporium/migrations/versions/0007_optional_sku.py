"""optional SKU, untracked stock and a variant image (Shopify exports)

A SKU is optional and unique when given: ``variant.sku`` becomes nullable and keeps its
unique constraint, which on SQLite and PostgreSQL alike lets any number of rows hold NULL.
``variant.stock`` NULL means the variant's inventory is not tracked (Shopify's empty
``Variant Inventory Tracker``). ``order_line.sku`` follows the variant's SKU.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("variant", schema=None) as batch_op:
        batch_op.alter_column("sku", existing_type=sa.String(length=100), nullable=True)
        batch_op.alter_column("stock", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("image_url", sa.String(length=2048), nullable=True))
    with op.batch_alter_table("order_line", schema=None) as batch_op:
        batch_op.alter_column("sku", existing_type=sa.String(length=100), nullable=True)


def downgrade() -> None:
    # Variants without a SKU get one made from their id, untracked ones stock 0 (tracked).
    op.execute("UPDATE order_line SET sku = '' WHERE sku IS NULL")
    op.execute("UPDATE variant SET stock = 0 WHERE stock IS NULL")
    op.execute("UPDATE variant SET sku = 'V-' || CAST(id AS VARCHAR(36)) WHERE sku IS NULL")
    with op.batch_alter_table("order_line", schema=None) as batch_op:
        batch_op.alter_column("sku", existing_type=sa.String(length=100), nullable=False)
    with op.batch_alter_table("variant", schema=None) as batch_op:
        batch_op.drop_column("image_url")
        batch_op.alter_column("stock", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("sku", existing_type=sa.String(length=100), nullable=False)
