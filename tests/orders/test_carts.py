"""Carts as resources: a guest's cart is a capability (a token shown once, stored hashed,
sent as ``Cart-Token``; anyone else gets 404), a customer's cart is the account's (the v1
``/cart``), the answer is priced for the address and method, and a guest cart merges into
the customer's on claim."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import SignIn
from emporium.orders.models import Cart
from factories import API, Client, assert_problem, create_category, product_body
from orders.test_checkout_taxes import BERLIN, SAN_JOSE, made, shop, variant

Json = dict[str, Any]
__all__ = ["shop"]  # the fixture, imported


async def german_shop(shop: Client, staff: dict[str, str]) -> tuple[Json, Json, Json, Json]:
    """DE zone with DHL (4.90) and a free-over-50 express (9.90); VAT 19 % and 7 %; a tea at
    4.99 (standard) and a book at 2.49 (reduced)."""
    zone = await made(shop, staff, "/shipping-zones", {"name": "DE", "countries": ["DE"]})
    us = await made(shop, staff, "/shipping-zones", {"name": "US", "countries": ["US"]})
    dhl = await made(
        shop, staff, "/shipping-methods", {"zone_id": zone["id"], "name": "DHL", "price": 490}
    )
    await made(
        shop,
        staff,
        "/shipping-methods",
        {"zone_id": zone["id"], "name": "Express", "price": 990, "free_over": 1000},
    )
    ups = await made(
        shop, staff, "/shipping-methods", {"zone_id": us["id"], "name": "UPS", "price": 500}
    )
    for tax_class, rate in (("standard", 1900), ("reduced", 700)):
        await made(
            shop,
            staff,
            "/tax-rates",
            {"country": "DE", "tax_class": tax_class, "rate_bp": rate, "name": f"USt {rate}"},
        )
    category = await create_category(shop, staff)
    tea = await variant(shop, staff, category, 499)
    book = await variant(shop, staff, category, 249, tax_class="reduced")
    return dhl, ups, tea, book


@pytest.mark.parametrize("shop", [("EUR", True)], indirect=True, ids=["EUR-inclusive"])
async def test_a_guest_fills_a_cart_and_sees_shipping_and_tax(
    shop: Client, admin_headers: dict[str, str], sign_in: SignIn, session: AsyncSession
) -> None:
    dhl, ups, tea, book = await german_shop(shop, admin_headers)
    created = await shop.post(
        f"{API}/carts",
        json={"email": "guest@example.com", "items": [{"variant_id": tea["id"], "quantity": 2}]},
    )
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    cart = created.json()
    token = cart.pop("token")
    assert token.startswith("emp_cart_")
    assert len(token) > 40
    guest = {"Cart-Token": token}
    url = f"{API}/carts/{cart['id']}"
    stored = await session.scalar(select(Cart.token_hash).where(Cart.id == uuid.UUID(cart["id"])))
    assert stored == hashlib.sha256(b"cart\x00" + token.encode()).hexdigest()

    assert_problem(await shop.get(url), 404, "cart_not_found")
    assert_problem(await shop.get(url, headers={"Cart-Token": token[:-1] + "x"}), 404)
    assert_problem(await shop.get(url, headers=await sign_in()), 404)
    assert_problem(await shop.get(url, headers=admin_headers), 404)
    assert (await shop.get(url, headers=guest)).json() == cart

    added = await shop.post(
        f"{url}/items", headers=guest, json={"variant_id": tea["id"], "quantity": 1}
    )
    assert [i["quantity"] for i in added.json()["items"]] == [3]
    await shop.post(f"{url}/items", headers=guest, json={"variant_id": book["id"], "quantity": 2})
    assert (await shop.get(f"{url}/shipping-methods", headers=guest)).json() == []
    with_address = await shop.patch(url, headers=guest, json={"shipping_address": BERLIN})
    assert with_address.json()["tax_total"] == 239 + 33  # VAT inside the shelf prices
    options = (await shop.get(f"{url}/shipping-methods", headers=guest)).json()
    assert [(o["name"], o["price"], o["tax_total"]) for o in options] == [
        ("Express", 0, 0),
        ("DHL", 490, 78),
    ]  # 19.95 reaches Express's free-over 10.00
    refused = await shop.patch(url, headers=guest, json={"shipping_method_id": ups["id"]})
    assert_problem(refused, 422, "shipping_method_unavailable")
    chosen = (await shop.patch(url, headers=guest, json={"shipping_method_id": dhl["id"]})).json()
    assert chosen["shipping_method"] == {
        "id": dhl["id"],
        "name": "DHL",
        "price": 490,
        "tax_total": 78,
    }
    figures = tuple(
        chosen[k] for k in ("subtotal", "discount_total", "shipping_total", "tax_total", "total")
    )
    assert figures == (1995, 0, 490, 350, 2485)  # as the German order of test_checkout_taxes
    assert chosen["email"] == "guest@example.com"
    assert chosen["shipping_address"]["city"] == "Berlin"
    line = chosen["items"][1]["id"]
    fewer = await shop.patch(f"{url}/items/{line}", headers=guest, json={"quantity": 1})
    assert fewer.json()["items"][1]["quantity"] == 1
    assert (await shop.delete(f"{url}/items/{line}", headers=guest)).status_code == 204
    assert_problem(await shop.delete(f"{url}/items/{line}", headers=guest), 404)
    moved = await shop.patch(url, headers=guest, json={"shipping_address": SAN_JOSE})
    assert moved.json()["shipping_method"] is None  # DHL does not serve California


@pytest.mark.parametrize("shop", [("USD", False)], indirect=True, ids=["USD-exclusive"])
@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-address"},
        {"items": [{"variant_id": str(uuid.uuid4()), "quantity": 1}]},
        {"items": [{"variant_id": str(uuid.uuid4()), "quantity": 0}]},
        {"customer_id": "x"},
    ],
)
async def test_bad_carts_are_refused(shop: Client, body: Json, session: AsyncSession) -> None:
    assert_problem(await shop.post(f"{API}/carts", json=body), 422)
    assert (await session.scalars(select(Cart))).all() == []


@pytest.mark.parametrize("shop", [("USD", False)], indirect=True, ids=["USD-exclusive"])
async def test_a_guest_cart_merges_into_the_customers_on_claim(
    shop: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    category = await create_category(shop, admin_headers)
    mug, cup = (
        await variant(shop, admin_headers, category, 800),
        await variant(shop, admin_headers, category, 300),
    )
    buyer = await sign_in()
    await shop.post(
        f"{API}/cart/items", json={"variant_id": mug["id"], "quantity": 1}, headers=buyer
    )
    guest_cart = (
        await shop.post(
            f"{API}/carts",
            json={
                "items": [
                    {"variant_id": mug["id"], "quantity": 2},
                    {"variant_id": cup["id"], "quantity": 1},
                ]
            },
        )
    ).json()
    guest = {"Cart-Token": guest_cart["token"]}
    url = f"{API}/carts/{guest_cart['id']}"
    assert_problem(await shop.post(f"{url}/claim", headers=guest), 401)
    assert_problem(await shop.post(f"{url}/claim", headers=buyer), 404)
    claimed = await shop.post(f"{url}/claim", headers=buyer | guest)
    assert claimed.status_code == 200, claimed.text
    v1 = (await shop.get(f"{API}/cart", headers=buyer)).json()
    assert [(i["variant_id"], i["quantity"]) for i in v1["items"]] == [
        (mug["id"], 3),
        (cup["id"], 1),
    ]
    assert claimed.json()["id"] != guest_cart["id"]
    assert claimed.json()["customer_id"] is not None
    assert_problem(await shop.get(url, headers=guest), 404)  # the guest cart is gone
    mine = await shop.post(f"{API}/carts", json={}, headers=buyer)
    assert mine.status_code == 201
    assert (mine.json()["id"], mine.json()["token"]) == (claimed.json()["id"], None)


async def test_a_variant_without_a_sku_is_a_cart_line_with_a_null_sku(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """SKUs are optional (Shopify exports): such a variant is bought like any other and the
    cart answers its line with ``sku: null``, as the document says."""
    category = await create_category(client, admin_headers)
    body = product_body(
        category["id"], variants=[{"sku": None, "title": "Default", "price": 500, "stock": 3}]
    )
    product = await client.post(f"{API}/products", json=body, headers=admin_headers)
    assert product.status_code == 201, product.text
    variant_id = product.json()["variants"][0]["id"]
    created = await client.post(
        f"{API}/carts", json={"items": [{"variant_id": variant_id, "quantity": 2}]}
    )
    assert created.status_code == 201, created.text
    (line,) = created.json()["items"]
    assert (line["sku"], line["quantity"], line["subtotal"]) == (None, 2, 1000)
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]
    assert {"type": "null"} in schema["CartLineRead"]["properties"]["sku"]["oneOf"]
