"""Who may see and touch orders: customers only their own (404 for the rest), staff all,
anonymous callers nothing; keyset pages of orders; shipping addresses sealed at rest and
saved addresses usable only by their owner."""

from __future__ import annotations

import gc
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import SignIn
from emporium.core.resources import resources_of
from emporium.orders.models import Order
from factories import API, Client, assert_problem, walk
from orders.support import balance, ledger, order, stock_of, stocked_variants
from payments.support import pay_in_full

Json = dict[str, Any]
Headers = dict[str, str]

SECRET_ADDRESS: Json = {
    "name": "Grace Brewster Hopper",
    "line1": "Quillfeather Lane 4417",
    "line2": "Flat Zephyrine",
    "city": "Arlingtonbury",
    "region": "Virginiashire",
    "postal_code": "QX9 7ZZ",
    "country": "US",
}


async def placed(client: Client, buyer: Headers, variant: Json, quantity: int = 1) -> Json:
    """A new order of ``quantity`` units of ``variant`` (201)."""
    response = await order(client, buyer, [(variant["id"], quantity)])
    assert response.status_code == 201, response.text
    return dict(response.json())


async def user_id(client: Client, headers: Headers) -> str:
    """The id of the signed-in caller."""
    response = await client.get(f"{API}/users/me", headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def ids(client: Client, headers: Headers, **params: Any) -> list[str]:
    """The ids of every order ``GET /orders`` lists for the caller with ``params``."""
    return [o["id"] for o in await walk(client, f"{API}/orders", headers, limit=100, **params)]


async def order_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Order)) or 0)


def same_problem(a: Json, b: Json) -> bool:
    """Two problem bodies say the same thing (ignoring a request id)."""
    keep = ("type", "title", "status", "detail", "code")
    return {k: a.get(k) for k in keep} == {k: b.get(k) for k in keep}


# --- customers see only their own orders -----------------------------------------------------


async def test_a_customer_cannot_see_or_cancel_another_customers_order(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 10)
    alice, bob = await sign_in(), await sign_in()
    theirs = await placed(client, alice, v, 3)
    seen = await client.get(f"{API}/orders/{theirs['id']}", headers=bob)
    missing = await client.get(f"{API}/orders/{uuid.uuid4()}", headers=bob)
    assert same_problem(assert_problem(seen, 404), assert_problem(missing, 404))
    cancel = await client.post(f"{API}/orders/{theirs['id']}/cancel", headers=bob)
    cancel_missing = await client.post(f"{API}/orders/{uuid.uuid4()}/cancel", headers=bob)
    assert same_problem(assert_problem(cancel, 404), assert_problem(cancel_missing, 404))
    still = await client.get(f"{API}/orders/{theirs['id']}", headers=alice)
    assert still.status_code == 200
    assert still.json() == theirs
    assert await stock_of(client, admin_headers, v) == 7
    assert balance(await ledger(client, admin_headers, v["id"])) == {"received": 10, "sale": -3}


async def test_a_customer_lists_only_their_own_orders(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 10)
    alice, bob = await sign_in(), await sign_in()
    alices = [(await placed(client, alice, v))["id"] for _ in range(2)]
    bobs = [(await placed(client, bob, v))["id"]]
    alice_id = await user_id(client, alice)
    assert sorted(await ids(client, alice)) == sorted(alices)
    assert await ids(client, bob) == bobs
    assert await ids(client, bob, customer_id=alice_id) == []
    assert await ids(client, bob, status="pending") == bobs
    assert await ids(client, bob, customer_id=alice_id, status="pending") == []
    listed = await walk(client, f"{API}/orders", bob)
    assert all(o["customer_id"] != alice_id for o in listed)
    assert (await client.get(f"{API}/orders", headers=bob)).headers["cache-control"] == "no-store"


async def test_customers_cannot_move_orders_along_the_status_machine(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 10)
    alice, bob = await sign_in(), await sign_in()
    own = await placed(client, alice, v, 2)
    for caller in (alice, bob):
        for to in ("paid", "fulfilled", "refunded"):
            response = await client.post(
                f"{API}/orders/{own['id']}/transitions", json={"to": to}, headers=caller
            )
            assert_problem(response, 403)
    shown = (await client.get(f"{API}/orders/{own['id']}", headers=alice)).json()
    assert shown == own
    assert await stock_of(client, admin_headers, v) == 8


async def test_anonymous_callers_get_401_on_every_cart_and_order_route(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 10)
    buyer = await sign_in()
    existing = await placed(client, buyer, v, 2)
    added = await client.post(
        f"{API}/cart/items", json={"variant_id": v["id"], "quantity": 1}, headers=buyer
    )
    item_id = added.json()["items"][0]["id"]
    order_body = {
        "items": [{"variant_id": v["id"], "quantity": 1}],
        "shipping_address": SECRET_ADDRESS,
    }
    calls: list[tuple[str, str, Json | None]] = [
        ("GET", "/cart", None),
        ("POST", "/cart/items", {"variant_id": v["id"], "quantity": 1}),
        ("PATCH", f"/cart/items/{item_id}", {"quantity": 5}),
        ("DELETE", f"/cart/items/{item_id}", None),
        ("POST", "/orders", order_body),
        ("GET", "/orders", None),
        ("GET", f"/orders/{existing['id']}", None),
        ("POST", f"/orders/{existing['id']}/cancel", None),
        ("POST", f"/orders/{existing['id']}/transitions", {"to": "paid"}),
    ]
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        for method, path, body in calls:
            response = await client.request(method, f"{API}{path}", json=body, headers=headers)
            problem = assert_problem(response, 401)
            assert existing["id"] not in response.text, (method, path)
            assert problem["code"], (method, path)
    cart = (await client.get(f"{API}/cart", headers=buyer)).json()
    assert [(i["id"], i["quantity"]) for i in cart["items"]] == [(item_id, 1)]
    assert (await client.get(f"{API}/orders/{existing['id']}", headers=buyer)).json() == existing
    assert await stock_of(client, admin_headers, v) == 8


async def test_anonymous_order_reads_give_their_database_connection_back(
    client: Client, sign_in: SignIn
) -> None:
    buyer = await sign_in()
    pool: Any = resources_of(client.app.state).read_engine.pool
    assert (await client.get(f"{API}/orders", headers=buyer)).status_code == 200
    assert pool.checkedout() == 0
    gc.disable()
    try:
        for path in ("/orders", f"/orders/{uuid.uuid4()}") * 3:
            assert_problem(await client.get(f"{API}{path}"), 401)
        still_out = pool.checkedout()
    finally:
        gc.enable()
        assert still_out == 0


# --- staff see everything --------------------------------------------------------------------


async def test_staff_see_every_order_and_filter_by_status_and_customer(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 20)
    alice, bob, staff = await sign_in(), await sign_in(), await sign_in(roles=["staff"])
    alice_id, bob_id = await user_id(client, alice), await user_id(client, bob)
    a1, a2 = await placed(client, alice, v), await placed(client, alice, v)
    b1 = await placed(client, bob, v)
    await pay_in_full(client, a1["id"], staff)
    assert (await client.post(f"{API}/orders/{b1['id']}/cancel", headers=bob)).status_code == 200
    everything = {a1["id"], a2["id"], b1["id"]}
    assert sorted(await ids(client, staff)) == sorted(everything)
    assert await ids(client, staff, status="paid") == [a1["id"]]
    assert await ids(client, staff, status="pending") == [a2["id"]]
    assert await ids(client, staff, status="cancelled") == [b1["id"]]
    assert await ids(client, staff, status="delivered") == []
    assert sorted(await ids(client, staff, customer_id=alice_id)) == sorted([a1["id"], a2["id"]])
    assert await ids(client, staff, customer_id=bob_id) == [b1["id"]]
    assert await ids(client, staff, customer_id=alice_id, status="pending") == [a2["id"]]
    assert await ids(client, staff, customer_id=str(uuid.uuid4())) == []
    for o in await walk(client, f"{API}/orders", staff, status="paid"):
        assert o["status"] == "paid"
    shown = await client.get(f"{API}/orders/{a2['id']}", headers=staff)
    assert shown.status_code == 200
    assert shown.json() == a2
    assert shown.json()["shipping_address"] == a2["shipping_address"]


@pytest.mark.parametrize("params", [{"status": "lost"}, {"customer_id": "alice"}])
async def test_listing_orders_with_a_malformed_filter_is_422(
    client: Client, admin_headers: Headers, params: Json
) -> None:
    response = await client.get(f"{API}/orders", params=params, headers=admin_headers)
    assert_problem(response, 422)


async def test_keyset_pagination_walks_every_order_exactly_once(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 20)
    alice, bob = await sign_in(), await sign_in()
    alices = [(await placed(client, alice, v))["id"] for _ in range(5)]
    bobs = [(await placed(client, bob, v))["id"] for _ in range(2)]
    for headers, expected in ((alice, alices), (admin_headers, alices + bobs)):
        pages: list[list[Json]] = []
        cursor: str | None = None
        while True:
            params: Json = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            response = await client.get(f"{API}/orders", params=params, headers=headers)
            assert response.status_code == 200, response.text
            page = response.json()
            assert 1 <= len(page["items"]) <= 2
            pages.append(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        walked = [o for page in pages for o in page]
        assert len(pages) == (len(expected) + 1) // 2
        assert len({o["id"] for o in walked}) == len(walked) == len(expected)
        assert {o["id"] for o in walked} == set(expected)
        stamps = [o["created_at"] for o in walked]
        assert stamps == sorted(stamps, reverse=True)
    newest_first = await ids(client, alice)
    assert newest_first == list(reversed(alices))


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"cursor": "not-a-cursor"}])
async def test_a_bad_page_request_is_422(client: Client, sign_in: SignIn, params: Json) -> None:
    response = await client.get(f"{API}/orders", params=params, headers=await sign_in())
    assert_problem(response, 422)


# --- shipping addresses ----------------------------------------------------------------------


async def test_a_shipping_address_is_not_stored_in_clear_text(
    client: Client, admin_headers: Headers, sign_in: SignIn, session: AsyncSession
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 5)
    buyer = await sign_in()
    response = await order(client, buyer, [(v["id"], 1)], shipping_address=SECRET_ADDRESS)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["shipping_address"] == SECRET_ADDRESS | {"phone": None}
    stored = (await session.execute(select(Order.shipping_address_enc))).scalars().all()
    assert len(stored) == 1
    sealed = stored[0]
    assert sealed
    for value in SECRET_ADDRESS.values():
        if len(value) > 2:
            assert value not in sealed
            assert value.lower() not in sealed.lower()
    for word in ("Hopper", "Quillfeather", "Zephyrine", "Arlingtonbury", "QX9"):
        assert word not in sealed
    shown = await client.get(f"{API}/orders/{created['id']}", headers=buyer)
    assert shown.json()["shipping_address"] == created["shipping_address"]


async def test_another_customers_saved_address_cannot_be_used_at_checkout(
    client: Client, admin_headers: Headers, sign_in: SignIn, session: AsyncSession
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 5)
    alice, bob = await sign_in(), await sign_in()
    saved = await client.post(f"{API}/users/me/addresses", json=SECRET_ADDRESS, headers=bob)
    assert saved.status_code in (200, 201), saved.text
    body = {"items": [{"variant_id": v["id"], "quantity": 2}], "address_id": saved.json()["id"]}
    response = await client.post(f"{API}/orders", json=body, headers=alice)
    problem = assert_problem(response, 404)
    assert "Hopper" not in response.text
    unknown = {**body, "address_id": str(uuid.uuid4())}
    missing = assert_problem(await client.post(f"{API}/orders", json=unknown, headers=alice), 404)
    assert same_problem(problem, missing)
    assert await order_count(session) == 0
    assert await stock_of(client, admin_headers, v) == 5
    assert balance(await ledger(client, admin_headers, v["id"])) == {"received": 5}
    assert await ids(client, alice) == []


async def test_another_customers_saved_address_leaves_the_cart_untouched(
    client: Client, admin_headers: Headers, sign_in: SignIn, session: AsyncSession
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 5)
    alice, bob = await sign_in(), await sign_in()
    saved = await client.post(f"{API}/users/me/addresses", json=SECRET_ADDRESS, headers=bob)
    added = await client.post(
        f"{API}/cart/items", json={"variant_id": v["id"], "quantity": 2}, headers=alice
    )
    assert added.status_code == 201, added.text
    body = {"address_id": saved.json()["id"]}
    assert_problem(await client.post(f"{API}/orders", json=body, headers=alice), 404)
    cart = (await client.get(f"{API}/cart", headers=alice)).json()
    assert [(i["variant_id"], i["quantity"]) for i in cart["items"]] == [(v["id"], 2)]
    assert await order_count(session) == 0
    assert await stock_of(client, admin_headers, v) == 5


async def test_a_customers_own_saved_address_ships_the_order(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 5)
    alice = await sign_in()
    saved = await client.post(f"{API}/users/me/addresses", json=SECRET_ADDRESS, headers=alice)
    assert saved.status_code in (200, 201), saved.text
    address_id = saved.json()["id"]
    body = {"items": [{"variant_id": v["id"], "quantity": 2}], "address_id": address_id}
    response = await client.post(f"{API}/orders", json=body, headers=alice)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["shipping_address"] == SECRET_ADDRESS | {"phone": None}
    shown = await client.get(f"{API}/orders/{created['id']}", headers=alice)
    assert shown.json()["shipping_address"] == created["shipping_address"]
    moved = await client.patch(
        f"{API}/users/me/addresses/{address_id}", json={"city": "Elsewhere"}, headers=alice
    )
    assert moved.status_code == 200, moved.text
    later = await client.get(f"{API}/orders/{created['id']}", headers=alice)
    assert later.json()["shipping_address"]["city"] == SECRET_ADDRESS["city"]
    assert await stock_of(client, admin_headers, v) == 3


@pytest.mark.parametrize("which", ["both", "neither"])
async def test_checkout_needs_exactly_one_of_an_address_and_an_address_id(
    client: Client, admin_headers: Headers, sign_in: SignIn, session: AsyncSession, which: str
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 5)
    alice = await sign_in()
    saved = await client.post(f"{API}/users/me/addresses", json=SECRET_ADDRESS, headers=alice)
    body: Json = {"items": [{"variant_id": v["id"], "quantity": 1}]}
    if which == "both":
        body |= {"address_id": saved.json()["id"], "shipping_address": SECRET_ADDRESS}
    assert_problem(await client.post(f"{API}/orders", json=body, headers=alice), 422)
    assert await order_count(session) == 0
    assert await stock_of(client, admin_headers, v) == 5
