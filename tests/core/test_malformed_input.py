"""Input that cannot be read is the client's fault: 400/422 problem+json, never a 500.

Found by outside testing: a JSON body nested 100,000 levels deep, invalid UTF-8 inside a JSON
string, and a price filter above 2^63 each answered 500 (contract, Conventions).
"""

from __future__ import annotations

import pytest

from factories import API, Client, assert_problem, create_category, product_body

JSON = {"Content-Type": "application/json"}


def _nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize(
    "content",
    [
        _nested(100_000),
        b'{"email": "a@example.com", "password": "x", "first_name": ' + _nested(65) + b"}",
        b'{"email": "a\xff\xfe@example.com", "password": "Quartz lantern drifts over 9"}',
        b'{"email": "\xed\xa0\x80@example.com", "password": "Quartz lantern drifts over 9"}',
        b'{"email": "a@example.com", "password": "x", "first_name": 1e99999}',
    ],
    ids=["100k-levels", "65-levels", "invalid-utf8", "utf8-surrogate", "number-out-of-range"],
)
async def test_unreadable_bodies_are_400(client: Client, content: bytes) -> None:
    """Anyone's registration body that cannot be decoded is ``400 malformed_json``."""
    response = await client.post(f"{API}/auth/register", content=content, headers=JSON)
    assert_problem(response, 400, "malformed_json")


async def test_deep_or_broken_product_bodies_change_nothing(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """Staff writes refuse the same bodies, and no product is created."""
    category = await create_category(client, admin_headers)
    body = product_body(category["id"])
    deep = (
        b'{"title": "Deep", "category_id": "'
        + category["id"].encode()
        + b'", "variants": '
        + _nested(70)
        + b"}"
    )
    bad_utf8 = (
        b'{"title": "Bad \xc3\x28", "category_id": "' + category["id"].encode() + b'", '
        b'"variants": [{"sku": "U-1", "title": "One", "price": 100, "stock": 1}]}'
    )
    headers = {**admin_headers, **JSON}
    for content in (deep, bad_utf8, _nested(100_000)):
        response = await client.post(f"{API}/products", content=content, headers=headers)
        assert_problem(response, 400, "malformed_json")
    listing = await client.get(f"{API}/products", headers=admin_headers)
    assert listing.json()["items"] == []
    created = await client.post(f"{API}/products", json=body, headers=admin_headers)
    assert created.status_code == 201, created.text


@pytest.mark.parametrize(
    "params",
    [
        {"min_price": "99999999999999999999"},
        {"max_price": str(2**63)},
        {"min_price": str(2**63 - 1)},
        {"max_price": "-1"},
    ],
)
async def test_price_filters_out_of_range_are_422(client: Client, params: dict[str, str]) -> None:
    """A price filter outside 0..MAX_MONEY is a 422 naming the parameter."""
    response = await client.get(f"{API}/products", params=params)
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["query", next(iter(params))]


async def test_the_largest_price_filter_is_accepted(client: Client) -> None:
    """The bound is the largest price a variant can have: filtering at it works."""
    from emporium.catalog.schemas import MAX_MONEY

    response = await client.get(f"{API}/products", params={"max_price": MAX_MONEY})
    assert response.status_code == 200, response.text
