"""HTTP routes of reviews: reading, posting (customers), editing and moderation."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Router, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from emporium.accounts.audiences import CUSTOMER, PUBLIC, SIGNED_IN, STAFF
from emporium.accounts.identity import is_staff, require_identity
from emporium.accounts.protect import AccountsContext
from emporium.core.db.pagination import DEFAULT_LIMIT, Cursor, Limit
from emporium.core.db.uow import DbReader, DbSession
from emporium.core.errors import problem_responses
from emporium.core.http.ratelimit import rate_limit
from emporium.core.http.routing import audience_router
from emporium.reviews import queries, writing
from emporium.reviews.schemas import (
    ReviewCreate,
    ReviewPage,
    ReviewRead,
    ReviewStatus,
    ReviewUpdate,
)


@get(
    "/products/{id_or_slug:str}/reviews",
    summary="A product's reviews",
    responses=problem_responses(404),
)
async def list_reviews(
    request: Request[Any, Any, Any],
    reader: DbReader,
    id_or_slug: FromPath[str],
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ReviewPage:
    """Published reviews, newest first (404 ``product_not_found``)."""
    return await queries.list_reviews(
        reader, id_or_slug, limit=limit, cursor=cursor, include_unpublished=await is_staff(request)
    )


@get("/reviews", summary="Reviews of every product (moderation)")
async def moderation_queue(
    reader: DbReader,
    status: FromQuery[ReviewStatus | None] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ReviewPage:
    """Staff: every product's reviews, newest first, keyset pages; ``status`` (``published``
    or ``hidden``) keeps only those. Moderate one with ``PATCH /reviews/{id}``."""
    return await queries.moderation_queue(reader, status=status, limit=limit, cursor=cursor)


@post(
    "/products/{id_or_slug:str}/reviews",
    guards=[rate_limit("review_post")],
    summary="Review a product",
    responses=problem_responses(404, 409, 415, 429),
)
async def post_review(
    request: Request[Any, Any, Any],
    accounts: NamedDependency[AccountsContext],
    session: DbSession,
    id_or_slug: FromPath[str],
    data: JSONBody[ReviewCreate],
) -> ReviewRead:
    """Customers: one review per product (409 ``review_exists``); ``verified_purchase`` when
    the caller has a paid order with it."""
    identity = await require_identity(request)
    return await writing.post_review(session, accounts, identity, id_or_slug, data)


@patch("/reviews/{review_id:uuid}", responses=problem_responses(415))
async def edit_review(
    request: Request[Any, Any, Any],
    session: DbSession,
    review_id: FromPath[uuid.UUID],
    data: JSONBody[ReviewUpdate],
) -> ReviewRead:
    """Its author: change rating and text; staff: also ``status`` (moderation)."""
    identity = await require_identity(request)
    return await writing.edit_review(session, identity, review_id, data)


@delete("/reviews/{review_id:uuid}")
async def delete_review(
    request: Request[Any, Any, Any], session: DbSession, review_id: FromPath[uuid.UUID]
) -> None:
    """Its author or staff: remove the review."""
    identity = await require_identity(request)
    await writing.delete_review(session, identity, review_id)


reviews_router = Router(
    path="/",
    route_handlers=[
        audience_router(STAFF, tags=["reviews"], route_handlers=[moderation_queue]),
        audience_router(PUBLIC, tags=["reviews"], route_handlers=[list_reviews]),
        audience_router(CUSTOMER, tags=["reviews"], route_handlers=[post_review]),
        audience_router(
            SIGNED_IN,
            tags=["reviews"],
            refusals=(403, 404),
            route_handlers=[edit_review, delete_review],
        ),
    ],
)
