"""Full-text search (``q=``): what a shopper typing words finds, in which order, on
SQLite FTS5 and on PostgreSQL alike, checked against the DummyJSON source file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from factories import (
    API,
    Client,
    Json,
    all_products,
    assert_problem,
    create_category,
    create_product,
    source_products,
    walk,
)


@pytest.fixture(scope="module")
def source(datasets_dir: Path) -> dict[str, Json]:
    """The source products by SKU."""
    return {s["sku"]: s for s in source_products(datasets_dir)}


def _skus(items: list[Json]) -> list[str]:
    return [p["variants"][0]["sku"] for p in items]


def _keywords(item: Json) -> str:
    return " ".join([item.get("brand") or "", *item["tags"]]).lower()


def _text(item: Json) -> str:
    return " ".join([item["title"], item["description"], _keywords(item)]).lower()


def _with_word(source: dict[str, Json], word: str) -> set[str]:
    """SKUs of the products that contain ``word`` as a whole word anywhere searchable."""
    pattern = re.compile(rf"\b{re.escape(word)}\b", re.IGNORECASE)
    return {sku for sku, s in source.items() if pattern.search(_text(s))}


def _with_stem(source: dict[str, Json], stem: str) -> set[str]:
    """SKUs of the products whose searchable text contains ``stem`` at all."""
    return {sku for sku, s in source.items() if stem in _text(s)}


async def _search(shop: Client, q: str, **params: Any) -> list[Json]:
    return await all_products(shop, q=q, **params)


@pytest.mark.parametrize(
    ("q", "stem"),
    [
        ("mascara", "mascara"),  # a title word
        ("Mascara", "mascara"),  # any case
        ("sandalwood", "sandalwood"),  # a word only one description has
        ("upholstery", "upholster"),
        ("mulberries", "mulberr"),
        ("Rolex", "rolex"),  # a brand
        ("vegetables", "veget"),  # a tag most of whose products never say it
        ("watches", "watch"),  # stemmed: finds "Watch" titles
    ],
)
async def test_search_finds_products_by_their_words(
    shop: Client, source: dict[str, Json], q: str, stem: str
) -> None:
    """Every product holding the word (in title, description, brand or tags) is found, and
    every product found holds the word or a form of it."""
    found = set(_skus(await _search(shop, q)))
    required = _with_word(source, q)
    assert required, q
    assert required <= found, f"{q!r} misses {required - found}"
    assert found <= _with_stem(source, stem), f"{q!r} finds unrelated {found - required}"


async def test_exact_description_words_find_exactly_one_product(
    shop: Client, source: dict[str, Json]
) -> None:
    """A word that appears in one product's description only finds that product."""
    for word, title in [
        ("sandalwood", "Chanel Coco Noir Eau De"),
        ("volumizing", "Essence Mascara Lash Princess"),
        ("countertop", None),
    ]:
        items = await _search(shop, word)
        assert len(items) == 1, word
        expected = next(iter(_with_word(source, word)))
        assert _skus(items) == [expected]
        if title:
            assert items[0]["title"] == title


async def test_brand_and_tag_words_find_their_products(
    shop: Client, source: dict[str, Json]
) -> None:
    """Searching a brand finds all its products; searching a tag finds all tagged products."""
    rolex = {sku for sku, s in source.items() if s.get("brand") == "Rolex"}
    assert len(rolex) == 6
    assert rolex <= set(_skus(await _search(shop, "rolex")))
    tagged = {sku for sku, s in source.items() if "vegetables" in s["tags"]}
    assert tagged <= set(_skus(await _search(shop, "vegetables")))


@pytest.mark.parametrize("word", ["leather", "camera", "battery", "selfie"])
async def test_title_matches_rank_above_description_matches(
    shop: Client, source: dict[str, Json], word: str
) -> None:
    """With q and no sort, results come by relevance: products with the word in their
    title come before products that only mention it in their description."""
    items = await _search(shop, word)
    explicit = await _search(shop, word, sort="relevance")
    assert [p["id"] for p in items] == [p["id"] for p in explicit]
    in_title = [word in source[sku]["title"].lower() for sku in _skus(items)]
    description_only = [
        word not in source[sku]["title"].lower() and word not in _keywords(source[sku])
        for sku in _skus(items)
    ]
    assert any(in_title)
    assert any(description_only)
    last_title = max(i for i, hit in enumerate(in_title) if hit)
    first_description_only = min(i for i, hit in enumerate(description_only) if hit)
    assert last_title < first_description_only, [source[s]["title"] for s in _skus(items)]


async def test_every_word_is_required(shop: Client, source: dict[str, Json]) -> None:
    """A multi-word query finds the products holding all the words, not any of them."""
    for q in ["wireless earphones", "leather bag", "stainless steel", "apple watch"]:
        words = q.split()
        found = set(_skus(await _search(shop, q)))
        each = [set(_skus(await _search(shop, w))) for w in words]
        assert found, q
        assert found == set.intersection(*each), q
        assert found < set.union(*each), q
    assert await _search(shop, "mascara laptop") == []


@pytest.mark.parametrize(
    "q", ["mascara -lash", '"lash princess"', "mascara or lipstick", "lash -princess -mascara"]
)
async def test_search_operators_are_plain_words(
    shop: Client, source: dict[str, Json], q: str
) -> None:
    """Minus signs, quotes and "or" are not query syntax: every word of q is required,
    so the same query finds the same products on every database."""
    words = re.findall(r"\w+", q)
    expected = set.intersection(*(_with_word(source, w) for w in words))
    assert set(_skus(await _search(shop, q))) == expected


@pytest.mark.parametrize(
    "q",
    ["!!!", "...", "-", '"', "*", "()", "'", "^", ":", "NEAR(", "--", "%", "\\"],
)
async def test_query_without_words_gives_an_empty_page(shop: Client, q: str) -> None:
    """A query of punctuation only finds nothing: an empty page, not an error."""
    response = await shop.get(f"{API}/products", params={"q": q})
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    "q",
    [
        'mascara"',
        "mascara*",
        "title:mascara",
        "NEAR(mascara lash)",
        "mascara AND",
        "mascara)",
        "{mascara}",
        "mascara'; DROP TABLE product; --",
    ],
)
async def test_query_syntax_characters_never_break_search(
    shop: Client, source: dict[str, Json], q: str
) -> None:
    """Characters that mean something to a search engine (or to SQL) are just text: a 200
    answer with the products holding every word, never an error."""
    response = await shop.get(f"{API}/products", params={"q": q, "limit": 100})
    assert response.status_code == 200, response.text
    expected = set.intersection(*(_with_word(source, w) for w in re.findall(r"\w+", q)))
    assert set(_skus(response.json()["items"])) == expected
    assert len(await all_products(shop)) == 194


async def test_paging_through_search_results(shop: Client) -> None:
    """Search results page with cursors like any listing: each result once, same order as
    one big page, in relevance or in any other sort."""
    for q, sort, limit in [
        ("watch", None, 5),
        ("kitchen", None, 4),
        ("kitchen", "price", 4),
        ("kitchen", "-rating", 3),
        ("apple", "title", 2),
    ]:
        paged = await walk(shop, f"{API}/products", q=q, sort=sort, limit=limit)
        whole = await walk(shop, f"{API}/products", q=q, sort=sort, limit=100)
        ids = [p["id"] for p in paged]
        assert len(ids) == len(set(ids)) == len(whole) > limit, (q, sort)
        assert ids == [p["id"] for p in whole], (q, sort)
    by_price = await _search(shop, "kitchen", sort="price")
    prices = [p["price_min"] for p in by_price]
    assert prices == sorted(prices)


async def test_search_combines_with_filters(shop: Client, source: dict[str, Json]) -> None:
    """q narrows the other filters (and they narrow q)."""
    items = await _search(shop, "watch", category="mens-watches", max_price=1000000)
    expected = {
        sku
        for sku in _with_stem(source, "watch")
        if source[sku]["category"] == "mens-watches" and round(source[sku]["price"] * 100) <= 10**6
    }
    assert set(_skus(items)) == expected
    assert expected


async def test_relevance_needs_a_query(shop: Client) -> None:
    """sort=relevance without q cannot be honoured: 422."""
    response = await shop.get(f"{API}/products", params={"sort": "relevance"})
    body = assert_problem(response, 422, "validation_error")
    assert any("sort" in e["loc"] for e in body["errors"])


async def test_search_folds_accents(client: Client, admin_headers: dict[str, str]) -> None:
    """A shopper typing without accents finds accented titles, and the other way round."""
    category = await create_category(client, admin_headers, "Desserts")
    product = await create_product(client, admin_headers, category["id"], title="Crème Brûlée")
    for q in ["Crème Brûlée", "creme brulee", "CREME", "brûlée"]:
        items = await all_products(client, q=q)
        assert [p["id"] for p in items] == [product["id"]], q
