"""Orders from carts: a guest buys with nothing but the cart's token (``POST /orders
{cart_id}`` with ``Cart-Token``), gets an ``order_token`` shown once (stored hashed) that
reads the order, and a confirmation e-mail at the cart's address; a customer orders their
own cart the same way. Every refusal changes nothing."""

from __future__ import annotations

import email
import hashlib
import uuid
from email.policy import default
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.support import PASSWORD, new_email, sign_up
from conftest import SignIn
from emporium.orders.models import CartItem, Order
from factories import API, Client, assert_problem
from orders.support import stock_of
from orders.test_carts import german_shop
from orders.test_checkout_taxes import BERLIN, SAN_JOSE, figures, shop
from runjobs import drain

Json = dict[str, Any]
__all__ = ["shop"]  # the fixture, imported
GUEST_EMAIL = "erika.guest@example.com"
EUR_INCLUSIVE = pytest.mark.parametrize("shop", [("EUR", True)], indirect=True, ids=["EUR-incl"])


async def guest_cart(
    shop: Client, lines: list[tuple[Json, int]], **fields: Any
) -> tuple[str, Json]:
    """A guest cart with ``lines`` and then ``fields`` set (PATCH); returns its URL and the
    guest's headers."""
    created = await shop.post(
        f"{API}/carts",
        json={"items": [{"variant_id": v["id"], "quantity": q} for v, q in lines]},
    )
    assert created.status_code == 201, created.text
    url, headers = f"{API}/carts/{created.json()['id']}", {"Cart-Token": created.json()["token"]}
    if fields:
        patched = await shop.patch(url, headers=headers, json=fields)
        assert patched.status_code == 200, patched.text
    return url, headers


def cart_id(url: str) -> str:
    return url.rsplit("/", 1)[1]


async def order_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Order)) or 0)


@EUR_INCLUSIVE
async def test_a_guest_orders_a_cart_and_reads_it_with_the_order_token(
    shop: Client, admin_headers: dict[str, str], sign_in: SignIn, session: AsyncSession
) -> None:
    dhl, _, tea, book = await german_shop(shop, admin_headers)
    url, guest = await guest_cart(
        shop,
        [(tea, 3), (book, 2)],
        email=GUEST_EMAIL,
        shipping_address=BERLIN,
        shipping_method_id=dhl["id"],
        billing_address={**BERLIN, "name": "Erika Billing"},
    )
    cart = (await shop.get(url, headers=guest)).json()
    placed = await shop.post(f"{API}/orders", json={"cart_id": cart["id"]}, headers=guest)
    assert placed.status_code == 201, placed.text
    assert placed.headers["cache-control"] == "no-store"
    order = placed.json()
    token = order.pop("order_token")
    assert token.startswith("emp_order_")
    assert len(token) > 40
    # The hand calculation of test_checkout_taxes' German order: 3 x 4.99 at 19 %, 2 x 2.49
    # at 7 %, DHL 4.90 taxed at 19 %, all inside the shelf prices.
    assert figures(order) == figures(cart) == (1995, 0, 490, 350, 2485)
    assert [(i["subtotal"], i["tax_rate"], i["tax_total"]) for i in order["items"]] == [
        (1497, 1900, 239),
        (498, 700, 33),
    ]
    assert order["shipping"] == {
        "method_id": dhl["id"],
        "name": "DHL",
        "price": 490,
        "tax_total": 78,
    }
    assert order["customer_id"] is None
    assert order["email"] == GUEST_EMAIL
    assert order["billing_address"]["name"] == "Erika Billing"
    assert order["shipping_address"]["city"] == "Berlin"
    assert (order["status"], order["payment_status"], order["fulfillment_status"]) == (
        "pending",
        "unpaid",
        "unfulfilled",
    )
    assert (order["paid_total"], order["refunded_total"], order["promotions"]) == (0, 0, [])
    assert order["status_history"][0]["by"] == "guest"
    assert await stock_of(shop, admin_headers, tea) == 17

    stored = await session.scalar(
        select(Order.order_token_hash).where(Order.id == uuid.UUID(order["id"]))
    )
    assert stored == hashlib.sha256(b"order\x00" + token.encode()).hexdigest()
    assert GUEST_EMAIL not in str(
        await session.scalar(select(Order.email_enc).where(Order.id == uuid.UUID(order["id"])))
    )
    order_url = f"{API}/orders/{order['id']}"
    read = await shop.get(order_url, headers={"Order-Token": token})
    assert read.status_code == 200, read.text
    assert read.json() == order
    assert_problem(await shop.get(order_url), 401)
    assert_problem(await shop.get(order_url, headers={"Order-Token": token[:-1] + "x"}), 404)
    assert_problem(await shop.get(order_url, headers=await sign_in()), 404)
    assert (await shop.get(order_url, headers=admin_headers)).json()["email"] == GUEST_EMAIL
    # The Cart-Token is not an Order-Token, and another guest's order token reads nothing.
    assert_problem(await shop.get(order_url, headers={"Order-Token": guest["Cart-Token"]}), 404)

    emptied = (await shop.get(url, headers=guest)).json()
    assert emptied["items"] == []
    assert emptied["email"] == GUEST_EMAIL
    again = await shop.post(f"{API}/orders", json={"cart_id": cart["id"]}, headers=guest)
    assert_problem(again, 422, "empty_cart")

    found = await shop.get(
        f"{API}/orders", params={"email": GUEST_EMAIL.upper()}, headers=admin_headers
    )
    assert [o["id"] for o in found.json()["items"]] == [order["id"]]
    unpaid = await shop.get(
        f"{API}/orders", params={"payment_status": "paid"}, headers=admin_headers
    )
    assert order["id"] not in [o["id"] for o in unpaid.json()["items"]]


@EUR_INCLUSIVE
async def test_the_guest_gets_a_confirmation_with_every_figure(
    shop: Client, admin_headers: dict[str, str]
) -> None:
    dhl, _, tea, book = await german_shop(shop, admin_headers)
    url, guest = await guest_cart(
        shop,
        [(tea, 3), (book, 2)],
        email=GUEST_EMAIL,
        shipping_address=BERLIN,
        shipping_method_id=dhl["id"],
    )
    placed = await shop.post(f"{API}/orders", json={"cart_id": cart_id(url)}, headers=guest)
    assert placed.status_code == 201, placed.text
    await drain(shop)
    folder = shop.app.state.settings.mail_dir
    messages = [
        email.message_from_bytes(p.read_bytes(), policy=default)
        for p in sorted(folder.glob("*.eml"))
    ]
    number = placed.json()["number"]
    (confirmation,) = [m for m in messages if m["Subject"] == f"Order {number} confirmed"]
    assert confirmation["To"] == GUEST_EMAIL
    text = confirmation.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Subtotal: €19.95" in text or "Subtotal: 19.95" in text
    for line in ("Shipping:", "including tax of", "24.85"):
        assert line in text


@pytest.mark.parametrize("shop", [("USD", False)], indirect=True, ids=["USD-excl"])
async def test_a_customer_orders_their_cart_by_id(
    shop: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    _, ups, tea, _ = await german_shop(shop, admin_headers)
    await shop.post(
        f"{API}/tax-rates",
        headers=admin_headers,
        json={
            "country": "US",
            "region": "US-CA",
            "tax_class": "standard",
            "rate_bp": 725,
            "name": "CA",
        },
    )
    buyer = await sign_in()
    me = (await shop.get(f"{API}/users/me", headers=buyer)).json()
    cart = (await shop.post(f"{API}/carts", headers=buyer, json={})).json()
    assert cart.get("token") is None
    url = f"{API}/carts/{cart['id']}"
    await shop.post(f"{url}/items", headers=buyer, json={"variant_id": tea["id"], "quantity": 2})
    chosen = {"shipping_address": SAN_JOSE, "shipping_method_id": ups["id"]}
    await shop.patch(url, headers=buyer, json=chosen)
    placed = await shop.post(f"{API}/orders", json={"cart_id": cart["id"]}, headers=buyer)
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert "order_token" not in order
    assert order["customer_id"] == me["id"]
    assert order["email"] == me["email"]
    # 2 x 4.99 = 9.98, CA 7.25 % on it = 0.7236 -> 0.72 (half up); UPS 5.00 is taxed by its
    # class (standard) at 7.25 % too: 0.3625 -> 0.36; prices exclude tax: 9.98 + 5 + 1.08
    assert figures(order) == (998, 0, 500, 108, 1606)
    assert (await shop.get(url, headers=buyer)).json()["items"] == []
    mine = (await shop.get(f"{API}/orders", headers=buyer)).json()["items"]
    assert [o["id"] for o in mine] == [order["id"]]


@EUR_INCLUSIVE
async def test_incomplete_or_foreign_carts_are_refused_and_change_nothing(
    shop: Client, admin_headers: dict[str, str], sign_in: SignIn, session: AsyncSession
) -> None:
    dhl, ups, tea, _ = await german_shop(shop, admin_headers)
    no_email, guest1 = await guest_cart(
        shop, [(tea, 1)], shipping_address=BERLIN, shipping_method_id=dhl["id"]
    )
    no_address, guest2 = await guest_cart(shop, [(tea, 1)], email=GUEST_EMAIL)
    no_method, guest3 = await guest_cart(
        shop, [(tea, 1)], email=GUEST_EMAIL, shipping_address=BERLIN
    )
    empty, guest4 = await guest_cart(
        shop, [], email=GUEST_EMAIL, shipping_address=BERLIN, shipping_method_id=dhl["id"]
    )
    mine = (await shop.post(f"{API}/carts", headers=await sign_in(), json={})).json()
    cases: list[tuple[Json, dict[str, str], int, str | None]] = [
        ({"cart_id": cart_id(no_email)}, guest1, 422, "email_required"),
        ({"cart_id": cart_id(no_address)}, guest2, 422, "shipping_address_required"),
        ({"cart_id": cart_id(no_method)}, guest3, 422, "shipping_method_required"),
        ({"cart_id": cart_id(empty)}, guest4, 422, "empty_cart"),
        ({"cart_id": cart_id(no_email)}, guest2, 404, "cart_not_found"),  # another's token
        ({"cart_id": cart_id(no_email)}, {}, 404, "cart_not_found"),
        ({"cart_id": str(uuid.uuid4())}, guest1, 404, "cart_not_found"),
        ({"cart_id": mine["id"]}, guest1, 404, "cart_not_found"),  # a customer's cart
        ({"cart_id": mine["id"]}, await sign_in(), 404, "cart_not_found"),
        ({"cart_id": cart_id(no_email), "shipping_method_id": ups["id"]}, guest1, 422, None),
        ({"cart_id": cart_id(no_email), "total": 1}, guest1, 422, None),
        (
            {"items": [{"variant_id": tea["id"], "quantity": 1}], "shipping_address": BERLIN},
            {},
            401,
            None,
        ),  # no cart: only customers order items
    ]
    for body, headers, status, code in cases:
        assert_problem(await shop.post(f"{API}/orders", json=body, headers=headers), status, code)
    assert await order_count(session) == 0
    assert await stock_of(shop, admin_headers, tea) == 20
    lines = await session.scalar(select(func.count()).select_from(CartItem))
    assert lines == 3  # every cart kept its lines


@EUR_INCLUSIVE
async def test_a_guest_retry_with_the_same_key_makes_one_order_and_a_new_token(
    shop: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    dhl, _, tea, _ = await german_shop(shop, admin_headers)
    url, guest = await guest_cart(
        shop, [(tea, 2)], email=GUEST_EMAIL, shipping_address=BERLIN, shipping_method_id=dhl["id"]
    )
    keyed = {**guest, "Idempotency-Key": "guest-retry-1"}
    body = {"cart_id": cart_id(url)}
    first = await shop.post(f"{API}/orders", json=body, headers=keyed)
    assert first.status_code == 201, first.text
    second = await shop.post(f"{API}/orders", json=body, headers=keyed)
    assert second.status_code == 201, second.text
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
    old, new = first.json()["order_token"], second.json()["order_token"]
    assert old != new  # the first answer was presumably lost: its token is replaced
    order_url = f"{API}/orders/{first.json()['id']}"
    assert (await shop.get(order_url, headers={"Order-Token": new})).status_code == 200
    assert_problem(await shop.get(order_url, headers={"Order-Token": old}), 404)
    assert await order_count(session) == 1
    assert await stock_of(shop, admin_headers, tea) == 18
    # The key is the cart's: another guest cannot replay it with their own cart token.
    _, other = await guest_cart(shop, [(tea, 1)])
    stranger = await shop.post(
        f"{API}/orders", json=body, headers={**other, "Idempotency-Key": "guest-retry-1"}
    )
    assert_problem(stranger, 404, "cart_not_found")


@pytest.mark.parametrize("shop", [("USD", False)], indirect=True, ids=["USD-excl"])
async def test_an_erased_customer_s_orders_forget_the_e_mail(
    shop: Client, admin_headers: dict[str, str]
) -> None:
    _, ups, tea, _ = await german_shop(shop, admin_headers)
    account = await sign_up(shop, new_email("erased"))
    buyer = account.headers
    placed = await shop.post(
        f"{API}/orders",
        headers=buyer,
        json={
            "items": [{"variant_id": tea["id"], "quantity": 1}],
            "shipping_address": SAN_JOSE,
            "shipping_method_id": ups["id"],
        },
    )
    assert placed.status_code == 201, placed.text
    assert placed.json()["email"] == account.email
    erased = await shop.request(
        "DELETE", f"{API}/users/me", headers=buyer, json={"password": PASSWORD}
    )
    assert erased.status_code == 204, erased.text
    read = await shop.get(f"{API}/orders/{placed.json()['id']}", headers=admin_headers)
    assert read.json()["email"] is None
    assert read.json()["shipping_address"]["city"] == "San Jose"  # kept for the books
