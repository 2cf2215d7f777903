"""Reviews: reading a product's published reviews (writes are in ``service`` and
``writing``)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.protect import Vault, plain_row
from emporium.catalog import queries as catalog_queries
from emporium.core.db.base import Reader
from emporium.core.db.pagination import CreatedSort, by_created_at, created_at_cursor
from emporium.reviews.models import Review
from emporium.reviews.schemas import ReviewPage, ReviewRead, ReviewStatus

_R = Review.__table__.c
_LISTING = select(
    _R.id,
    _R.product_id,
    _R.rating,
    _R.title,
    _R.body,
    _R.author_name,
    _R.verified_purchase,
    _R.created_at,
    _R.status,
)
_PUBLISHED = _LISTING.where(_R.status == "published")
SORT: CreatedSort = "-created_at"


async def list_reviews(
    db: AsyncSession | Reader,
    id_or_slug: str,
    *,
    limit: int,
    cursor: str | None,
    include_unpublished: bool,
) -> ReviewPage:
    """Published reviews of a visible product, newest first, as a keyset page.

    Raises:
        ProductNotFound: (404) no such product, or it is not visible to the caller.
        InvalidInput: (422) a bad cursor.
    """
    product = await catalog_queries.get_product(
        db, id_or_slug, include_unpublished=include_unpublished
    )
    stmt = _PUBLISHED.where(_R.product_id == product.id)
    stmt = by_created_at(stmt, SORT, _R.created_at, _R.id, cursor)
    return await _page(db, stmt, limit)


async def moderation_queue(
    db: AsyncSession | Reader,
    *,
    status: ReviewStatus | None,
    limit: int,
    cursor: str | None,
) -> ReviewPage:
    """Staff: the reviews of every product, newest first, as a keyset page; only those
    with ``status`` (``published`` or ``hidden``) when given.

    Raises:
        InvalidInput: (422) a bad cursor.
    """
    stmt = _LISTING if status is None else _LISTING.where(_R.status == status)
    stmt = by_created_at(stmt, SORT, _R.created_at, _R.id, cursor)
    return await _page(db, stmt, limit)


async def _page(db: AsyncSession | Reader, stmt: Select[Any], limit: int) -> ReviewPage:
    """Run ``stmt`` (already ordered by ``SORT``) for one page of ``limit`` reviews."""
    rows = (await db.execute(stmt.limit(limit + 1))).all()
    items = [
        ReviewRead(
            id=r.id,
            product_id=r.product_id,
            rating=r.rating,
            title=r.title,
            body=r.body,
            author_name=r.author_name,
            verified_purchase=r.verified_purchase,
            created_at=r.created_at,
            status=r.status,
        )
        for r in rows[:limit]
    ]
    return ReviewPage(items=items, next_cursor=created_at_cursor(items, len(rows) > limit, SORT))


async def export_author(
    db: Reader | AsyncSession, vault: Vault, author_id: uuid.UUID
) -> dict[str, list[Any]]:
    """Export section (``AccountsContext.export_sections``): the reviews the person wrote,
    oldest first."""
    table = Review.__table__
    stmt = select(table).where(table.c.author_id == author_id).order_by(table.c.created_at)
    return {"reviews": [plain_row(row) for row in (await db.execute(stmt)).all()]}
