"""Reviews: reading a product's published reviews and keeping its rating aggregates."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.catalog import queries as catalog_queries
from emporium.catalog import service as catalog_service
from emporium.core.db import Reader
from emporium.core.pagination import CreatedSort, by_created_at, created_at_cursor
from emporium.reviews.models import Review
from emporium.reviews.schemas import ReviewPage, ReviewRead

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
).where(_R.status == "published")
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
    stmt = _LISTING.where(_R.product_id == product.id)
    stmt = by_created_at(stmt, SORT, _R.created_at, _R.id, cursor)
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


async def refresh_rating(session: AsyncSession, product_id: uuid.UUID) -> None:
    """Recompute a product's ``rating_average`` and ``review_count`` from published reviews."""
    await session.flush()
    row = (
        await session.execute(
            select(func.avg(Review.rating), func.count(Review.id)).where(
                Review.product_id == product_id, Review.status == "published"
            )
        )
    ).one()
    await catalog_service.set_review_stats(
        session, product_id, rating_average=float(row[0] or 0.0), review_count=int(row[1])
    )


async def upsert_review(
    session: AsyncSession,
    *,
    product_id: uuid.UUID,
    external_ref: str,
    rating: int,
    body: str,
    author_name: str,
    created_at: datetime,
    title: str | None = None,
    author_id: uuid.UUID | None = None,
) -> str:
    """Create or bring up to date an imported review; returns created/updated/unchanged.

    The caller runs :func:`refresh_rating` for each product it touched.
    """
    review = await session.scalar(select(Review).where(Review.external_ref == external_ref))
    fields = {
        "product_id": product_id,
        "rating": rating,
        "body": body,
        "title": title,
        "author_name": author_name,
        "created_at": created_at,
        "author_id": author_id,
    }
    if review is None:
        session.add(
            Review(
                id=uuid.uuid4(),
                external_ref=external_ref,
                status="published",
                verified_purchase=False,
                updated_at=created_at,
                **fields,
            )
        )
        return "created"
    if all(getattr(review, k) == v for k, v in fields.items()):
        return "unchanged"
    for key, value in fields.items():
        setattr(review, key, value)
    return "updated"
