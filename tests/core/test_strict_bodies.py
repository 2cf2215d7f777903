"""Bodies are read strictly: JSON types must be the documented ones, not look-alikes."""

from __future__ import annotations

from typing import Any

import pytest

from factories import API, Client, assert_problem, create_category


@pytest.mark.parametrize(
    ("variant", "loc"),
    [
        ({"price": "1999"}, ["body", "variants", "0", "price"]),
        ({"price": 19.99}, ["body", "variants", "0", "price"]),
        ({"stock": 3.0}, ["body", "variants", "0", "stock"]),
        ({"stock": "3"}, ["body", "variants", "0", "stock"]),
        ({"sku": 123}, ["body", "variants", "0", "sku"]),
    ],
)
async def test_look_alike_json_types_are_refused(
    client: Client, admin_headers: dict[str, str], variant: dict[str, Any], loc: list[str]
) -> None:
    """A price sent as a string or a float, or a stock as a float, is a 422 naming the field,
    and nothing is created."""
    category = await create_category(client, admin_headers)
    body = {
        "title": "Strict Lamp",
        "category_id": category["id"],
        "variants": [{"sku": "STRICT-1", "title": "One", "price": 1999, **variant}],
    }
    response = await client.post(f"{API}/products", json=body, headers=admin_headers)
    assert_problem(response, 422, "validation_error")
    assert response.json()["errors"][0]["loc"] == loc
    listing = await client.get(f"{API}/products", headers=admin_headers)
    assert listing.json()["items"] == []


async def test_the_documented_types_are_accepted(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """The same body with integer cents and an integer stock is created (201)."""
    category = await create_category(client, admin_headers)
    body = {
        "title": "Strict Lamp",
        "category_id": category["id"],
        "variants": [{"sku": "STRICT-1", "title": "One", "price": 1999, "stock": 3}],
    }
    response = await client.post(f"{API}/products", json=body, headers=admin_headers)
    assert response.status_code == 201, response.text
    assert response.json()["variants"][0]["price"] == 1999
