"""Checkout: server-side prices and totals, all-or-nothing stock, the cart, the ledger."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import SignIn
from emporium.orders.models import Order
from factories import API, Client, assert_problem, variant_body
from orders.support import ADDRESS, balance, ledger, order, stock_of, stocked_variants


async def test_an_order_is_priced_and_totalled_by_the_server(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    a, b = await stocked_variants(client, admin_headers, 10, 4, price=1250)
    buyer = await sign_in()
    response = await order(client, buyer, [(a["id"], 3), (b["id"], 1), (a["id"], 1)])
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending"
    assert [(i["variant_id"], i["quantity"]) for i in body["items"]] == [(a["id"], 4), (b["id"], 1)]
    assert all(i["unit_price"] == 1250 for i in body["items"])
    assert [i["line_total"] for i in body["items"]] == [5000, 1250]
    assert body["subtotal"] == body["total"] == 6250
    assert body["currency"] == "USD"
    assert body["shipping_address"]["city"] == "London"
    assert response.headers["cache-control"] == "no-store"
    assert await stock_of(client, admin_headers, a) == 6
    assert await stock_of(client, admin_headers, b) == 3
    moves = await ledger(client, admin_headers, a["id"])
    assert balance(moves) == {"received": 10, "sale": -4}
    assert moves[0]["order_id"] == body["id"]
    again = await client.get(f"{API}/orders/{body['id']}", headers=buyer)
    assert again.json() == body


async def test_a_short_line_changes_nothing_at_all(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn, session: AsyncSession
) -> None:
    plenty, scarce = await stocked_variants(client, admin_headers, 50, 2)
    buyer = await sign_in()
    response = await order(client, buyer, [(plenty["id"], 5), (scarce["id"], 3)])
    problem = assert_problem(response, 409, "insufficient_stock")
    assert problem["lines"] == [
        {"variant_id": scarce["id"], "sku": scarce["sku"], "requested": 3, "available": 2}
    ]
    assert await stock_of(client, admin_headers, plenty) == 50
    assert await stock_of(client, admin_headers, scarce) == 2
    assert balance(await ledger(client, admin_headers, plenty["id"])) == {"received": 50}
    assert await session.scalar(select(func.count()).select_from(Order)) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("quantity", 0), ("quantity", -1), ("quantity", 1.5), ("quantity", "2"), ("quantity", 1000)],
)
async def test_quantities_must_be_sane_positive_integers(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn, field: str, value: object
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 5)
    buyer = await sign_in()
    body = {"items": [{"variant_id": v["id"], field: value}], "shipping_address": ADDRESS}
    response = await client.post(f"{API}/orders", json=body, headers=buyer)
    assert_problem(response, 422)
    assert await stock_of(client, admin_headers, v) == 5


@pytest.mark.parametrize(
    "extra",
    [{"total": 1}, {"subtotal": 1}, {"status": "paid"}, {"customer_id": "x"}, {"currency": "EUR"}],
)
async def test_clients_cannot_set_prices_totals_or_status(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn, extra: dict[str, Any]
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 5)
    buyer = await sign_in()
    response = await order(client, buyer, [(v["id"], 1)], **extra)
    assert_problem(response, 422)
    line = {"variant_id": v["id"], "quantity": 1, "unit_price": 1}
    response = await client.post(
        f"{API}/orders", json={"items": [line], "shipping_address": ADDRESS}, headers=buyer
    )
    assert_problem(response, 422)
    assert await stock_of(client, admin_headers, v) == 5


async def test_the_cart_is_checked_out_at_current_prices_and_emptied(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    a, b = await stocked_variants(client, admin_headers, 10, 10, price=500)
    buyer = await sign_in()
    for variant, qty in ((a, 2), (b, 1), (a, 3)):
        response = await client.post(
            f"{API}/cart/items", json={"variant_id": variant["id"], "quantity": qty}, headers=buyer
        )
        assert response.status_code == 201, response.text
    cart = response.json()
    assert [(i["variant_id"], i["quantity"]) for i in cart["items"]] == [(a["id"], 5), (b["id"], 1)]
    assert cart["subtotal"] == 3000
    response = await client.patch(
        f"{API}/variants/{a['id']}", json={"price": 700}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    cart = (await client.get(f"{API}/cart", headers=buyer)).json()
    assert cart["items"][0]["unit_price"] == 700
    assert cart["subtotal"] == 5 * 700 + 500
    response = await order(client, buyer, None)
    assert response.status_code == 201, response.text
    assert response.json()["total"] == 5 * 700 + 500
    assert (await client.get(f"{API}/cart", headers=buyer)).json()["items"] == []
    assert_problem(await order(client, buyer, None), 422, "empty_cart")


async def test_another_customers_cart_lines_are_invisible(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 10)
    alice, mallory = await sign_in(), await sign_in()
    response = await client.post(
        f"{API}/cart/items", json={"variant_id": v["id"], "quantity": 1}, headers=alice
    )
    item_id = response.json()["items"][0]["id"]
    for call in (
        client.patch(f"{API}/cart/items/{item_id}", json={"quantity": 9}, headers=mallory),
        client.delete(f"{API}/cart/items/{item_id}", headers=mallory),
    ):
        assert_problem(await call, 404)
    assert (await client.get(f"{API}/cart", headers=alice)).json()["items"][0]["quantity"] == 1
    assert (await client.get(f"{API}/cart", headers=mallory)).json()["items"] == []


async def test_an_ordered_product_is_archived_not_deleted(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    """Deleting an ordered product unpublishes it and keeps its order whole; its variant
    cannot be deleted (409); a product never ordered is really deleted."""
    ordered, spare = await stocked_variants(client, admin_headers, 5, 5)
    buyer = await sign_in()
    placed = (await order(client, buyer, [(ordered["id"], 2)])).json()
    url = f"{API}/products/{ordered['product_id']}"
    second = await client.post(f"{url}/variants", json=variant_body(), headers=admin_headers)
    assert second.status_code == 201, second.text
    assert (await client.delete(url, headers=admin_headers)).status_code == 204
    assert_problem(await client.get(url), 404)
    kept = await client.get(url, headers=admin_headers)
    assert kept.status_code == 200
    assert kept.json()["published"] is False
    assert_problem(
        await client.delete(f"{API}/variants/{ordered['id']}", headers=admin_headers),
        409,
        "variant_ordered",
    )
    again = (await client.get(f"{API}/orders/{placed['id']}", headers=buyer)).json()
    assert again["items"] == placed["items"]
    spare_url = f"{API}/products/{spare['product_id']}"
    assert (await client.delete(spare_url, headers=admin_headers)).status_code == 204
    assert_problem(await client.get(spare_url, headers=admin_headers), 404)
