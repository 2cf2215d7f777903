"""Keyset (cursor) pagination: opaque cursors whose cost does not grow with depth.

A cursor is the base64url form of ``[sort, value, id]``: the sort it was made for, the
last row's sort value and the last row's id. The next page is "rows strictly after
(value, id)" in the sort order, which an index serves directly, unlike ``OFFSET``.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from litestar.params import QueryParameter
from sqlalchemy import Select, tuple_

from emporium.core.errors import InvalidInput

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_CURSOR = 1000

Limit = Annotated[
    int, QueryParameter(ge=1, le=MAX_LIMIT, description=f"page size, at most {MAX_LIMIT}")
]
"""Route parameter type of a page size (``limit: Limit = DEFAULT_LIMIT``)."""

Cursor = Annotated[
    str | None, QueryParameter(max_length=MAX_CURSOR, schema_extra={"maxLength": MAX_CURSOR})
]
"""Route parameter type of an opaque keyset cursor (``cursor: Cursor = None``)."""

CursorValue = str | int | float | None


def encode_cursor(sort: str, value: CursorValue, last_id: uuid.UUID) -> str:
    """Encode the position after one row for ``sort``."""
    raw = msgspec.json.encode([sort, value, str(last_id)])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, sort: str) -> tuple[CursorValue, uuid.UUID]:
    """Decode a cursor made for ``sort``.

    Raises:
        InvalidInput: (422 ``validation_error``) the cursor is malformed or was made for
            another sort order.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data: Any = msgspec.json.decode(base64.urlsafe_b64decode(padded.encode("ascii")))
        cursor_sort, value, last_id = data
        if cursor_sort != sort or not isinstance(value, str | int | float | None):
            raise ValueError("cursor for another sort")
        if isinstance(value, bool):
            raise ValueError("bad value")
        return value, uuid.UUID(str(last_id))
    except (ValueError, TypeError, binascii.Error, msgspec.DecodeError, UnicodeError) as exc:
        raise invalid_cursor() from exc


def cursor_instant(value: CursorValue) -> datetime:
    """A cursor's timestamp value, which must be RFC 3339 with a zone.

    Raises:
        InvalidInput: (422 ``validation_error``) not a string, not a timestamp, or no zone
            (a naive value could not be compared with stored UTC instants).
    """
    try:
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                return parsed
    except ValueError:
        pass
    raise invalid_cursor()


def invalid_cursor() -> InvalidInput:
    """The 422 error for a cursor that is malformed, tampered with or made for another list."""
    return InvalidInput(
        "The cursor is not valid for this listing.",
        errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}],
    )


CreatedSort = Literal["created_at", "-created_at"]
S = TypeVar("S", bound=Select[Any])


def by_created_at(stmt: S, sort: CreatedSort, created_at: Any, id_: Any, cursor: str | None) -> S:
    """``stmt`` ordered by ``(created_at, id)``, oldest first (``created_at``) or newest first
    (``-created_at``), starting after ``cursor``; the caller adds ``limit(n + 1)``.

    Raises InvalidInput (422) for a bad cursor.
    """
    newest = sort == "-created_at"
    stmt = stmt.order_by(*((created_at.desc(), id_.desc()) if newest else (created_at, id_)))
    if cursor:
        value, last_id = decode_cursor(cursor, sort)
        key, after = tuple_(created_at, id_), tuple_(cursor_instant(value), last_id)
        stmt = stmt.where(key < after if newest else key > after)
    return stmt


def created_at_cursor(items: Sequence[Any], more: bool, sort: CreatedSort) -> str | None:
    """The ``next_cursor`` after the last of ``items`` (objects with ``created_at`` and
    ``id``) when ``more`` rows follow, else None."""
    if not more or not items:
        return None
    last = items[-1]
    return encode_cursor(sort, last.created_at.isoformat(), last.id)
