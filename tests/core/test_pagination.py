"""Cursor timestamps: only zoned RFC 3339 values are accepted (a forged naive one is a 422)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from emporium.core.db.pagination import cursor_instant, decode_cursor, encode_cursor
from emporium.core.errors import InvalidInput
from factories import API, Client, assert_problem, create_category, create_product


def test_zoned_timestamps_round_trip() -> None:
    """The value a page ends on comes back as the same instant."""
    moment = datetime(2026, 11, 21, 1, 2, 3, 456789, tzinfo=UTC)
    value, _ = decode_cursor(
        encode_cursor("-created_at", moment.isoformat(), uuid.uuid4()), "-created_at"
    )
    assert cursor_instant(value) == moment


@pytest.mark.parametrize("value", ["2026-11-21T01:02:03", "yesterday", 12, None, 1.5])
def test_naive_or_foreign_values_are_refused(value: object) -> None:
    """Values without a zone, or not timestamps at all, are a 422, never a server error."""
    with pytest.raises(InvalidInput):
        cursor_instant(value)  # type: ignore[arg-type]


async def test_a_forged_naive_review_cursor_is_a_422(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """A review cursor edited to hold a naive timestamp answers 422 (it used to reach the
    database layer and fail there)."""
    category = await create_category(client, admin_headers)
    product = await create_product(client, admin_headers, category["id"])
    cursor = encode_cursor("-created_at", "2026-11-21T01:02:03", uuid.uuid4())
    response = await client.get(
        f"{API}/products/{product['id']}/reviews",
        params={"cursor": cursor},
        headers=admin_headers,
    )
    assert_problem(response, 422, "validation_error")
