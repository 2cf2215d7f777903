"""Concurrency: real concurrent clients on a real database never oversell, and one
Idempotency-Key makes at most one order, in one process and across server processes."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import SignIn
from emporium.core.config import Settings
from emporium.orders.models import Order
from factories import API, Client, assert_problem, at_once
from orders.support import (
    ADDRESS,
    balance,
    checkout_call,
    ledger,
    order,
    stock_of,
    stocked_variants,
)
from servers import server_env, servers, upgrade_database

BUYERS = 50
STOCK = 10


async def _order_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Order)) or 0)


@pytest.mark.parametrize("round_", range(3))
@pytest.mark.slow
async def test_fifty_buyers_for_ten_units_in_one_process(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn, round_: int
) -> None:
    """50 concurrent checkouts of 1 unit against 10 in stock: 10 orders, 40 times 409."""
    (variant,) = await stocked_variants(client, admin_headers, STOCK)
    buyers = [await sign_in() for _ in range(BUYERS)]
    answers = await at_once(client, *(checkout_call(b, [(variant["id"], 1)]) for b in buyers))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * STOCK + [409] * (BUYERS - STOCK)
    for answer in answers:
        if answer.status_code == 409:
            assert_problem(answer, 409, "insufficient_stock")
    assert await stock_of(client, admin_headers, variant) == 0
    assert balance(await ledger(client, admin_headers, variant["id"])) == {
        "received": STOCK,
        "sale": -STOCK,
    }


async def guest_cart(client: Client, variant_id: str) -> tuple[str, dict[str, str]]:
    """A guest's cart holding one unit, with an e-mail and a shipping address: its id and
    the ``Cart-Token`` header."""
    created = await client.post(
        f"{API}/carts",
        json={
            "email": f"{uuid.uuid4().hex[:12]}@example.com",
            "items": [{"variant_id": variant_id, "quantity": 1}],
        },
    )
    assert created.status_code == 201, created.text
    cart_id, headers = created.json()["id"], {"Cart-Token": created.json()["token"]}
    addressed = await client.patch(
        f"{API}/carts/{cart_id}", json={"shipping_address": ADDRESS}, headers=headers
    )
    assert addressed.status_code == 200, addressed.text
    return cart_id, headers


@pytest.mark.slow
async def test_fifty_guests_for_ten_units_still_sell_exactly_ten(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    """50 guests check out their carts at once (``POST /orders {cart_id}`` with their
    ``Cart-Token``) for 10 units: 10 orders, each with its ``order_token``; 40 times 409
    ``insufficient_stock``, and those carts keep their line (nothing changed)."""
    (variant,) = await stocked_variants(client, admin_headers, STOCK)
    guests = [await guest_cart(client, variant["id"]) for _ in range(BUYERS)]
    answers = await at_once(client, *(("POST", "/orders", h, {"cart_id": c}) for c, h in guests))
    assert sorted(a.status_code for a in answers) == [201] * STOCK + [409] * (BUYERS - STOCK)
    placed = [a.json() for a in answers if a.status_code == 201]
    assert all(o["order_token"] and o["status"] == "pending" for o in placed)
    assert len({o["id"] for o in placed}) == STOCK
    assert await _order_count(session) == STOCK
    assert await stock_of(client, admin_headers, variant) == 0
    assert balance(await ledger(client, admin_headers, variant["id"])) == {
        "received": STOCK,
        "sale": -STOCK,
    }
    for (cart_id, headers), answer in zip(guests, answers, strict=True):
        if answer.status_code == 409:
            assert_problem(answer, 409, "insufficient_stock")
            cart = await client.get(f"{API}/carts/{cart_id}", headers=headers)
            assert [i["quantity"] for i in cart.json()["items"]] == [1]


@pytest.mark.slow
async def test_a_multi_line_race_never_sells_a_unit_twice(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn, session: AsyncSession
) -> None:
    """Buyers of overlapping line sets, in opposite orders, race for 5 + 5 units: every unit
    sold belongs to exactly one order, and no deadlock or partial order appears."""
    a, b = await stocked_variants(client, admin_headers, 5, 5)
    buyers = [await sign_in() for _ in range(20)]
    baskets = [[(a["id"], 1), (b["id"], 1)], [(b["id"], 1), (a["id"], 1)]]
    answers = await at_once(
        client, *(checkout_call(h, baskets[n % 2]) for n, h in enumerate(buyers))
    )
    placed = [r for r in answers if r.status_code == 201]
    assert len(placed) == 5
    assert all(r.status_code in (201, 409) for r in answers)
    assert await _order_count(session) == 5
    for variant in (a, b):
        assert await stock_of(client, admin_headers, variant) == 0
        assert sum(m["delta"] for m in await ledger(client, admin_headers, variant["id"])) == 0


async def test_one_idempotency_key_sent_twenty_times_at_once_makes_one_order(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn, session: AsyncSession
) -> None:
    """The same key and body, 20 concurrent requests: one order; every 201 is that order;
    the rest are 409 in flight. A later retry replays the first answer."""
    (variant,) = await stocked_variants(client, admin_headers, 100)
    buyer = await sign_in()
    key = str(uuid.uuid4())
    answers = await at_once(
        client, *(checkout_call(buyer, [(variant["id"], 2)], key=key) for _ in range(20))
    )
    created = [r for r in answers if r.status_code == 201]
    assert created, [r.text for r in answers]
    assert len({r.json()["id"] for r in created}) == 1
    for answer in answers:
        if answer.status_code != 201:
            assert_problem(answer, 409, "idempotency_key_in_flight")
    assert await _order_count(session) == 1
    assert await stock_of(client, admin_headers, variant) == 98
    replay = await order(client, buyer, [(variant["id"], 2)], key=key)
    assert replay.status_code == 201
    assert replay.json() == created[0].json()
    assert replay.headers["idempotent-replayed"] == "true"
    reused = await order(client, buyer, [(variant["id"], 3)], key=key)
    assert_problem(reused, 422, "idempotency_key_reused")
    assert await _order_count(session) == 1


async def test_a_key_belongs_to_its_customer(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn, session: AsyncSession
) -> None:
    """Another customer using the same key value gets their own order, not a replay."""
    (variant,) = await stocked_variants(client, admin_headers, 10)
    alice, bob = await sign_in(), await sign_in()
    first = await order(client, alice, [(variant["id"], 1)], key="same-key")
    second = await order(client, bob, [(variant["id"], 1)], key="same-key")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert second.json()["customer_id"] != first.json()["customer_id"]


async def test_a_failed_checkout_frees_its_key(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    """409 insufficient_stock stores nothing: after a restock the same key places the order."""
    (variant,) = await stocked_variants(client, admin_headers, 1)
    buyer = await sign_in()
    short = await order(client, buyer, [(variant["id"], 3)], key="retry-me")
    assert_problem(short, 409, "insufficient_stock")
    restock = await client.post(
        f"{API}/variants/{variant['id']}/stock-adjustments",
        json={"delta": 5, "reason": "delivery"},
        headers=admin_headers,
    )
    assert restock.status_code == 201, restock.text
    placed = await order(client, buyer, [(variant["id"], 3)], key="retry-me")
    assert placed.status_code == 201, placed.text
    assert await stock_of(client, admin_headers, variant) == 3


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "ключ"])
async def test_malformed_keys_are_refused(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn, key: str
) -> None:
    """Keys must be 1-255 printable ASCII characters; a bad one changes nothing."""
    (variant,) = await stocked_variants(client, admin_headers, 5)
    buyer = await sign_in()
    payload = {"items": [{"variant_id": variant["id"], "quantity": 1}], "shipping_address": ADDRESS}
    headers = buyer | {"Idempotency-Key": key}
    try:
        response = await client.post(f"{API}/orders", json=payload, headers=headers)
    except (UnicodeEncodeError, httpx.LocalProtocolError):
        return  # the client library refuses to send it at all
    assert_problem(response, 422)
    assert await stock_of(client, admin_headers, variant) == 5


def _server_env(settings: Settings, key_file: Path, cwd: Path) -> dict[str, str]:
    # Two nodes plus this test's app stay well inside PostgreSQL's 100 connections; one
    # buyer sends the same key 20 times, so the per-customer checkout limit is off here.
    env = server_env(
        settings.database_url,
        key_file,
        route_limits=False,
        database_pool_size="5",
        jobs_embedded="false",
    )
    if settings.is_sqlite:
        upgrade_database(env, cwd)
    return env


@pytest.mark.slow
async def test_two_server_processes_and_fifty_http_clients(
    client: Client,
    admin_headers: dict[str, str],
    sign_in: SignIn,
    settings: Settings,
    key_file: Path,
    tmp_path: Path,
    session: AsyncSession,
) -> None:
    """Two real ``emporium serve`` nodes on one database, 50 HTTP clients at once (half on
    each): exactly 10 orders; and one key sent 20 times across both nodes makes one order."""
    (variant,) = await stocked_variants(client, admin_headers, STOCK)
    (spare,) = await stocked_variants(client, admin_headers, 100)
    buyers = [await sign_in() for _ in range(BUYERS)]
    body = {"items": [{"variant_id": variant["id"], "quantity": 1}], "shipping_address": ADDRESS}
    with servers(2, _server_env(settings, key_file, tmp_path), tmp_path) as nodes:
        async with httpx.AsyncClient(timeout=60) as http:
            answers = await asyncio.gather(
                *(
                    http.post(f"{nodes[n % 2]}{API}/orders", json=body, headers=h)
                    for n, h in enumerate(buyers)
                )
            )
            assert sorted(a.status_code for a in answers) == [201] * STOCK + [409] * 40
            keyed = body | {"items": [{"variant_id": spare["id"], "quantity": 1}]}
            headers = buyers[0] | {"Idempotency-Key": "across-nodes"}
            repeats = await asyncio.gather(
                *(
                    http.post(f"{nodes[n % 2]}{API}/orders", json=keyed, headers=headers)
                    for n in range(20)
                )
            )
    assert {r.status_code for r in repeats} <= {201, 409}
    assert len({r.json()["id"] for r in repeats if r.status_code == 201}) == 1
    assert await stock_of(client, admin_headers, variant) == 0
    assert await stock_of(client, admin_headers, spare) == 99
    assert await _order_count(session) == STOCK + 1
