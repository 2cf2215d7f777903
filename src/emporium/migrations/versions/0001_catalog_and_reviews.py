"""catalog and reviews

Revision ID: 0001
Revises:
Create Date: 2026-11-20 23:50:51.266815
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "category",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["category.id"],
            name=op.f("fk_category_parent_id_category"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_category")),
        sa.UniqueConstraint("slug", name=op.f("uq_category_slug")),
    )
    op.create_index(op.f("ix_category_parent_id"), "category", ["parent_id"], unique=False)

    op.create_table(
        "product",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=255), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category_id", sa.Uuid(), nullable=False),
        sa.Column("brand", sa.String(length=200), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("search_title", sa.String(length=255), nullable=False),
        sa.Column("keywords", sa.Text(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("images", sa.JSON(), nullable=False),
        sa.Column("rating_average", sa.Float(), nullable=False),
        sa.Column("review_count", sa.Integer(), nullable=False),
        sa.Column("price_min", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("external_ref", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price_min >= 0", name=op.f("ck_product_price_min_non_negative")),
        sa.CheckConstraint("review_count >= 0", name=op.f("ck_product_review_count_non_negative")),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["category.id"],
            name=op.f("fk_product_category_id_category"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product")),
        sa.UniqueConstraint("external_ref", name=op.f("uq_product_external_ref")),
        sa.UniqueConstraint("slug", name=op.f("uq_product_slug")),
    )
    op.create_index(op.f("ix_product_brand"), "product", ["brand"], unique=False)
    op.create_index(
        "ix_product_category_created", "product", ["category_id", "created_at", "id"], unique=False
    )
    op.create_index(op.f("ix_product_category_id"), "product", ["category_id"], unique=False)
    op.create_index(
        "ix_product_published_created", "product", ["published", "created_at", "id"], unique=False
    )
    op.create_index(
        "ix_product_published_price", "product", ["published", "price_min", "id"], unique=False
    )
    op.create_index(
        "ix_product_published_rating",
        "product",
        ["published", "rating_average", "id"],
        unique=False,
    )
    op.create_index(
        "ix_product_published_title", "product", ["published", "title", "id"], unique=False
    )

    op.create_table(
        "product_tag",
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("tag", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["product.id"],
            name=op.f("fk_product_tag_product_id_product"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("product_id", "tag", name=op.f("pk_product_tag")),
    )
    op.create_index("ix_product_tag_tag", "product_tag", ["tag", "product_id"], unique=False)

    op.create_table(
        "review",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("author_name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("verified_purchase", sa.Boolean(), nullable=False),
        sa.Column("external_ref", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('published', 'hidden')", name=op.f("ck_review_status_known")
        ),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_review_rating_range")),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["product.id"],
            name=op.f("fk_review_product_id_product"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review")),
        sa.UniqueConstraint("external_ref", name=op.f("uq_review_external_ref")),
    )
    op.create_index(
        "ix_review_product_listing",
        "review",
        ["product_id", "status", "created_at", "id"],
        unique=False,
    )

    op.create_table(
        "variant",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("compare_at_price", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "compare_at_price IS NULL OR compare_at_price >= 0",
            name=op.f("ck_variant_compare_at_non_negative"),
        ),
        sa.CheckConstraint("price >= 0", name=op.f("ck_variant_price_non_negative")),
        sa.CheckConstraint("stock >= 0", name=op.f("ck_variant_stock_non_negative")),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["product.id"],
            name=op.f("fk_variant_product_id_product"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_variant")),
        sa.UniqueConstraint("sku", name=op.f("uq_variant_sku")),
    )
    op.create_index(op.f("ix_variant_product_id"), "variant", ["product_id"], unique=False)

    _create_search_index()


SQLITE_SEARCH = (
    "CREATE VIRTUAL TABLE product_fts USING fts5(search_title, keywords, search_text, "
    "content='product', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER product_fts_ai AFTER INSERT ON product BEGIN "
    "INSERT INTO product_fts(rowid, search_title, keywords, search_text) "
    "VALUES (new.rowid, new.search_title, new.keywords, new.search_text); END",
    "CREATE TRIGGER product_fts_ad AFTER DELETE ON product BEGIN "
    "INSERT INTO product_fts(product_fts, rowid, search_title, keywords, search_text) "
    "VALUES ('delete', old.rowid, old.search_title, old.keywords, old.search_text); END",
    "CREATE TRIGGER product_fts_au AFTER UPDATE OF search_title, keywords, search_text "
    "ON product BEGIN "
    "INSERT INTO product_fts(product_fts, rowid, search_title, keywords, search_text) "
    "VALUES ('delete', old.rowid, old.search_title, old.keywords, old.search_text); "
    "INSERT INTO product_fts(rowid, search_title, keywords, search_text) "
    "VALUES (new.rowid, new.search_title, new.keywords, new.search_text); END",
)

POSTGRES_SEARCH = (
    "ALTER TABLE product ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('english', coalesce(search_title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(keywords, '')), 'B') || "
    "setweight(to_tsvector('english', coalesce(search_text, '')), 'C')) STORED",
    "CREATE INDEX ix_product_search_vector ON product USING gin (search_vector)",
)


def _create_search_index() -> None:
    """Full-text search: FTS5 with triggers on SQLite, a generated tsvector + GIN on PostgreSQL."""
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_SEARCH if dialect == "sqlite" else POSTGRES_SEARCH:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("product_fts_ai", "product_fts_ad", "product_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS product_fts")
    op.drop_index(op.f("ix_variant_product_id"), table_name="variant")

    op.drop_table("variant")
    op.drop_index("ix_review_product_listing", table_name="review")

    op.drop_table("review")
    op.drop_index("ix_product_tag_tag", table_name="product_tag")

    op.drop_table("product_tag")
    op.drop_index("ix_product_published_title", table_name="product")
    op.drop_index("ix_product_published_rating", table_name="product")
    op.drop_index("ix_product_published_price", table_name="product")
    op.drop_index("ix_product_published_created", table_name="product")
    op.drop_index(op.f("ix_product_category_id"), table_name="product")
    op.drop_index("ix_product_category_created", table_name="product")
    op.drop_index(op.f("ix_product_brand"), table_name="product")

    op.drop_table("product")
    op.drop_index(op.f("ix_category_parent_id"), table_name="category")

    op.drop_table("category")
