"""Writing reviews: one per customer per product, edits by the author, moderation by staff.

The product's ``rating_average`` and ``review_count`` are recomputed in the same
transaction as every change. ``verified_purchase`` is true when the author has a paid (or
later) order with the product, decided by the orders room when the review is posted.
"""

from __future__ import annotations

import uuid

import msgspec
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.identity import Identity
from emporium.accounts.protect import AccountsContext
from emporium.accounts.service import get_profile
from emporium.catalog import queries as catalog_queries
from emporium.core.clock import utcnow
from emporium.jobs.outbox import emit_event
from emporium.orders.queries import has_paid_purchase
from emporium.reviews.exceptions import NotReviewAuthor, ReviewExists, ReviewNotFound
from emporium.reviews.models import Review
from emporium.reviews.schemas import ReviewCreate, ReviewRead, ReviewUpdate
from emporium.reviews.service import refresh_rating


def _read(review: Review) -> ReviewRead:
    return ReviewRead(
        id=review.id,
        product_id=review.product_id,
        rating=review.rating,
        title=review.title,
        body=review.body,
        author_name=review.author_name,
        verified_purchase=review.verified_purchase,
        created_at=review.created_at,
        status=review.status,  # type: ignore[arg-type]
    )


def display_name(first: str | None, last: str | None) -> str:
    """How a review signs: ``"Ada L."``; ``"Customer"`` for an account without names."""
    if not first:
        return "Customer"
    return f"{first} {last[0]}." if last else first


ERASED_AUTHOR = display_name(None, None)
"""How a review signs once its author erased the account: as an account without names."""


async def anonymise_author(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Account erasure step (``AccountsContext.erasure_steps``): every review by
    ``user_id`` signs as :data:`ERASED_AUTHOR` from now on; text and rating stay."""
    await session.execute(
        update(Review)
        .where(Review.author_id == user_id)
        .values(author_name=ERASED_AUTHOR, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def post_review(
    session: AsyncSession,
    ctx: AccountsContext,
    identity: Identity,
    id_or_slug: str,
    data: ReviewCreate,
) -> ReviewRead:
    """Publish the caller's review of a visible product.

    Raises:
        ProductNotFound: (404) no such published product.
        ReviewExists: (409) the caller already reviewed it.
    """
    product = await catalog_queries.get_product(session, id_or_slug, include_unpublished=False)
    mine = await session.scalar(
        select(Review.id).where(
            Review.product_id == product.id, Review.author_id == identity.user_id
        )
    )
    if mine is not None:
        raise ReviewExists("You have already reviewed this product; edit that review instead.")
    profile = await get_profile(session, ctx, identity)
    now = utcnow()
    review = Review(
        id=uuid.uuid4(),
        product_id=product.id,
        author_id=identity.user_id,
        rating=data.rating,
        title=data.title,
        body=data.body,
        status="published",
        created_at=now,
        updated_at=now,
        author_name=display_name(profile.first_name, profile.last_name),
        verified_purchase=await has_paid_purchase(session, identity.user_id, product.id),
    )
    session.add(review)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent second review by the same customer
        raise ReviewExists("You have already reviewed this product.") from exc
    await refresh_rating(session, product.id)
    emit_event(
        session,
        "review.created",
        {
            "review_id": str(review.id),
            "product_id": str(product.id),
            "rating": review.rating,
            "verified_purchase": review.verified_purchase,
        },
    )
    return _read(review)


async def _editable(session: AsyncSession, identity: Identity, review_id: uuid.UUID) -> Review:
    review = await session.get(Review, review_id)
    if review is None:
        raise ReviewNotFound("No such review.")
    if identity.is_staff or review.author_id == identity.user_id:
        return review
    if review.status != "published":
        raise ReviewNotFound("No such review.")
    raise NotReviewAuthor("Only its author or staff may change this review.")


async def edit_review(
    session: AsyncSession, identity: Identity, review_id: uuid.UUID, data: ReviewUpdate
) -> ReviewRead:
    """Change a review (its author), or moderate it (staff: ``status``).

    Raises:
        ReviewNotFound: (404) no such review, or another's hidden one.
        NotReviewAuthor: (403) another's published review, or ``status`` set by a non-staff.
    """
    review = await _editable(session, identity, review_id)
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    if "status" in changes and not identity.is_staff:
        raise NotReviewAuthor("Only staff may publish or hide a review.")
    for key, value in changes.items():
        setattr(review, key, value)
    review.updated_at = utcnow()
    await refresh_rating(session, review.product_id)
    return _read(review)


async def delete_review(session: AsyncSession, identity: Identity, review_id: uuid.UUID) -> None:
    """Delete a review (its author or staff); the product's rating follows.

    Raises ReviewNotFound (404) or NotReviewAuthor (403) as :func:`edit_review`.
    """
    review = await _editable(session, identity, review_id)
    await session.delete(review)
    await refresh_rating(session, review.product_id)
