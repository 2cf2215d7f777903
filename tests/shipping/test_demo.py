"""``serve --demo`` shipping: zones, methods and rates so that a guest checkout works out of
the box for a German and a US address; added once."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.shipping.demo import create_demo_shipping
from emporium.shipping.models import ShippingZone
from factories import API, Client, create_category, create_product, variant_body

BERLIN = {
    "name": "E",
    "line1": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}
LA = {
    "name": "A",
    "line1": "1 Main St",
    "city": "Los Angeles",
    "postal_code": "90001",
    "country": "US",
    "region": "CA",
}


async def test_demo_shipping_serves_a_german_and_a_californian_guest(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    async with session.begin():
        assert await create_demo_shipping(session, currency="USD")
    async with session.begin():
        assert not await create_demo_shipping(session, currency="USD")
    assert await session.scalar(select(func.count()).select_from(ShippingZone)) == 2
    category = await create_category(client, admin_headers)
    product = await create_product(
        client, admin_headers, category["id"], variants=[variant_body(price=2000)]
    )
    created = (
        await client.post(
            f"{API}/carts",
            json={"items": [{"variant_id": product["variants"][0]["id"], "quantity": 1}]},
        )
    ).json()
    guest, url = {"Cart-Token": created["token"]}, f"{API}/carts/{created['id']}"
    seen = {}
    for address in (BERLIN, LA):
        await client.patch(url, json={"shipping_address": address}, headers=guest)
        [option] = (await client.get(f"{url}/shipping-methods", headers=guest)).json()
        cart = (
            await client.patch(url, json={"shipping_method_id": option["id"]}, headers=guest)
        ).json()
        seen[address["country"]] = (option["name"], cart["tax_total"], cart["total"])
    # Prices exclude tax in this shop. DE: 20.00 at 19 % = 3.80; shipping 4.90 (class
    # standard) at 19 % = 0.931 -> 0.93. US-CA: 20.00 at 7.25 % = 1.45; shipping 7.99 at
    # 7.25 % = 0.579 -> 0.58.
    assert seen == {
        "DE": ("DHL Paket", 380 + 93, 2000 + 490 + 473),
        "US": ("UPS Ground", 145 + 58, 2000 + 799 + 203),
    }
