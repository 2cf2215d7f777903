"""The promotions worked out by hand (``test_worked_examples.py``) again through the HTTP
API, on both databases: staff set up the zone, method, tax rates and promotions through
their routes, a guest fills a cart and enters the code, and the cart and then the order
show the hand-calculated figures (per line and in all, the promotions with what each gave).
The calculations are in ``test_worked_examples.py``; each test repeats the result."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from emporium.app import create_app
from emporium.core.config import Settings
from factories import API, Client, create_category, create_product, variant_body

Json = dict[str, Any]
BERLIN = {
    "name": "Erika Mustermann",
    "line1": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}


@pytest.fixture
async def shop(settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[Client]:
    """A EUR shop whose prices include tax or not, as the fixture's parameter says."""
    app = create_app(
        settings.model_copy(update={"currency": "EUR", "prices_include_tax": request.param})
    )
    async with AsyncTestClient(app=app) as client:
        yield client


INCLUSIVE = pytest.mark.parametrize("shop", [True], indirect=True, ids=["inclusive"])
EXCLUSIVE = pytest.mark.parametrize("shop", [False], indirect=True, ids=["exclusive"])


async def made(client: Client, staff: dict[str, str], path: str, body: Json) -> Json:
    response = await client.post(f"{API}{path}", json=body, headers=staff)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def german_shipping(
    client: Client, staff: dict[str, str], *, price: int = 490, free_over: int | None = None
) -> Json:
    """A zone for Germany, 19 % and 7 % VAT, and a DHL method (taxed at 19 %)."""
    zone = await made(client, staff, "/shipping-zones", {"name": "Germany", "countries": ["DE"]})
    for tax_class, rate in (("standard", 1900), ("reduced", 700)):
        body = {"country": "DE", "tax_class": tax_class, "rate_bp": rate, "name": f"USt {rate}"}
        await made(client, staff, "/tax-rates", body)
    method: Json = {"zone_id": zone["id"], "name": "DHL Paket", "price": price}
    if free_over is not None:
        method["free_over"] = free_over
    return await made(client, staff, "/shipping-methods", method)


async def variant(
    client: Client, staff: dict[str, str], category: Json, price: int, tax_class: str = "standard"
) -> str:
    product = await create_product(
        client,
        staff,
        category["id"],
        tax_class=tax_class,
        variants=[variant_body(price=price, stock=20)],
    )
    return str(product["variants"][0]["id"])


async def guest_cart(
    client: Client, lines: list[tuple[str, int]], method: Json | None = None
) -> tuple[str, dict[str, str]]:
    """A guest's cart in Berlin with these ``(variant_id, quantity)`` lines and ``method``."""
    created = await client.post(
        f"{API}/carts",
        json={
            "email": "erika@example.com",
            "items": [{"variant_id": v, "quantity": q} for v, q in lines],
        },
    )
    assert created.status_code == 201, created.text
    cart_id, holder = created.json()["id"], {"Cart-Token": created.json()["token"]}
    changes: list[Json] = [{"shipping_address": BERLIN}]
    if method is not None:
        changes.append({"shipping_method_id": method["id"]})
    for change in changes:
        patched = await client.patch(f"{API}/carts/{cart_id}", json=change, headers=holder)
        assert patched.status_code == 200, patched.text
    return cart_id, holder


async def enter(client: Client, cart_id: str, holder: dict[str, str], code: str) -> Json:
    response = await client.post(
        f"{API}/carts/{cart_id}/promotion-codes", json={"code": code}, headers=holder
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def place(client: Client, cart_id: str, holder: dict[str, str]) -> Json:
    response = await client.post(f"{API}/orders", json={"cart_id": cart_id}, headers=holder)
    assert response.status_code == 201, response.text
    order = dict(response.json())
    again = await client.get(
        f"{API}/orders/{order['id']}", headers={"Order-Token": order["order_token"]}
    )
    assert again.status_code == 200, again.text
    assert again.json()["promotions"] == order["promotions"]
    assert figures(again.json()) == figures(order)
    return order


def figures(priced: Json) -> tuple[int, ...]:
    return tuple(
        priced[k] for k in ("subtotal", "discount_total", "shipping_total", "tax_total", "total")
    )


def lines(priced: Json, order_of: list[str]) -> list[tuple[int, int, int]]:
    """``(discount_total, tax_total, total)`` of each line, in the order of ``order_of``."""
    by_variant = {i["variant_id"]: i for i in priced["items"]}
    return [
        (by_variant[v]["discount_total"], by_variant[v]["tax_total"], by_variant[v]["total"])
        for v in order_of
    ]


def promotions(priced: Json) -> list[tuple[str | None, str, int]]:
    found = [(p["code"], p["name"], p["amount"]) for p in priced["promotions"]]
    return sorted(found, key=lambda p: p[1])


@INCLUSIVE
async def test_ten_percent_off_a_category_with_vat_included(
    shop: Client, admin_headers: dict[str, str]
) -> None:
    """Clothing 10 % off (its sub-category T-shirts included): 8.99 off, spread 3.99 and
    5.00 (the leftover cent to the largest line), the mug untouched; VAT inside 5.75, 7.18,
    2.00 and 0.78 on shipping; total 98.34."""
    staff = admin_headers
    dhl = await german_shipping(shop, staff)
    clothing = await create_category(shop, staff, "Clothing")
    tshirts = await create_category(shop, staff, "T-shirts", parent_id=clothing["id"])
    kitchen = await create_category(shop, staff, "Kitchen")
    shirt = await variant(shop, staff, tshirts, 1999)
    hoodie = await variant(shop, staff, clothing, 4995)
    mug = await variant(shop, staff, kitchen, 1250)
    await made(
        shop,
        staff,
        "/promotions",
        {
            "name": "Clothing 10 %",
            "code": "CLOTHES10",
            "type": "percentage",
            "value": 1000,
            "applies_to": {"category_ids": [clothing["id"]]},
        },
    )
    cart_id, holder = await guest_cart(shop, [(shirt, 2), (hoodie, 1), (mug, 1)], dhl)
    cart = await enter(shop, cart_id, holder, "clothes10")
    order = await place(shop, cart_id, holder)

    for priced in (cart, order):
        assert promotions(priced) == [("CLOTHES10", "Clothing 10 %", 899)]
        assert lines(priced, [shirt, hoodie, mug]) == [
            (399, 575, 3599),
            (500, 718, 4495),
            (0, 200, 1250),
        ]
        assert figures(priced) == (10_243, 899, 490, 1571, 9834)
    assert order["shipping"]["tax_total"] == 78


@EXCLUSIVE
async def test_a_fixed_five_off_lines_at_19_and_7_percent(
    shop: Client, admin_headers: dict[str, str]
) -> None:
    """5.00 off 8.97 (19 %) and 3.98 (7 %): spread 3.47 and 1.53, tax 1.05 (1.045 half up)
    and 0.17; total 12.95 - 5.00 + 1.22 = 9.17 (no shipping set up)."""
    staff = admin_headers
    for tax_class, rate in (("standard", 1900), ("reduced", 700)):
        body = {"country": "DE", "tax_class": tax_class, "rate_bp": rate, "name": f"USt {rate}"}
        await made(shop, staff, "/tax-rates", body)
    category = await create_category(shop, staff)
    tea = await variant(shop, staff, category, 299)
    book = await variant(shop, staff, category, 199, tax_class="reduced")
    await made(
        shop,
        staff,
        "/promotions",
        {"name": "Five off", "code": "FIVE", "type": "fixed_amount", "value": 500},
    )
    cart_id, holder = await guest_cart(shop, [(tea, 3), (book, 2)])
    cart = await enter(shop, cart_id, holder, "FIVE")
    order = await place(shop, cart_id, holder)

    for priced in (cart, order):
        assert promotions(priced) == [("FIVE", "Five off", 500)]
        assert lines(priced, [tea, book]) == [(347, 105, 655), (153, 17, 262)]
        assert figures(priced) == (1295, 500, 0, 122, 917)


@EXCLUSIVE
async def test_free_over_50_uses_the_discounted_subtotal_free_shipping_from_50_does_not(
    shop: Client, admin_headers: dict[str, str]
) -> None:
    """DHL 4.90 free over 50.00, a 52.00 cart at 19 %. Without a code shipping is free
    (52.00 + 9.88 tax = 61.88); with 10 % off (46.80 left) it is charged: 52.00 - 5.20 +
    4.90 + 8.89 + 0.93 = 61.52. With a free-shipping promotion from 50.00 as well (52.00
    before discounts reaches it), the 4.90 and its tax are waived: 55.69."""
    staff = admin_headers
    dhl = await german_shipping(shop, staff, free_over=5000)
    category = await create_category(shop, staff)
    shirt = await variant(shop, staff, category, 2600)
    await made(
        shop,
        staff,
        "/promotions",
        {"name": "Ten off", "code": "TEN", "type": "percentage", "value": 1000, "combinable": True},
    )
    cart_id, holder = await guest_cart(shop, [(shirt, 2)], dhl)
    plain = await shop.get(f"{API}/carts/{cart_id}", headers=holder)
    assert figures(plain.json()) == (5200, 0, 0, 988, 6188)
    cart = await enter(shop, cart_id, holder, "TEN")
    order = await place(shop, cart_id, holder)
    for priced in (cart, order):
        assert promotions(priced) == [("TEN", "Ten off", 520)]
        assert lines(priced, [shirt]) == [(520, 889, 5569)]
        assert figures(priced) == (5200, 520, 490, 889 + 93, 6152)

    await made(
        shop,
        staff,
        "/promotions",
        {
            "name": "Free shipping from 50",
            "type": "free_shipping",
            "value": 0,
            "min_subtotal": 5000,
            "combinable": True,
        },
    )
    cart_id, holder = await guest_cart(shop, [(shirt, 2)], dhl)
    cart = await enter(shop, cart_id, holder, "TEN")
    order = await place(shop, cart_id, holder)
    for priced in (cart, order):
        assert promotions(priced) == [
            (None, "Free shipping from 50", 490),
            ("TEN", "Ten off", 520),
        ]
        assert figures(priced) == (5200, 520, 0, 889, 5569)
    assert order["shipping"]["tax_total"] == 0
