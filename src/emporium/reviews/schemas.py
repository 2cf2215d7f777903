"""API shapes of reviews. Text fields are plain text served as JSON strings, never HTML."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

Rating = Annotated[int, Meta(ge=1, le=5, description="1 (worst) to 5 (best)")]
ReviewTitle = Annotated[str, Meta(min_length=1, max_length=200)]
ReviewBody = Annotated[str, Meta(min_length=1, max_length=5000)]
ReviewStatus = Literal["published", "hidden"]


class ReviewRead(Struct):
    """A published review; ``rating`` is 1 to 5."""

    id: uuid.UUID
    product_id: uuid.UUID
    rating: int
    title: str | None
    body: str
    author_name: str
    verified_purchase: bool
    created_at: datetime
    status: ReviewStatus = "published"


class ReviewPage(Struct):
    """One page of reviews, newest first; ``next_cursor`` null on the last page."""

    items: list[ReviewRead]
    next_cursor: str | None


class ReviewCreate(Struct, forbid_unknown_fields=True):
    """A customer's review of a product; text is stored exactly as given."""

    rating: Rating
    body: ReviewBody
    title: ReviewTitle | None = None


class ReviewUpdate(Struct, forbid_unknown_fields=True):
    """Changes to a review: its author may change the text and rating; staff may also set
    ``status`` (moderation)."""

    rating: Rating | UnsetType = UNSET
    title: ReviewTitle | UnsetType | None = UNSET
    body: ReviewBody | UnsetType = UNSET
    status: ReviewStatus | UnsetType = UNSET
