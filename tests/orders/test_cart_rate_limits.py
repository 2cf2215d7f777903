"""Cart writes are rate limited (``EMPORIUM_RATE_LIMIT_CART``), attacked: a guest flooding
cart writes is stopped with 429 and its cart stays as it was, a forged ``X-Forwarded-For``
buys nothing, while other addresses, guests behind the trusted proxy and signed-in
customers (counted per user, wherever they call from) keep their own budgets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from conftest import SignIn
from core.test_rate_limits import assert_throttled
from emporium.app import create_app
from emporium.core.config import Settings
from factories import API, asgi_transport
from orders.support import stocked_variants

LIMIT = 3
Peer = Callable[[str], httpx.AsyncClient]
Json = dict[str, Any]


@pytest.fixture
async def peer(settings: Settings) -> AsyncIterator[Peer]:
    """``peer("198.51.100.7")``: a client of an app whose cart limit is ``LIMIT`` a minute,
    connecting from that address; ``127.0.0.1`` is the trusted reverse proxy."""
    limited = settings.model_copy(
        update={"rate_limit_cart": f"{LIMIT}/minute", "trusted_proxies": ["127.0.0.1"]}
    )
    app = create_app(limited)
    clients: list[httpx.AsyncClient] = []
    async with AsyncTestClient(app=app) as running:  # runs the lifespan

        def make(address: str) -> httpx.AsyncClient:
            transport = asgi_transport(app, running.blocking_portal, client=(address, 40000))
            clients.append(httpx.AsyncClient(transport=transport, base_url="http://shop"))
            return clients[-1]

        try:
            yield make
        finally:
            for client in clients:
                await client.aclose()


async def _variant(peer: Peer, admin: dict[str, str]) -> str:
    (variant,) = await stocked_variants(peer("192.0.2.1"), admin, 50)  # type: ignore[arg-type]
    return str(variant["id"])


async def test_a_guest_flooding_cart_writes_is_stopped_and_its_cart_unchanged(
    peer: Peer, admin_headers: dict[str, str]
) -> None:
    variant = await _variant(peer, admin_headers)
    guest = peer("198.51.100.20")
    created = await guest.post(
        f"{API}/carts", json={"items": [{"variant_id": variant, "quantity": 1}]}
    )
    assert created.status_code == 201, created.text
    assert created.headers["ratelimit-remaining"] == str(LIMIT - 1)
    cart = created.json()
    token = {"Cart-Token": cart.pop("token")}
    url = f"{API}/carts/{cart['id']}"
    [line] = cart["items"]
    more = {"variant_id": variant, "quantity": 1}
    assert (await guest.post(f"{url}/items", json=more, headers=token)).status_code == 200
    changed = await guest.patch(url, json={"email": "first@example.com"}, headers=token)
    assert changed.status_code == 200, changed.text
    before = (await guest.get(url, headers=token)).json()
    assert (before["email"], before["items"][0]["quantity"]) == ("first@example.com", 2)

    item = f"{url}/items/{line['id']}"
    refused = [
        await guest.post(f"{url}/items", json=more, headers=token),
        await guest.patch(item, json={"quantity": 9}, headers=token),
        await guest.delete(item, headers=token),
        await guest.patch(url, json={"email": "second@example.com"}, headers=token),
        await guest.post(f"{API}/carts", json={}),
        # A forged X-Forwarded-For from an untrusted peer makes no new client.
        await guest.post(
            f"{url}/items", json=more, headers=token | {"X-Forwarded-For": "203.0.113.5"}
        ),
    ]
    for response in refused:
        assert 0 < assert_throttled(response, LIMIT) <= 60
    assert (await guest.get(url, headers=token)).json() == before  # reads are not refused

    # Another address has its own budget; so has each client behind the trusted proxy,
    # where the throttled guest is still recognised by its forwarded address.
    assert (await peer("198.51.100.21").post(f"{API}/carts", json={})).status_code == 201
    proxy = peer("127.0.0.1")
    behind = await proxy.post(f"{API}/carts", json={}, headers={"X-Forwarded-For": "198.51.100.22"})
    assert behind.status_code == 201, behind.text
    assert_throttled(
        await proxy.post(
            f"{url}/items", json=more, headers=token | {"X-Forwarded-For": "198.51.100.20"}
        ),
        LIMIT,
    )
    assert (await guest.get(url, headers=token)).json() == before


async def test_signed_in_customers_are_counted_per_user(peer: Peer, sign_in: SignIn) -> None:
    """A customer is not throttled for a guest sharing the address (a shop, a campus), and
    moving to another address buys a throttled customer nothing."""
    ada, bob = await sign_in(), await sign_in()
    cafe = peer("198.51.100.30")
    for _ in range(LIMIT):
        assert (await cafe.post(f"{API}/carts", json={})).status_code == 201
    assert_throttled(await cafe.post(f"{API}/carts", json={}), LIMIT)

    mine = await cafe.post(f"{API}/carts", json={}, headers=ada)
    assert mine.status_code == 201, mine.text
    url = f"{API}/carts/{mine.json()['id']}"
    for n in range(1, LIMIT):
        email = {"email": f"ada{n}@example.com"}
        assert (await cafe.patch(url, json=email, headers=ada)).status_code == 200
    home = peer("198.51.100.31")
    assert_throttled(await home.patch(url, json={"email": "ada@home.example"}, headers=ada), LIMIT)
    assert (await home.get(url, headers=ada)).json()["email"] == f"ada{LIMIT - 1}@example.com"
    assert (await cafe.post(f"{API}/carts", json={}, headers=bob)).status_code == 201


async def test_the_v1_cart_routes_share_the_customer_s_budget(
    peer: Peer, sign_in: SignIn, admin_headers: dict[str, str]
) -> None:
    """v1's ``/cart/items`` writes are cart writes too: they draw on the same budget as
    ``/carts``, so the older door is not a way around the limit."""
    variant = await _variant(peer, admin_headers)
    ada = await sign_in()
    shop = peer("198.51.100.40")
    line = {"variant_id": variant, "quantity": 1}
    assert (await shop.post(f"{API}/carts", json={}, headers=ada)).status_code == 201
    for _ in range(LIMIT - 1):
        assert (await shop.post(f"{API}/cart/items", json=line, headers=ada)).status_code == 201
    assert_throttled(await shop.post(f"{API}/cart/items", json=line, headers=ada), LIMIT)
    cart = (await shop.get(f"{API}/cart", headers=ada)).json()
    assert [i["quantity"] for i in cart["items"]] == [
        LIMIT - 1
    ]  # the refused write changed nothing
    item = cart["items"][0]["id"]
    assert_throttled(await shop.delete(f"{API}/cart/items/{item}", headers=ada), LIMIT)
    assert_throttled(
        await shop.patch(f"{API}/cart/items/{item}", json={"quantity": 5}, headers=ada), LIMIT
    )
