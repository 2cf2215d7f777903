"""The category tree: the imported categories, and filtering products by a category
including everything below it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from factories import (
    API,
    Client,
    Json,
    all_products,
    create_category,
    import_dummyjson,
    source_products,
)


def _skus(items: list[Json]) -> set[str]:
    return {p["variants"][0]["sku"] for p in items}


async def test_imported_categories_are_listed(shop: Client, datasets_dir: Path) -> None:
    """GET /categories lists the 24 source categories as a flat tree of roots, with readable
    names and the source's slugs."""
    response = await shop.get(f"{API}/categories")
    assert response.status_code == 200
    categories = response.json()
    source = source_products(datasets_dir)
    assert {c["slug"] for c in categories} == {s["category"] for s in source}
    assert len(categories) == 24
    by_slug = {c["slug"]: c for c in categories}
    assert by_slug["smartphones"]["name"] == "Smartphones"
    assert by_slug["kitchen-accessories"]["name"] == "Kitchen Accessories"
    assert all(c["parent_id"] is None for c in categories)
    assert all(set(c) == {"id", "name", "slug", "parent_id", "description"} for c in categories)
    assert len({c["id"] for c in categories}) == 24


@pytest.mark.slow
async def test_category_filter_includes_sub_categories(
    client: Client, session: AsyncSession, admin_headers: dict[str, str], datasets_dir: Path
) -> None:
    """Moving categories under a new parent makes the parent's listing show their products,
    two levels deep, by slug and by id; the children's own listings do not change."""
    await import_dummyjson(session, datasets_dir)
    source = source_products(datasets_dir)
    by_slug = {c["slug"]: c for c in (await client.get(f"{API}/categories")).json()}

    electronics = await create_category(client, admin_headers, "Electronics")
    portable = await create_category(client, admin_headers, "Portable", parent_id=electronics["id"])
    for slug, parent in [
        ("laptops", electronics),
        ("smartphones", portable),
        ("tablets", portable),
    ]:
        response = await client.patch(
            f"{API}/categories/{by_slug[slug]['id']}",
            json={"parent_id": parent["id"]},
            headers=admin_headers,
        )
        assert response.status_code == 200, response.text
        assert response.json()["parent_id"] == parent["id"]

    def expected(*slugs: str) -> set[str]:
        return {s["sku"] for s in source if s["category"] in slugs}

    everything = expected("laptops", "smartphones", "tablets")
    assert len(everything) == 24
    assert _skus(await all_products(client, category=electronics["slug"])) == everything
    assert _skus(await all_products(client, category=electronics["id"])) == everything
    assert _skus(await all_products(client, category="portable")) == expected(
        "smartphones", "tablets"
    )
    assert _skus(await all_products(client, category="smartphones")) == expected("smartphones")
    assert _skus(await all_products(client, category="laptops")) == expected("laptops")

    # Sub-category inclusion combines with the other filters and with paging.
    apple = await all_products(client, category="electronics", brand="Apple", sort="price")
    assert _skus(apple) == {
        s["sku"]
        for s in source
        if s["category"] in ("laptops", "smartphones", "tablets") and s.get("brand") == "Apple"
    }
    small_pages = await all_products(client, category="electronics", limit=5)
    assert _skus(small_pages) == everything
    assert len(small_pages) == len(everything)

    listed = {c["slug"]: c for c in (await client.get(f"{API}/categories")).json()}
    assert listed["portable"]["parent_id"] == electronics["id"]
    assert listed["smartphones"]["parent_id"] == portable["id"]

    # Moving a category back to the root takes its products out of the parent's listing.
    response = await client.patch(
        f"{API}/categories/{by_slug['laptops']['id']}",
        json={"parent_id": None},
        headers=admin_headers,
    )
    assert response.status_code == 200
    assert response.json()["parent_id"] is None
    assert _skus(await all_products(client, category="electronics")) == expected(
        "smartphones", "tablets"
    )
