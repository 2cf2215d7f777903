"""Keyset (cursor) pagination: opaque cursors whose cost does not grow with depth.

A cursor is the base64url form of ``[sort, value, id]``: the sort it was made for, the
last row's sort value and the last row's id. The next page is "rows strictly after
(value, id)" in the sort order, which an index serves directly, unlike ``OFFSET``.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any

import msgspec

from emporium.core.errors import InvalidInput

DEFAULT_LIMIT = 20
MAX_LIMIT = 100

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
