"""A code limited to 10 uses, 50 guests checking out with it at once: exactly 10 orders
hold it, the 40 others are refused with ``promotion_exhausted`` and nothing else changes
for them (no order, no stock taken); cancelling one order gives its use back, so an 11th
buyer gets it. In one process on both databases, and across two server processes."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.core.config import Settings
from emporium.orders.models import Order
from factories import API, Client, assert_problem, at_once
from orders.support import ADDRESS, stock_of, stocked_variants
from servers import server_env, servers

Json = dict[str, Any]
BUYERS = 50
LIMIT = 10
CODE = "TENFOLD"
PRICE = 1999
# 10 % of 19.99 = 1.999 -> 2.00
SAVED = [{"code": CODE, "name": "Ten orders only", "amount": 200}]


async def times_used(client: Client, staff: dict[str, str], promotion_id: str) -> int:
    """The promotion's ``times_used`` as staff see it."""
    response = await client.get(f"{API}/promotions/{promotion_id}", headers=staff)
    assert response.status_code == 200, response.text
    return int(response.json()["times_used"])


async def order_count(session: AsyncSession) -> int:
    await session.rollback()
    return int(await session.scalar(select(func.count()).select_from(Order)) or 0)


async def limited_code(client: Client, staff: dict[str, str]) -> str:
    """10 % off the whole order with ``CODE``, at most ``LIMIT`` orders; returns its id."""
    body = {
        "name": "Ten orders only",
        "code": CODE,
        "type": "percentage",
        "value": 1000,
        "usage_limit": LIMIT,
    }
    response = await client.post(f"{API}/promotions", json=body, headers=staff)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@dataclass(frozen=True)
class Guest:
    """A guest's cart (``cart_id``, ``holder``: its ``Cart-Token`` header) holding one unit
    of its own ``variant`` (stock 1), so that the buyers share nothing but the code."""

    cart_id: str
    holder: dict[str, str]
    variant: Json

    def checkout(self) -> tuple[str, str, dict[str, str], Json]:
        return ("POST", "/orders", self.holder, {"cart_id": self.cart_id})


async def guests_with_the_code(client: Client, staff: dict[str, str]) -> list[Guest]:
    """``BUYERS`` guests, each with an e-mail, an address and ``CODE`` on their cart."""
    variants = await stocked_variants(client, staff, *([1] * BUYERS), price=PRICE)
    guests = []
    for variant in variants:
        created = await client.post(
            f"{API}/carts",
            json={
                "email": f"{uuid.uuid4().hex[:12]}@example.com",
                "items": [{"variant_id": variant["id"], "quantity": 1}],
            },
        )
        assert created.status_code == 201, created.text
        guest = Guest(created.json()["id"], {"Cart-Token": created.json()["token"]}, variant)
        path = f"{API}/carts/{guest.cart_id}"
        addressed = await client.patch(
            path, json={"shipping_address": ADDRESS}, headers=guest.holder
        )
        assert addressed.status_code == 200, addressed.text
        entered = await client.post(
            f"{path}/promotion-codes", json={"code": CODE.lower()}, headers=guest.holder
        )
        assert entered.status_code == 200, entered.text
        assert entered.json()["promotions"] == SAVED
        guests.append(guest)
    return guests


async def check_the_race(
    client: Client,
    staff: dict[str, str],
    session: AsyncSession,
    guests: list[Guest],
    answers: list[httpx.Response],
) -> list[Guest]:
    """Exactly ``LIMIT`` orders, each holding the code; the others are refused with
    ``promotion_exhausted`` and changed nothing: no order, their unit still in stock, their
    cart as it was, reporting the code as used up. Returns the refused guests."""
    assert sorted(a.status_code for a in answers) == [201] * LIMIT + [422] * (BUYERS - LIMIT)
    placed = [a.json() for a in answers if a.status_code == 201]
    assert all(o["promotions"] == SAVED for o in placed)
    assert all((o["discount_total"], o["total"]) == (200, PRICE - 200) for o in placed)
    assert len({o["id"] for o in placed}) == LIMIT
    assert await order_count(session) == LIMIT
    refused = []
    for guest, answer in zip(guests, answers, strict=True):
        in_stock = await stock_of(client, staff, guest.variant)
        if answer.status_code == 201:
            assert in_stock == 0
            continue
        assert_problem(answer, 422, "promotion_exhausted")
        assert in_stock == 1
        cart = (await client.get(f"{API}/carts/{guest.cart_id}", headers=guest.holder)).json()
        assert [i["quantity"] for i in cart["items"]] == [1]
        assert cart["promotion_codes"] == [CODE]
        assert [i["reason"] for i in cart["promotion_issues"]] == ["promotion_exhausted"]
        refused.append(guest)
    return refused


async def cancelling_gives_one_use_back(
    client: Client,
    staff: dict[str, str],
    session: AsyncSession,
    promotion_id: str,
    placed: Json,
    refused: list[Guest],
) -> None:
    """Staff cancel one order (a guest cannot): 9 uses; the first refused guest tries
    again and gets the code (10 uses); the second is refused again."""
    cancelled = await client.post(f"{API}/orders/{placed['id']}/cancel", headers=staff)
    assert cancelled.status_code == 200, cancelled.text
    assert await times_used(client, staff, promotion_id) == LIMIT - 1
    first, second = refused[:2]
    eleventh = await client.post(
        f"{API}/orders", json={"cart_id": first.cart_id}, headers=first.holder
    )
    assert eleventh.status_code == 201, eleventh.text
    assert eleventh.json()["promotions"] == SAVED
    assert await times_used(client, staff, promotion_id) == LIMIT
    again = await client.post(
        f"{API}/orders", json={"cart_id": second.cart_id}, headers=second.holder
    )
    assert_problem(again, 422, "promotion_exhausted")
    assert await order_count(session) == LIMIT + 1
    assert await stock_of(client, staff, second.variant) == 1


@pytest.mark.slow
async def test_fifty_guests_for_a_code_of_ten_uses_in_one_process(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    promotion_id = await limited_code(client, admin_headers)
    guests = await guests_with_the_code(client, admin_headers)
    answers = await at_once(client, *(g.checkout() for g in guests))
    refused = await check_the_race(client, admin_headers, session, guests, answers)
    assert await times_used(client, admin_headers, promotion_id) == LIMIT
    placed = next(a.json() for a in answers if a.status_code == 201)
    await cancelling_gives_one_use_back(
        client, admin_headers, session, promotion_id, placed, refused
    )


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_fifty_guests_for_a_code_of_ten_uses_across_two_server_processes(
    client: Client,
    admin_headers: dict[str, str],
    session: AsyncSession,
    settings: Settings,
    key_file: Path,
    tmp_path: Path,
) -> None:
    """The same race sent over HTTP to two ``emporium serve`` nodes (half on each)."""
    promotion_id = await limited_code(client, admin_headers)
    guests = await guests_with_the_code(client, admin_headers)
    env = server_env(
        settings.database_url,
        key_file,
        route_limits=False,
        database_pool_size="5",
        jobs_embedded="false",
    )
    with servers(2, env, tmp_path) as nodes:
        async with httpx.AsyncClient(timeout=60) as http:
            answers = await asyncio.gather(
                *(
                    http.post(
                        f"{nodes[n % 2]}{API}/orders", json={"cart_id": g.cart_id}, headers=g.holder
                    )
                    for n, g in enumerate(guests)
                )
            )
    refused = await check_the_race(client, admin_headers, session, guests, answers)
    assert await times_used(client, admin_headers, promotion_id) == LIMIT
    placed = next(a.json() for a in answers if a.status_code == 201)
    await cancelling_gives_one_use_back(
        client, admin_headers, session, promotion_id, placed, refused
    )
