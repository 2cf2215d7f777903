"""HTTP routes of reviews (read side)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, get
from litestar.params import FromPath, QueryParameter

from emporium.accounts.identity import is_staff
from emporium.core.errors import problem_responses
from emporium.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from emporium.core.uow import DbReader
from emporium.reviews import service
from emporium.reviews.schemas import ReviewPage


@get(
    "/products/{id_or_slug:str}/reviews",
    tags=["reviews"],
    summary="A product's reviews",
    responses=problem_responses(404),
)
async def list_reviews(
    request: Request[Any, Any, Any],
    reader: DbReader,
    id_or_slug: FromPath[str],
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, QueryParameter(max_length=1000, schema_extra={"maxLength": 1000})
    ] = None,
) -> ReviewPage:
    """Published reviews, newest first (404 ``product_not_found``)."""
    return await service.list_reviews(
        reader, id_or_slug, limit=limit, cursor=cursor, include_unpublished=await is_staff(request)
    )


reviews_router = Router(path="/", route_handlers=[list_reviews])
