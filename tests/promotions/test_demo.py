"""``serve --demo`` promotions: an automatic "Winter sale" on the demo's Apparel category and
the code ``WELCOME5``, added once, as staff see them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from emporium.promotions.demo import create_demo_promotions
from factories import API, Client, create_category


async def demo_promotions(client: Client, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get(f"{API}/promotions", headers=headers)
    assert response.status_code == 200, response.text
    return {p["name"]: p for p in response.json()["items"]}


async def test_the_demo_has_an_automatic_sale_and_a_code(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    await create_category(client, admin_headers, "Outdoor")
    apparel = await create_category(client, admin_headers, "Apparel")
    assert apparel["slug"] == "apparel"
    async with session.begin():
        assert await create_demo_promotions(session, currency="USD")
    async with session.begin():
        assert not await create_demo_promotions(session, currency="USD")
    made = await demo_promotions(client, admin_headers)
    assert sorted(made) == ["Welcome discount", "Winter sale"]
    sale, welcome = made["Winter sale"], made["Welcome discount"]
    assert {k: sale[k] for k in ("code", "type", "value", "combinable", "active")} == {
        "code": None,
        "type": "percentage",
        "value": 1000,
        "combinable": True,
        "active": True,
    }
    assert sale["applies_to"] == {"category_ids": [apparel["id"]], "product_ids": []}
    assert {
        k: welcome[k]
        for k in ("code", "type", "value", "min_subtotal", "usage_limit_per_customer", "combinable")
    } == {
        "code": "WELCOME5",
        "type": "fixed_amount",
        "value": 500,
        "min_subtotal": 3000,
        "usage_limit_per_customer": 1,
        "combinable": False,
    }
    assert welcome["applies_to"] == {"category_ids": [], "product_ids": []}


async def test_demo_amounts_follow_the_currency_and_a_shop_without_apparel(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    first = await create_category(client, admin_headers, "Books")
    await create_category(client, admin_headers, "Music")
    async with session.begin():
        assert await create_demo_promotions(session, currency="JPY")
    made = await demo_promotions(client, admin_headers)
    welcome = made["Welcome discount"]
    assert (welcome["value"], welcome["min_subtotal"], welcome["currency"]) == (5, 30, "JPY")
    assert made["Winter sale"]["applies_to"]["category_ids"] == [first["id"]]
