"""Reading the catalog: keyset paging, sorting, filters, money and reviews, checked against
the DummyJSON source file on every supported database.

Read-only tests share one import of the dataset per database (module-scoped); tests that
write get a fresh database from the shared fixtures.
"""

from __future__ import annotations

import base64
import json
import statistics
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.reviews.service import refresh_rating, upsert_review
from factories import (
    API,
    Client,
    Json,
    all_products,
    assert_problem,
    by_sku,
    cents,
    create_category,
    create_product,
    source_products,
    walk,
)

SORTS = ["price", "-price", "created_at", "-created_at", "rating", "-rating", "title"]


@pytest.fixture(scope="module")
def source(datasets_dir: Path) -> list[Json]:
    """The products of the source file, read with ``json`` alone."""
    return source_products(datasets_dir)


def _source_rating(product: Json) -> float:
    return statistics.fmean(r["rating"] for r in product["reviews"]) if product["reviews"] else 0.0


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


_SORT_KEYS: dict[str, Callable[[Json], Any]] = {
    "price": lambda p: p["price_min"],
    "created_at": lambda p: _instant(p["created_at"]),
    "rating": lambda p: p["rating_average"],
    "title": lambda p: p["title"],
}
_SOURCE_KEYS: dict[str, Callable[[Json], Any]] = {
    "price": lambda s: cents(s["price"]),
    "created_at": lambda s: _instant(s["meta"]["createdAt"]),
    "rating": lambda s: round(_source_rating(s), 2),
    "title": lambda s: s["title"],
}


def _cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).rstrip(b"=").decode()


def _uncursor(cursor: str) -> list[Any]:
    data: list[Any] = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return data


# --- paging and sorting ---------------------------------------------------------------------


@pytest.mark.parametrize("limit", [7, 100])
async def test_paging_visits_every_product_once_in_sort_order(
    shop: Client, source: list[Json], limit: int
) -> None:
    """Following next_cursor reaches each of the 194 products exactly once, for every sort,
    in the order asked for, with ties always broken the same way (by id)."""
    all_skus = {s["sku"] for s in source}
    for sort in SORTS:
        items = await walk(shop, f"{API}/products", sort=sort, limit=limit)
        ids = [p["id"] for p in items]
        assert len(ids) == len(set(ids)) == 194, sort
        assert {p["variants"][0]["sku"] for p in items} == all_skus, sort

        field = sort.lstrip("-")
        descending = sort.startswith("-")
        keys = [(_SORT_KEYS[field](p), uuid.UUID(p["id"])) for p in items]
        expected = sorted(keys, reverse=descending)
        assert keys == expected, f"sort={sort}: not in order (ties by id)"
        # The sort values themselves are the source's, in order.
        source_values = sorted((_SOURCE_KEYS[field](s) for s in source), reverse=descending)
        values = [k[0] for k in keys]
        if field == "rating":
            assert values == pytest.approx(source_values), sort
        else:
            assert values == source_values, sort


async def test_default_page_is_twenty_newest_first(shop: Client) -> None:
    """Without parameters a storefront gets 20 products, newest first, and a cursor."""
    response = await shop.get(f"{API}/products")
    assert response.status_code == 200
    page = response.json()
    assert len(page["items"]) == 20
    assert isinstance(page["next_cursor"], str)
    explicit = (await shop.get(f"{API}/products", params={"sort": "-created_at"})).json()
    assert [p["id"] for p in page["items"]] == [p["id"] for p in explicit["items"]]


async def test_last_page_has_no_cursor(shop: Client) -> None:
    """The page that ends the listing says so with next_cursor null."""
    first = (await shop.get(f"{API}/products", params={"limit": 100})).json()
    assert len(first["items"]) == 100
    second = (
        await shop.get(f"{API}/products", params={"limit": 100, "cursor": first["next_cursor"]})
    ).json()
    assert len(second["items"]) == 94
    assert second["next_cursor"] is None
    exact = (await shop.get(f"{API}/products", params={"limit": 100, "max_price": 999})).json()
    assert exact["next_cursor"] is None


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", ""])
async def test_bad_limit_is_refused(shop: Client, limit: str) -> None:
    """limit outside 1..100 or not an integer: 422 validation_error naming the parameter."""
    response = await shop.get(f"{API}/products", params={"limit": limit})
    body = assert_problem(response, 422, "validation_error")
    assert any("limit" in e["loc"] for e in body["errors"]), body


async def test_garbage_and_tampered_cursors_are_refused(shop: Client) -> None:
    """A cursor the server did not issue for this listing is a 422, never a 500 or a page."""
    first = (await shop.get(f"{API}/products", params={"sort": "price", "limit": 5})).json()
    real = first["next_cursor"]
    sort, value, last_id = _uncursor(real)
    assert sort == "price"
    tampered = {
        "garbage": "garbage",
        "not base64": "!!!***",
        "truncated": real[: len(real) // 2],
        "json but not a list": base64.urlsafe_b64encode(b'{"a": 1}').decode(),
        "wrong value type": _cursor("price", "cheap", last_id),
        "boolean value": _cursor("price", True, last_id),
        "bad id": _cursor("price", value, "not-a-uuid"),
        "extra parts": _cursor("price", value, last_id, "x"),
        "too big for any price": _cursor("price", 2**63, last_id),
        "huge number": _cursor("price", 2**64 + 5, last_id),
    }
    for name, cursor in tampered.items():
        response = await shop.get(
            f"{API}/products", params={"sort": "price", "limit": 5, "cursor": cursor}
        )
        assert response.status_code == 422, (name, response.status_code, response.text)
        body = assert_problem(response, 422, "validation_error")
        assert any("cursor" in e["loc"] for e in body["errors"]), (name, body)


@pytest.mark.parametrize(
    ("sort", "value"),
    [("-created_at", "not a date"), ("created_at", "2025-13-45T99:00:00"), ("rating", "high")],
)
async def test_forged_cursor_values_are_refused(shop: Client, sort: str, value: str) -> None:
    """Cursor values a client forged (a non-date for a date sort, text for a number): 422."""
    cursor = _cursor(sort, value, str(uuid.uuid4()))
    response = await shop.get(f"{API}/products", params={"sort": sort, "cursor": cursor})
    assert_problem(response, 422, "validation_error")


async def test_cursor_of_another_sort_is_refused(shop: Client) -> None:
    """A cursor made for sort=price cannot continue a listing sorted by title (422)."""
    for made_for, used_with in [("price", "title"), ("title", "-price"), ("rating", "-rating")]:
        page = (await shop.get(f"{API}/products", params={"sort": made_for, "limit": 3})).json()
        response = await shop.get(
            f"{API}/products", params={"sort": used_with, "cursor": page["next_cursor"]}
        )
        assert_problem(response, 422, "validation_error")


async def test_unknown_sort_is_refused(shop: Client) -> None:
    """sort must be one of the documented values."""
    for sort in ["cheapest", "price;drop table product", "-title"]:
        response = await shop.get(f"{API}/products", params={"sort": sort})
        assert_problem(response, 422, "validation_error")


# --- filters --------------------------------------------------------------------------------


async def test_filter_by_category_slug_and_id(shop: Client, source: list[Json]) -> None:
    """category= takes a slug or an id and returns exactly that category's products."""
    categories = (await shop.get(f"{API}/categories")).json()
    slugs = {c["slug"]: c for c in categories}
    for slug in ["smartphones", "kitchen-accessories", "womens-watches"]:
        expected = {s["sku"] for s in source if s["category"] == slug}
        by_slug = await all_products(shop, category=slug)
        by_id = await all_products(shop, category=slugs[slug]["id"])
        assert {p["variants"][0]["sku"] for p in by_slug} == expected, slug
        assert [p["id"] for p in by_id] == [p["id"] for p in by_slug], slug
        assert {p["category_id"] for p in by_slug} == {slugs[slug]["id"]}
    assert await all_products(shop, category="no-such-category") == []
    assert await all_products(shop, category=str(uuid.uuid4())) == []


async def test_every_product_is_in_its_source_category(shop: Client, source: list[Json]) -> None:
    """Each product's category_id points at the category whose slug is the source's."""
    categories = {c["id"]: c["slug"] for c in (await shop.get(f"{API}/categories")).json()}
    products = by_sku(await all_products(shop))
    for item in source:
        assert categories[products[item["sku"]]["category_id"]] == item["category"]


async def test_filter_by_price_range_in_cents(shop: Client, source: list[Json]) -> None:
    """min_price and max_price are inclusive bounds in cents on the product's price."""
    for low, high in [(1999, 4999), (0, 999), (100000, None), (None, 199), (2999, 2999)]:
        params: dict[str, Any] = {"min_price": low, "max_price": high}
        items = await all_products(shop, **params)
        expected = {
            s["sku"]
            for s in source
            if (low is None or cents(s["price"]) >= low)
            and (high is None or cents(s["price"]) <= high)
        }
        assert expected, params
        assert {p["variants"][0]["sku"] for p in items} == expected, params


async def test_price_range_upside_down_is_refused(shop: Client) -> None:
    """min_price above max_price is a client mistake (422), not an empty page."""
    response = await shop.get(f"{API}/products", params={"min_price": 5000, "max_price": 100})
    assert_problem(response, 422, "validation_error")
    response = await shop.get(f"{API}/products", params={"min_price": -1})
    assert_problem(response, 422, "validation_error")
    response = await shop.get(f"{API}/products", params={"max_price": "9.99"})
    assert_problem(response, 422, "validation_error")


async def test_filter_in_stock(shop: Client, source: list[Json]) -> None:
    """in_stock=true hides exactly the products the source has no stock of."""
    items = await all_products(shop, in_stock="true")
    assert {p["variants"][0]["sku"] for p in items} == {s["sku"] for s in source if s["stock"] > 0}
    assert len(items) == 190
    assert all(any(v["stock"] > 0 for v in p["variants"]) for p in items)


async def test_filter_by_tag_and_brand(shop: Client, source: list[Json]) -> None:
    """tag= and brand= return exactly the products carrying that tag or brand."""
    for tag in ["beauty", "smartphones", "kitchen tools"]:
        items = await all_products(shop, tag=tag)
        assert {p["variants"][0]["sku"] for p in items} == {
            s["sku"] for s in source if tag in s["tags"]
        }, tag
    for brand in ["Apple", "Rolex", "Essence"]:
        items = await all_products(shop, brand=brand)
        assert {p["variants"][0]["sku"] for p in items} == {
            s["sku"] for s in source if s.get("brand") == brand
        }, brand
    assert await all_products(shop, brand="No Such Brand") == []


async def test_combined_filters_intersect(shop: Client, source: list[Json]) -> None:
    """Several filters at once return the products matching all of them, in the sort asked."""
    params: dict[str, Any] = {
        "category": "smartphones",
        "brand": "Apple",
        "in_stock": "true",
        "min_price": 20000,
        "max_price": 150000,
        "sort": "-price",
    }
    items = await all_products(shop, **params)
    expected = [
        s
        for s in source
        if s["category"] == "smartphones"
        and s.get("brand") == "Apple"
        and s["stock"] > 0
        and 20000 <= cents(s["price"]) <= 150000
    ]
    assert expected
    assert {p["variants"][0]["sku"] for p in items} == {s["sku"] for s in expected}
    prices = [p["price_min"] for p in items]
    assert prices == sorted(prices, reverse=True)
    tagged = await all_products(shop, tag="beauty", category="beauty", max_price=1000)
    assert {p["variants"][0]["sku"] for p in tagged} == {
        s["sku"]
        for s in source
        if "beauty" in s["tags"] and s["category"] == "beauty" and cents(s["price"]) <= 1000
    }


@pytest.mark.parametrize(
    "params",
    [
        {"category": "a\u0000b"},
        {"tag": "a\u0000b"},
        {"brand": "a\u0000b"},
        {"q": "a\u0000b"},
        {"cursor": "a\u0000b"},
        {"sort": "title", "cursor": _cursor("title", "Apple\u0000", str(uuid.uuid4()))},
    ],
    ids=["category", "tag", "brand", "q", "cursor", "title-cursor"],
)
async def test_nul_bytes_in_the_query_never_break_the_server(
    shop: Client, params: dict[str, str]
) -> None:
    """A NUL byte in a filter or cursor is a mistake or an attack: 4xx or nothing found,
    never a 500."""
    response = await shop.get(f"{API}/products", params=params)
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        assert all("\u0000" not in p["title"] for p in response.json()["items"])
    else:
        assert_problem(response, 422)


# --- money, stock and the product page ------------------------------------------------------


async def test_products_match_the_source_file(shop: Client, source: list[Json]) -> None:
    """Prices are exact integer cents in USD, and stock, SKU, title, brand, tags, images,
    dates and review aggregates are the source's."""
    products = by_sku(await all_products(shop))
    assert len(products) == 194
    for item in source:
        product = products[item["sku"]]
        (variant,) = product["variants"]
        price = round(item["price"] * 100)
        assert variant["price"] == price, item["id"]
        assert type(variant["price"]) is int
        assert product["price_min"] == price
        assert type(product["price_min"]) is int
        assert variant["currency"] == product["currency"] == "USD"
        assert variant["stock"] == item["stock"]
        assert product["title"] == item["title"]
        assert product["brand"] == item.get("brand")
        assert product["tags"] == item["tags"]
        assert product["published"] is True
        assert [i["url"] for i in product["images"]] == item["images"]
        assert [i["position"] for i in product["images"]] == list(range(1, len(item["images"]) + 1))
        assert _instant(product["created_at"]) == _instant(item["meta"]["createdAt"])
        assert product["review_count"] == len(item["reviews"])
        assert product["rating_average"] == pytest.approx(_source_rating(item), abs=0.005)


async def test_product_by_id_and_by_slug(shop: Client, source: list[Json]) -> None:
    """GET /products/{id} and /products/{slug} answer the same product as the listing."""
    listed = by_sku(await all_products(shop))
    for item in source[:10]:
        product = listed[item["sku"]]
        by_id = await shop.get(f"{API}/products/{product['id']}")
        by_slug = await shop.get(f"{API}/products/{product['slug']}")
        assert by_id.status_code == by_slug.status_code == 200
        assert by_id.json() == by_slug.json() == product
    slugs = [p["slug"] for p in listed.values()]
    assert len(set(slugs)) == len(slugs)


async def test_unknown_product_is_404(shop: Client) -> None:
    """An unknown id or slug is a 404 problem with code product_not_found."""
    for key in [str(uuid.uuid4()), "no-such-product", "1", "0"]:
        response = await shop.get(f"{API}/products/{key}")
        assert_problem(response, 404, "product_not_found")


# --- reviews --------------------------------------------------------------------------------


async def test_reviews_match_the_source(shop: Client, source: list[Json]) -> None:
    """Each product's reviews are the source's (rating, comment, reviewer name), 3 each."""
    products = by_sku(await all_products(shop))
    for item in source[::5]:
        reviews = await walk(shop, f"{API}/products/{products[item['sku']]['slug']}/reviews")
        got = sorted((r["rating"], r["body"], r["author_name"]) for r in reviews)
        want = sorted((r["rating"], r["comment"], r["reviewerName"]) for r in item["reviews"])
        assert got == want, item["id"]
        for review in reviews:
            assert review["product_id"] == products[item["sku"]]["id"]
            assert _instant(review["created_at"]) in {_instant(r["date"]) for r in item["reviews"]}
            assert "email" not in json.dumps(review).lower()


async def test_review_cursor_walks_each_review_once(shop: Client) -> None:
    """limit=1 pages through a product's reviews one by one, ending with next_cursor null."""
    reviews = await walk(shop, f"{API}/products/essence-mascara-lash-princess/reviews", limit=1)
    assert len(reviews) == 3
    assert len({r["id"] for r in reviews}) == 3
    full = await walk(shop, f"{API}/products/essence-mascara-lash-princess/reviews")
    assert [r["id"] for r in reviews] == [r["id"] for r in full]


async def test_review_listing_refuses_bad_input(shop: Client) -> None:
    """Bad limit or cursor on reviews: 422; reviews of an unknown product: 404."""
    path = f"{API}/products/essence-mascara-lash-princess/reviews"
    assert_problem(await shop.get(path, params={"limit": 0}), 422, "validation_error")
    assert_problem(await shop.get(path, params={"limit": 101}), 422, "validation_error")
    assert_problem(await shop.get(path, params={"cursor": "garbage"}), 422, "validation_error")
    forged = _cursor("-created_at", 12, str(uuid.uuid4()))
    assert_problem(await shop.get(path, params={"cursor": forged}), 422, "validation_error")
    price_cursor = _cursor("price", 999, str(uuid.uuid4()))
    assert_problem(await shop.get(path, params={"cursor": price_cursor}), 422, "validation_error")
    response = await shop.get(f"{API}/products/no-such-product/reviews")
    assert_problem(response, 404, "product_not_found")


async def test_reviews_newest_first_with_working_cursor(
    client: Client, session: AsyncSession, admin_headers: dict[str, str]
) -> None:
    """Reviews come newest first (same instant: a stable order), each once across pages,
    and the product's rating_average and review_count follow them."""
    category = await create_category(client, admin_headers)
    product = await create_product(client, admin_headers, category["id"])
    base = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    instants = [base + timedelta(days=d) for d in (3, 0, 7, 7, 1, 7, 5)]
    ratings = [5, 1, 4, 2, 3, 5, 4]
    async with session.begin():
        for n, (instant, rating) in enumerate(zip(instants, ratings, strict=True)):
            await upsert_review(
                session,
                product_id=uuid.UUID(product["id"]),
                external_ref=f"test:review:{n}",
                rating=rating,
                body=f"review {n}",
                author_name=f"Reviewer {n}",
                created_at=instant,
            )
        await refresh_rating(session, uuid.UUID(product["id"]))

    pages = await walk(client, f"{API}/products/{product['id']}/reviews", limit=2)
    assert sorted(r["body"] for r in pages) == sorted(f"review {n}" for n in range(7))
    dates = [_instant(r["created_at"]) for r in pages]
    assert dates == sorted(instants, reverse=True)
    assert all(d.utcoffset() == timedelta(0) for d in dates)
    again = await walk(client, f"{API}/products/{product['slug']}/reviews", limit=3)
    assert [r["id"] for r in again] == [r["id"] for r in pages]

    shown = (await client.get(f"{API}/products/{product['id']}")).json()
    assert shown["review_count"] == 7
    assert shown["rating_average"] == pytest.approx(statistics.fmean(ratings), abs=0.005)
