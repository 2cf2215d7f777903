"""Errors of the reviews room, each with a stable code."""

from __future__ import annotations

from emporium.core.errors import Conflict, Forbidden, NotFound


class ReviewNotFound(NotFound):
    """No such review, or a hidden one the caller may not see."""

    code = "review_not_found"


class ReviewExists(Conflict):
    """The customer has already reviewed this product (one review per customer)."""

    code = "review_exists"


class NotReviewAuthor(Forbidden):
    """The review is visible but belongs to someone else, or ``status`` is staff-only."""

    code = "not_review_author"
