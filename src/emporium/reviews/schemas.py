"""API shapes of reviews. Text fields are plain text served as JSON strings, never HTML."""

from __future__ import annotations

import uuid
from datetime import datetime

from msgspec import Struct


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


class ReviewPage(Struct):
    """One page of reviews, newest first; ``next_cursor`` null on the last page."""

    items: list[ReviewRead]
    next_cursor: str | None
