"""Paying with a gift card (provider ``gift_card``): never more than the card holds, even
with 20 buyers at once on a served app; alone or with another provider for the rest (split
tender); the card's amount given back when the order is cancelled or expires; refunds to
the card first; a code that cannot pay refused with one answer, never stored."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.app import create_app
from emporium.core.clock import MovableClock
from emporium.core.config import Settings
from emporium.jobs.models import OutboxEvent
from emporium.payments.models import Payment
from emporium.payments.providers.gift_card import GiftCardProvider
from factories import API, Client, assert_problem
from orders.support import ADDRESS, stocked_variants
from payments.conftest import serving
from payments.support import guest_order, pay
from runjobs import drain, run_schedules

Json = dict[str, Any]
CARDS = f"{API}/gift-cards"
BUYERS = 20
COVERED = 3


async def issue(client: Any, staff: dict[str, str], balance: int, **body: Any) -> Json:
    """A card of ``balance`` minor units (USD, the shop's currency) issued by staff."""
    made = await client.post(
        CARDS, json={"initial_balance": balance, "currency": "USD", **body}, headers=staff
    )
    assert made.status_code == 201, made.text
    card: Json = made.json()
    return card


async def spend(client: Any, order: Json, headers: dict[str, str], code: str, **body: Any) -> Any:
    """POST /orders/{id}/payments with the gift card ``code``."""
    return await client.post(
        f"{API}/orders/{order['id']}/payments",
        json={"provider": "gift_card", "code": code, **body},
        headers=headers,
    )


async def card_state(client: Any, staff: dict[str, str], card: Json) -> Json:
    """The card and its ledger, as staff read it."""
    read = await client.get(f"{CARDS}/{card['id']}", headers=staff)
    assert read.status_code == 200, read.text
    body: Json = read.json()
    return body


def assert_ledger_holds(state: Json) -> None:
    """The movements sum to the balance, and no balance after any of them is negative."""
    movements = state["movements"]
    assert sum(m["amount"] for m in movements) == state["balance"]
    assert all(m["balance_after"] >= 0 for m in movements)
    running = 0
    for m in movements:
        running += m["amount"]
        assert m["balance_after"] == running


async def shown(client: Client, order: Json, headers: dict[str, str]) -> Json:
    answer = await client.get(f"{API}/orders/{order['id']}", headers=headers)
    assert answer.status_code == 200, answer.text
    body: Json = answer.json()
    return body


@dataclass
class Shop:
    """An app served on loopback and an HTTP client of it."""

    app: Litestar
    http: httpx.AsyncClient


@pytest.fixture
async def shop(settings: Settings) -> AsyncIterator[Shop]:
    """The test app served by uvicorn (the general rate limit off: every buyer of the race
    comes from 127.0.0.1)."""
    app = create_app(settings.model_copy(update={"rate_limit_general": ""}))
    with serving(app) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            yield Shop(app, http)


async def test_twenty_buyers_spend_a_card_that_covers_three_and_exactly_three_pay(
    shop: Shop, sign_in: Any, session: AsyncSession
) -> None:
    staff = await sign_in(roles=["admin", "staff"])
    buyer = await sign_in()
    (variant,) = await stocked_variants(cast(Any, shop.http), staff, BUYERS + 5, price=1999)
    body = {"items": [{"variant_id": variant["id"], "quantity": 1}], "shipping_address": ADDRESS}
    placed = await asyncio.gather(
        *(shop.http.post(f"{API}/orders", json=body, headers=buyer) for _ in range(BUYERS))
    )
    orders = [p.json() for p in placed]
    assert {p.status_code for p in placed} == {201}
    total = orders[0]["total"]
    assert {o["total"] for o in orders} == {total}
    card = await issue(shop.http, staff, COVERED * total)

    answers = await asyncio.gather(*(spend(shop.http, o, buyer, card["code"]) for o in orders))

    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    payments = [a.json() for a in answers]
    captured = [p for p in payments if p["status"] == "captured"]
    failed = [p for p in payments if p["status"] == "failed"]
    assert len(captured) == COVERED
    assert len(failed) == BUYERS - COVERED
    assert {p["failure_code"] for p in failed} == {"insufficient_funds"}
    assert {p["captured_amount"] for p in captured} == {total}
    assert {p["captured_amount"] for p in failed} == {0}
    state = await card_state(shop.http, staff, card)
    assert state["balance"] == 0
    assert_ledger_holds(state)
    debits = [m for m in state["movements"] if m["kind"] == "debit"]
    assert sorted(m["payment_id"] for m in debits) == sorted(p["id"] for p in captured)
    statuses = []
    for o in orders:
        statuses.append((await shown(cast(Client, shop.http), o, buyer))["status"])
    assert sorted(statuses).count("paid") == COVERED
    assert statuses.count("pending") == BUYERS - COVERED
    # Nothing about the card's code is kept with the payments.
    methods = (await session.execute(select(Payment.payment_method))).scalars().all()
    assert set(methods) == {f"gift_card:{card['id']}"}


async def test_split_tender_pays_the_order_and_a_retry_debits_nothing_more(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    order, guest = await guest_order(client, admin_headers, quantity=2, price=1500)
    card = await issue(client, admin_headers, 1000)
    first = await spend(client, order, guest, card["code"].lower())
    assert first.status_code == 201, first.text
    assert (first.json()["status"], first.json()["amount"]) == ("captured", 1000)
    partly = await shown(client, order, guest)
    assert (partly["status"], partly["payment_status"]) == ("pending", "partially_paid")
    assert partly["paid_total"] == 1000

    rest = await pay(client, order["id"], guest)
    assert rest.status_code == 201, rest.text
    assert rest.json()["amount"] == order["total"] - 1000
    paid = await shown(client, order, guest)
    assert (paid["status"], paid["payment_status"]) == ("paid", "paid")
    assert paid["paid_total"] == order["total"]

    # The provider asked again for the same payment (a retry, reconciliation) answers the
    # same captured payment and debits nothing more.
    provider = client.app.state.payments.providers["gift_card"]
    assert isinstance(provider, GiftCardProvider)
    with client.portal() as portal:
        again = portal.call(
            lambda: provider.create(
                payment_id=uuid.UUID(first.json()["id"]),
                order_id=uuid.UUID(order["id"]),
                amount=1000,
                currency="USD",
                payment_method=f"gift_card:{card['id']}",
                capture="automatic",
            )
        )
    assert (again.status, again.captured_amount) == ("captured", 1000)
    state = await card_state(client, admin_headers, card)
    assert state["balance"] == 0
    assert [m["kind"] for m in state["movements"]] == ["issued", "debit"]
    assert_ledger_holds(state)
    # The card's events, once each, name the card and the payment, never the code.
    found = (await session.execute(select(OutboxEvent.type, OutboxEvent.data))).all()
    mine = [(t, d) for t, d in found if d.get("gift_card_id") == card["id"]]
    assert sorted(t for t, _ in mine) == ["gift_card.created", "gift_card.debited"]
    debited = next(d for t, d in mine if t == "gift_card.debited")
    assert (debited["payment_id"], debited["amount"], debited["balance"]) == (
        first.json()["id"],
        1000,
        0,
    )
    code = card["code"].replace("-", "")
    assert all(code not in str(d) and card["code"] not in str(d) for _, d in found)


async def test_a_failed_second_payment_gives_the_card_amount_back(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """Split tender: 12.00 from the card, the rest by a card that is declined. The card's
    amount goes back to the card (the contract), so nothing of the buyer's is held by an
    order they may abandon; paying again with the card and a good card then pays it."""
    order, guest = await guest_order(client, admin_headers, quantity=1, price=3000)
    card = await issue(client, admin_headers, 1200)
    assert (await spend(client, order, guest, card["code"])).json()["status"] == "captured"
    assert (await card_state(client, admin_headers, card))["balance"] == 0
    declined = await pay(client, order["id"], guest, "pm_card_chargeDeclined")
    assert declined.json()["status"] == "failed"
    await drain(client)
    state = await card_state(client, admin_headers, card)
    assert state["balance"] == 1200
    assert [m["kind"] for m in state["movements"]] == ["issued", "debit", "credit"]
    assert_ledger_holds(state)
    released = await shown(client, order, guest)
    assert (released["status"], released["paid_total"], released["refunded_total"]) == (
        "pending",
        1200,
        1200,
    )
    assert (await spend(client, order, guest, card["code"])).json()["status"] == "captured"
    paid = await pay(client, order["id"], guest, "pm_card_visa")
    assert paid.json()["status"] == "captured", paid.text
    final = await shown(client, order, guest)
    assert (final["status"], final["paid_total"] - final["refunded_total"]) == ("paid", 3000)
    await drain(client)
    assert (await card_state(client, admin_headers, card))["balance"] == 0


async def test_a_cancelled_order_gives_the_card_amount_back(
    client: Client, admin_headers: dict[str, str]
) -> None:
    order, guest = await guest_order(client, admin_headers, quantity=1, price=3000)
    card = await issue(client, admin_headers, 1200)
    assert (await spend(client, order, guest, card["code"])).json()["status"] == "captured"
    cancelled = await client.post(f"{API}/orders/{order['id']}/cancel", headers=admin_headers)
    assert cancelled.status_code == 200, cancelled.text
    await drain(client)
    state = await card_state(client, admin_headers, card)
    assert state["balance"] == 1200
    assert_ledger_holds(state)
    final = await shown(client, order, guest)
    assert (final["status"], final["refunded_total"]) == ("cancelled", 1200)


MINUTES = 30


@pytest.fixture
def clock() -> MovableClock:
    """The time orders expire by."""
    return MovableClock()


async def test_an_order_that_expires_gives_the_card_amount_back(
    settings: Settings, clock: MovableClock, sign_in: Any
) -> None:
    app = create_app(settings.model_copy(update={"order_payment_minutes": MINUTES}), clock=clock)
    async with AsyncTestClient(app=app) as client:
        staff = await sign_in(roles=["admin", "staff"])
        order, guest = await guest_order(client, staff, quantity=1, price=2500)
        card = await issue(client, staff, 1000)
        assert (await spend(client, order, guest, card["code"])).json()["status"] == "captured"
        balance = await client.post(f"{CARDS}/balance", json={"code": card["code"]})
        assert balance.json()["balance"] == 0

        clock.advance(timedelta(minutes=MINUTES + 1))
        await run_schedules(client)
        await drain(client)
        expired = await shown(client, order, guest)
        assert (expired["status"], expired["refunded_total"]) == ("cancelled", 1000)
        balance = await client.post(f"{CARDS}/balance", json={"code": card["code"]})
        assert balance.json()["balance"] == 1000


async def test_refunds_go_to_the_gift_card_first(
    client: Client, admin_headers: dict[str, str]
) -> None:
    order, guest = await guest_order(client, admin_headers, quantity=2, price=1500)
    card = await issue(client, admin_headers, 1000)
    gift = (await spend(client, order, guest, card["code"])).json()
    other = (await pay(client, order["id"], guest)).json()
    assert (gift["status"], other["status"]) == ("captured", "captured")

    refunds = f"{API}/orders/{order['id']}/refunds"
    first = await client.post(refunds, json={"amount": 600, "reason": "r"}, headers=admin_headers)
    assert first.status_code == 201, first.text
    assert (first.json()["payment_id"], first.json()["status"]) == (gift["id"], "succeeded")
    assert (await card_state(client, admin_headers, card))["balance"] == 600

    second = await client.post(refunds, json={"amount": 700, "reason": "r"}, headers=admin_headers)
    assert second.status_code == 201, second.text
    listed = (await client.get(refunds, headers=admin_headers)).json()["items"]
    assert [(r["payment_id"], r["amount"]) for r in listed] == [
        (gift["id"], 600),
        (gift["id"], 400),
        (other["id"], 300),
    ]
    state = await card_state(client, admin_headers, card)
    assert state["balance"] == 1000
    assert_ledger_holds(state)
    assert (await shown(client, order, guest))["refunded_total"] == 1300


async def test_a_code_that_cannot_pay_is_refused_with_one_answer(
    client: Client, admin_headers: dict[str, str], clock: MovableClock
) -> None:
    order, guest = await guest_order(client, admin_headers, quantity=1, price=2000)
    disabled = await issue(client, admin_headers, 500)
    await client.post(f"{CARDS}/{disabled['id']}/disable", headers=admin_headers)
    soon = (clock.now() + timedelta(minutes=1)).isoformat()
    expiring = await issue(client, admin_headers, 500, expires_at=soon)
    euro = await issue(client, admin_headers, 500, currency="EUR")
    clock.advance(timedelta(minutes=2))

    answers = [
        await spend(client, order, guest, code)
        for code in ("ZZZZ-ZZZZ-ZZZZ-ZZZZ", disabled["code"], expiring["code"], "nonsense")
    ]
    bodies = [assert_problem(a, 422, "gift_card_invalid") for a in answers]
    assert all(b == bodies[0] for b in bodies)
    assert_problem(await spend(client, order, guest, euro["code"]), 422)
    no_code = await client.post(
        f"{API}/orders/{order['id']}/payments", json={"provider": "gift_card"}, headers=guest
    )
    assert_problem(no_code, 422, "gift_card_invalid")
    wrong_provider = await pay(client, order["id"], guest, code=euro["code"])
    assert_problem(wrong_provider, 422)
    listed = await client.get(f"{API}/orders/{order['id']}/payments", headers=guest)
    assert listed.json()["items"] == []
    assert (await shown(client, order, guest))["paid_total"] == 0
