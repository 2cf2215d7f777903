"""Checkout with shipping and tax: the worked examples of the contract placed through the
API and checked against a hand calculation, the shipping refusals (nothing changes), the
free-over threshold, and prices re-read at order time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from conftest import SignIn
from emporium.app import create_app
from emporium.core.config import Settings
from factories import API, Client, assert_problem, create_category, create_product, variant_body
from orders.support import stock_of

Json = dict[str, Any]
BERLIN = {
    "name": "Erika Mustermann",
    "line1": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}
SAN_JOSE = {
    "name": "Ann Smith",
    "line1": "1 Main St",
    "city": "San Jose",
    "region": "CA",
    "postal_code": "95113",
    "country": "US",
}


@pytest.fixture
async def shop(settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[Client]:
    """A client of an app with the currency and tax mode given as the fixture's parameter."""
    currency, inclusive = request.param
    app = create_app(
        settings.model_copy(update={"currency": currency, "prices_include_tax": inclusive})
    )
    async with AsyncTestClient(app=app) as client:
        yield client


async def made(client: Client, headers: dict[str, str], path: str, body: Json) -> Json:
    response = await client.post(f"{API}{path}", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def variant(
    client: Client,
    staff: dict[str, str],
    category: Json,
    price: int,
    tax_class: str = "standard",
    stock: int = 20,
    weight: int | None = None,
) -> Json:
    product = await create_product(
        client,
        staff,
        category["id"],
        tax_class=tax_class,
        variants=[variant_body(price=price, stock=stock, weight_grams=weight)],
    )
    return dict(product["variants"][0]) | {"product_id": product["id"]}


async def checkout(
    client: Client,
    buyer: dict[str, str],
    lines: list[tuple[Json, int]],
    address: Json,
    method: Json | None,
) -> Any:
    body: Json = {
        "items": [{"variant_id": v["id"], "quantity": q} for v, q in lines],
        "shipping_address": address,
    }
    if method is not None:
        body["shipping_method_id"] = method["id"]
    return await client.post(f"{API}/orders", json=body, headers=buyer)


def figures(order: Json) -> tuple[int, ...]:
    return tuple(
        order[k] for k in ("subtotal", "discount_total", "shipping_total", "tax_total", "total")
    )


@pytest.mark.parametrize("shop", [("EUR", True)], indirect=True, ids=["EUR-inclusive"])
async def test_a_german_order_matches_the_hand_calculation(
    shop: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    """Shelf prices include VAT. 3 x 4.99 at 19 %: VAT 14.97 * 19/119 = 2.390 -> 2.39;
    2 x 2.49 at 7 %: 4.98 * 7/107 = 0.326 -> 0.33; shipping 4.90 at 19 %: 0.782 -> 0.78.
    Total 14.97 + 4.98 + 4.90 = 24.85, of which VAT 3.50."""
    staff = admin_headers
    zone = await made(shop, staff, "/shipping-zones", {"name": "Germany", "countries": ["DE"]})
    dhl = await made(
        shop, staff, "/shipping-methods", {"zone_id": zone["id"], "name": "DHL Paket", "price": 490}
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
    buyer = await sign_in()
    response = await checkout(shop, buyer, [(tea, 3), (book, 2)], BERLIN, dhl)
    assert response.status_code == 201, response.text
    order = response.json()
    assert (order["currency"], order["prices_include_tax"]) == ("EUR", True)
    lines = [
        (i["subtotal"], i["discount_total"], i["tax_rate"], i["tax_total"], i["total"])
        for i in order["items"]
    ]
    assert lines == [(1497, 0, 1900, 239, 1497), (498, 0, 700, 33, 498)]
    assert order["shipping"] == {
        "method_id": dhl["id"],
        "name": "DHL Paket",
        "price": 490,
        "tax_total": 78,
    }
    assert figures(order) == (1995, 0, 490, 350, 2485)
    again = await shop.get(f"{API}/orders/{order['id']}", headers=buyer)
    assert again.json() == order


@pytest.mark.parametrize("shop", [("USD", False)], indirect=True, ids=["USD-exclusive"])
async def test_a_californian_order_takes_the_state_rate_over_the_country_zero(
    shop: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    """Prices exclude tax. The US has a zero rate, California 7.25 %, shipping (class
    ``shipping``) has no rate. 2 x 19.99: 39.98 * 7.25 % = 2.89855 -> 2.90; 1 x 6.00: 0.435
    -> 0.44 (half up). Total 39.98 + 6.00 + 7.99 + 3.34 = 57.31."""
    staff = admin_headers
    zone = await made(shop, staff, "/shipping-zones", {"name": "US", "countries": ["US"]})
    ground = await made(
        shop,
        staff,
        "/shipping-methods",
        {"zone_id": zone["id"], "name": "Ground", "price": 799, "tax_class": "shipping"},
    )
    await made(shop, staff, "/tax-rates", {"country": "US", "rate_bp": 0, "name": "US"})
    await made(
        shop,
        staff,
        "/tax-rates",
        {"country": "US", "region": "US-CA", "rate_bp": 725, "name": "CA"},
    )
    category = await create_category(shop, staff)
    lamp, bulb = (
        await variant(shop, staff, category, 1999),
        await variant(shop, staff, category, 600),
    )
    buyer = await sign_in()
    response = await checkout(shop, buyer, [(lamp, 2), (bulb, 1)], SAN_JOSE, ground)
    assert response.status_code == 201, response.text
    order = response.json()
    assert [(i["tax_rate"], i["tax_total"], i["total"]) for i in order["items"]] == [
        (725, 290, 4288),
        (725, 44, 644),
    ]
    assert order["shipping"]["tax_total"] == 0
    assert figures(order) == (4598, 0, 799, 334, 5731)
    oregon = await checkout(shop, buyer, [(lamp, 2)], SAN_JOSE | {"region": "OR"}, ground)
    assert figures(oregon.json()) == (3998, 0, 799, 0, 4797)


@pytest.mark.parametrize("shop", [("EUR", True)], indirect=True, ids=["EUR-inclusive"])
async def test_shipping_refusals_change_nothing(
    shop: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    staff = admin_headers
    germany = await made(shop, staff, "/shipping-zones", {"name": "DE", "countries": ["DE"]})
    france = await made(shop, staff, "/shipping-zones", {"name": "FR", "countries": ["FR"]})
    light = await made(
        shop,
        staff,
        "/shipping-methods",
        {"zone_id": germany["id"], "name": "Letter", "price": 190, "max_weight_grams": 500},
    )
    colissimo = await made(
        shop,
        staff,
        "/shipping-methods",
        {"zone_id": france["id"], "name": "Colissimo", "price": 700},
    )
    category = await create_category(shop, staff)
    heavy = await variant(shop, staff, category, 1000, stock=5, weight=400)
    buyer = await sign_in()
    assert_problem(
        await checkout(shop, buyer, [(heavy, 1)], BERLIN, None), 422, "shipping_method_required"
    )
    assert_problem(
        await checkout(shop, buyer, [(heavy, 1)], BERLIN, colissimo),
        422,
        "shipping_method_unavailable",
    )
    assert_problem(
        await checkout(shop, buyer, [(heavy, 2)], BERLIN, light), 422, "shipping_method_unavailable"
    )  # 800 g over the letter's 500 g
    assert_problem(
        await checkout(shop, buyer, [(heavy, 1)], BERLIN | {"country": "AT"}, light),
        422,
        "shipping_method_unavailable",
    )
    await shop.patch(f"{API}/shipping-methods/{light['id']}", json={"active": False}, headers=staff)
    assert_problem(
        await checkout(shop, buyer, [(heavy, 1)], BERLIN, light), 422, "shipping_method_unavailable"
    )
    assert await stock_of(shop, staff, heavy) == 5
    orders = await shop.get(f"{API}/orders", headers=buyer)
    assert orders.json()["items"] == []


@pytest.mark.parametrize("shop", [("USD", False)], indirect=True, ids=["USD-exclusive"])
async def test_free_over_and_a_price_changed_before_the_order(
    shop: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    """The cart shows 20.00; staff raise the price to 30.00; the order is priced at 30.00,
    and its subtotal now reaches the 50.00 free-shipping threshold (2 x 30.00)."""
    staff = admin_headers
    zone = await made(shop, staff, "/shipping-zones", {"name": "US", "countries": ["US"]})
    ground = await made(
        shop,
        staff,
        "/shipping-methods",
        {"zone_id": zone["id"], "name": "Ground", "price": 799, "free_over": 5000},
    )
    category = await create_category(shop, staff)
    shirt = await variant(shop, staff, category, 2000)
    buyer = await sign_in()
    cart = await shop.post(
        f"{API}/cart/items", json={"variant_id": shirt["id"], "quantity": 2}, headers=buyer
    )
    assert cart.json()["total"] == 4000
    await shop.patch(f"{API}/variants/{shirt['id']}", json={"price": 3000}, headers=staff)
    body = {"shipping_address": SAN_JOSE, "shipping_method_id": ground["id"]}
    order = (await shop.post(f"{API}/orders", json=body, headers=buyer)).json()
    assert order["items"][0]["unit_price"] == 3000
    assert figures(order) == (6000, 0, 0, 0, 6000)
    assert order["shipping"]["price"] == 0


# Per shop: its zone, its one tax rate, the buyer's address, then the cart's figures
# (subtotal, discount_total, shipping_total, tax_total, total) worked by hand at 2 x 20.00
# with 7.99 shipping (free over 50.00), and at 2 x 30.00 after staff changed the price.
# EUR, VAT inside the prices: 40.00 * 19/119 = 6.387 -> 6.39, shipping 7.99 * 19/119 =
# 1.276 -> 1.28; 60.00 * 19/119 = 9.580 -> 9.58 and shipping free.
# USD, California's 7.25 % on top (the method's class is "standard" too): 2.90 and 7.99 *
# 7.25 % = 0.579 -> 0.58; 60.00 * 7.25 % = 4.35 and shipping free.
GERMANY = (
    {"name": "DE", "countries": ["DE"]},
    {"country": "DE", "tax_class": "standard", "rate_bp": 1900, "name": "USt"},
    BERLIN,
    (4000, 0, 799, 639 + 128, 4799),
    (6000, 0, 0, 958, 6000),
)
CALIFORNIA = (
    {"name": "US", "countries": ["US"]},
    {"country": "US", "region": "US-CA", "rate_bp": 725, "name": "CA"},
    SAN_JOSE,
    (4000, 0, 799, 290 + 58, 4000 + 799 + 348),
    (6000, 0, 0, 435, 6435),
)
PRICE_CHANGE_SHOPS = [
    pytest.param(("EUR", True), GERMANY, id="EUR-inclusive"),
    pytest.param(("USD", False), CALIFORNIA, id="USD-exclusive"),
]


async def cart_for_two_shirts(
    shop: Client, staff: dict[str, str], where: tuple[Json, Json, Json, Any, Any]
) -> tuple[Json, Json, Json]:
    """Staff set up the zone, a method at 7.99 free over 50.00, the rate and a shirt at
    20.00. Returns the method, the shirt and a cart line of two shirts."""
    zone_body, rate_body, _, _, _ = where
    zone = await made(shop, staff, "/shipping-zones", zone_body)
    method = {"zone_id": zone["id"], "name": "Ground", "price": 799, "free_over": 5000}
    ground = await made(shop, staff, "/shipping-methods", method)
    await made(shop, staff, "/tax-rates", rate_body)
    shirt = await variant(shop, staff, await create_category(shop, staff), 2000)
    return ground, shirt, {"variant_id": shirt["id"], "quantity": 2}


@pytest.mark.parametrize("holder", ["guest", "customer"])
@pytest.mark.parametrize(("shop", "where"), PRICE_CHANGE_SHOPS, indirect=["shop"])
async def test_a_price_changed_by_staff_after_the_cart_is_the_new_price_in_cart_and_order(
    shop: Client,
    admin_headers: dict[str, str],
    sign_in: SignIn,
    where: tuple[Json, Json, Json, tuple[int, ...], tuple[int, ...]],
    holder: str,
) -> None:
    """A cart resource (``POST /carts``, ``PATCH`` address and method), a guest's or a
    customer's, shows 2 x 20.00 with shipping; staff raise the price to 30.00 through the
    catalog API; the cart answer now shows 30.00 (its subtotal reaches the free-shipping
    threshold), and the order (``POST /orders {cart_id}``) is placed at 30.00 with exactly
    the figures the cart showed last."""
    staff = admin_headers
    ground, shirt, line = await cart_for_two_shirts(shop, staff, where)
    _, _, address, before, after = where
    buyer = await sign_in() if holder == "customer" else {}
    created = await shop.post(
        f"{API}/carts", json={"email": "buyer@example.com", "items": [line]}, headers=buyer
    )
    assert created.status_code == 201, created.text
    if holder == "guest":
        buyer = {"Cart-Token": created.json()["token"]}
    url = f"{API}/carts/{created.json()['id']}"
    chosen = await shop.patch(
        url, json={"shipping_address": address, "shipping_method_id": ground["id"]}, headers=buyer
    )
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["items"][0]["unit_price"] == 2000
    assert figures(chosen.json()) == before
    assert chosen.json()["shipping_method"]["price"] == 799

    changed = await shop.patch(f"{API}/variants/{shirt['id']}", json={"price": 3000}, headers=staff)
    assert changed.status_code == 200, changed.text
    cart = (await shop.get(url, headers=buyer)).json()
    assert (cart["items"][0]["unit_price"], cart["items"][0]["subtotal"]) == (3000, 6000)
    assert figures(cart) == after
    assert cart["shipping_method"]["price"] == 0

    placed = await shop.post(f"{API}/orders", json={"cart_id": cart["id"]}, headers=buyer)
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert [
        (i["unit_price"], i["quantity"], i["subtotal"], i["tax_total"], i["total"])
        for i in order["items"]
    ] == [
        (i["unit_price"], i["quantity"], i["subtotal"], i["tax_total"], i["total"])
        for i in cart["items"]
    ]
    assert figures(order) == figures(cart) == after
    assert (order["shipping"]["price"], order["shipping"]["tax_total"]) == (
        cart["shipping_method"]["price"],
        cart["shipping_method"]["tax_total"],
    )
    if holder == "guest":
        buyer = {"Order-Token": order["order_token"]}
    stored = (await shop.get(f"{API}/orders/{order['id']}", headers=buyer)).json()
    assert figures(stored) == after
    assert stored["items"][0]["unit_price"] == 3000


TOKYO = {
    "name": "Hanako Yamada",
    "line1": "1-1 Marunouchi",
    "city": "Chiyoda",
    "postal_code": "100-0005",
    "country": "JP",
}
MANAMA = {"name": "Ali Hasan", "line1": "Road 1", "city": "Manama", "postal_code": "317"}
# Yen have no decimals; consumption tax inside the prices, 10 % and 8 % (food). 3 x 1280 at
# 8 %: 3840 * 8/108 = 284.4 -> 284; 2980 at 10 %: 2980 / 11 = 270.9 -> 271; shipping 550 at
# 10 %: 50. Total 3840 + 2980 + 550 = 7370, of which 605 tax.
YEN = ("JPY", TOKYO, [284, 271], 50, (6820, 0, 550, 605, 7370))
# Bahraini dinars have 3 decimals (fils); VAT 10 % on top, 8 % for the "reduced" class
# here. 3 x 1.280: 3.840 * 8 % = 0.3072 -> 0.307; 2.980 * 10 % = 0.298; shipping 0.550 *
# 10 % = 0.055. Total 3.840 + 2.980 + 0.550 + 0.660 = 8.030.
DINARS = ("BHD", MANAMA | {"country": "BH"}, [307, 298], 55, (6820, 0, 550, 660, 8030))


@pytest.mark.parametrize(
    ("shop", "expected"),
    [
        pytest.param(("JPY", True), YEN, id="JPY-inclusive"),
        pytest.param(("BHD", False), DINARS, id="BHD-exclusive"),
    ],
    indirect=["shop"],
)
async def test_zero_and_three_decimal_currencies_match_the_hand_calculation(
    shop: Client,
    admin_headers: dict[str, str],
    sign_in: SignIn,
    expected: tuple[str, Json, list[int], int, tuple[int, ...]],
) -> None:
    """Amounts are whole minor units of the shop's currency (yen, fils), tax rounded half
    up to them; the cart answer and the order agree."""
    staff = admin_headers
    currency, address, line_taxes, shipping_tax, totals = expected
    country = address["country"]
    zone = await made(shop, staff, "/shipping-zones", {"name": country, "countries": [country]})
    method = {"zone_id": zone["id"], "name": "Post", "price": 550}
    post = await made(shop, staff, "/shipping-methods", method)
    for tax_class, rate in (("standard", 1000), ("reduced", 800)):
        rate_body = {"country": country, "tax_class": tax_class, "rate_bp": rate, "name": "VAT"}
        await made(shop, staff, "/tax-rates", rate_body)
    category = await create_category(shop, staff)
    rice = await variant(shop, staff, category, 1280, tax_class="reduced")
    kettle = await variant(shop, staff, category, 2980)
    buyer = await sign_in()
    items = [{"variant_id": rice["id"], "quantity": 3}, {"variant_id": kettle["id"], "quantity": 1}]
    cart = await shop.post(f"{API}/carts", json={"items": items}, headers=buyer)
    assert cart.status_code == 201, cart.text
    body = {"shipping_address": address, "shipping_method_id": post["id"]}
    chosen = await shop.patch(f"{API}/carts/{cart.json()['id']}", json=body, headers=buyer)
    assert chosen.status_code == 200, chosen.text
    assert figures(chosen.json()) == totals
    placed = await shop.post(f"{API}/orders", json=body, headers=buyer)
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert order["currency"] == chosen.json()["currency"] == rice["currency"] == currency
    assert [i["tax_total"] for i in order["items"]] == line_taxes
    assert order["shipping"]["tax_total"] == shipping_tax
    assert figures(order) == totals
