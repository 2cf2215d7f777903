"""Reviews: keeping a product's rating aggregates, and upserting imported reviews (reads are
in ``queries``, a customer's writes in ``writing``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.catalog import service as catalog_service
from emporium.reviews.models import Review

_R = Review.__table__.c


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
