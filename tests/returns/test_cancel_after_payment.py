"""Cancelling a paid order before anything shipped gives everything back: the money (the
gift card's part to the card), the stock, the promotion's use. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from factories import API, Client
from orders.support import ADDRESS, ledger, stock_of, stocked_variants
from payments.support import pay
from payments.test_gift_card_payments import card_state, issue, spend
from returns.support import read_order
from runjobs import drain

Json = dict[str, Any]


async def test_staff_cancelling_a_paid_order_gives_back_money_stock_uses_and_card(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """3 x 20.00 less 10 % (code BACK10) = 54.00: 20.00 from a gift card, 34.00 by card."""
    staff = admin_headers
    (variant,) = await stocked_variants(client, staff, 10, price=2000)
    promo = await client.post(
        f"{API}/promotions",
        json={
            "name": "Back",
            "code": "BACK10",
            "type": "percentage",
            "value": 1000,
            "usage_limit": 5,
            "combinable": True,
        },
        headers=staff,
    )
    assert promo.status_code == 201, promo.text
    cart = await client.post(
        f"{API}/carts", json={"items": [{"variant_id": variant["id"], "quantity": 3}]}
    )
    holder = {"Cart-Token": cart.json()["token"]}
    url = f"{API}/carts/{cart.json()['id']}"
    patched = await client.patch(
        url, headers=holder, json={"email": "guest@example.com", "shipping_address": ADDRESS}
    )
    assert patched.status_code == 200, patched.text
    coded = await client.post(f"{url}/promotion-codes", json={"code": "BACK10"}, headers=holder)
    assert coded.status_code in (200, 201), coded.text
    placed = await client.post(f"{API}/orders", json={"cart_id": cart.json()["id"]}, headers=holder)
    assert placed.status_code == 201, placed.text
    order = placed.json()
    guest = {"Order-Token": order.pop("order_token")}
    assert (order["discount_total"], order["total"]) == (600, 5400)
    times_used = f"{API}/promotions/{promo.json()['id']}"
    assert (await client.get(times_used, headers=staff)).json()["times_used"] == 1
    gift = await issue(client, staff, 2000)
    assert (await spend(client, order, guest, gift["code"])).status_code == 201
    assert (await pay(client, order["id"], guest)).status_code == 201
    paid = await read_order(client, order["id"], guest)
    assert (paid["status"], paid["paid_total"]) == ("paid", 5400)
    assert (await card_state(client, staff, gift))["balance"] == 0
    assert await stock_of(client, staff, variant) == 7

    cancelled = await client.post(f"{API}/orders/{order['id']}/cancel", headers=staff)
    assert cancelled.status_code == 200, cancelled.text
    await drain(client)

    final = await read_order(client, order["id"], guest)
    assert (final["status"], final["payment_status"]) == ("cancelled", "refunded")
    assert final["refunded_total"] == final["paid_total"] == 5400
    assert (await card_state(client, staff, gift))["balance"] == 2000
    assert await stock_of(client, staff, variant) == 10
    kinds = [m["kind"] for m in await ledger(client, staff, variant["id"])]
    assert sorted(kinds) == ["received", "return", "sale"]
    assert (await client.get(times_used, headers=staff)).json()["times_used"] == 0
    refunds = await client.get(f"{API}/orders/{order['id']}/refunds", headers=staff)
    assert sorted(r["amount"] for r in refunds.json()["items"]) == [2000, 3400]
