"""Paying an order through the test provider: a guest pays with ``pm_card_visa`` and the
order is paid exactly once; a declined card fails the payment and leaves the order pending;
3-D Secure waits for the provider's signed event."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.jobs.models import OutboxEvent
from emporium.payments.providers.base import Intent
from emporium.payments.providers.test import intent_event
from factories import API, Client, assert_problem
from payments.support import deliver, guest_order, pay
from runjobs import drain

Json = dict[str, Any]


async def events_of(session: AsyncSession, type: str) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == type)
        )
        or 0
    )


async def test_a_guest_pays_with_a_card_and_the_order_is_paid_once(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    order, guest = await guest_order(client, admin_headers)
    paid = await pay(client, order["id"], guest)
    assert paid.status_code == 201, paid.text
    payment = paid.json()
    assert payment["status"] == "captured"
    assert payment["captured_amount"] == payment["amount"] == order["total"]
    assert paid.headers["cache-control"] == "no-store"
    await drain(client)  # the provider's own event arrives too: it changes nothing
    shown = (await client.get(f"{API}/orders/{order['id']}", headers=guest)).json()
    assert (shown["status"], shown["payment_status"]) == ("paid", "paid")
    assert shown["paid_total"] == order["total"]
    assert await events_of(session, "order.paid") == 1
    assert await events_of(session, "payment.captured") == 1
    listed = await client.get(f"{API}/orders/{order['id']}/payments", headers=guest)
    assert [p["status"] for p in listed.json()["items"]] == ["captured"]
    again = await pay(client, order["id"], guest)
    assert_problem(again, 409, "order_not_payable")


async def test_a_declined_card_fails_the_payment_and_the_order_waits(
    client: Client, admin_headers: dict[str, str]
) -> None:
    order, guest = await guest_order(client, admin_headers)
    declined = await pay(client, order["id"], guest, "pm_card_chargeDeclined")
    assert declined.status_code == 201, declined.text
    assert (declined.json()["status"], declined.json()["failure_code"]) == (
        "failed",
        "card_declined",
    )
    assert declined.json()["captured_amount"] == 0
    shown = (await client.get(f"{API}/orders/{order['id']}", headers=guest)).json()
    assert (shown["status"], shown["payment_status"], shown["paid_total"]) == (
        "pending",
        "unpaid",
        0,
    )
    retried = await pay(client, order["id"], guest)  # a failed payment holds nothing back
    assert retried.json()["status"] == "captured"


async def test_3d_secure_waits_for_the_signed_event(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    order, guest = await guest_order(client, admin_headers)
    started = await pay(client, order["id"], guest, "pm_card_authenticationRequired")
    payment = started.json()
    assert payment["status"] == "requires_action"
    assert payment["client_secret"]
    await drain(client)
    shown = (await client.get(f"{API}/orders/{order['id']}", headers=guest)).json()
    assert shown["status"] == "pending"
    stored = await client.get(f"{API}/orders/{order['id']}/payments", headers=guest)
    reference = payment["client_secret"].split("_secret_")[0]
    intent = Intent(
        reference,
        "captured",
        payment["amount"],
        payment["amount"],
        payment["currency"],
        metadata={"emporium_payment_id": payment["id"]},
    )
    assert stored.json()["items"][0]["status"] == "requires_action"
    delivered = await deliver(client, intent_event(intent, "payment_intent.succeeded"))
    assert delivered.status_code == 200, delivered.text
    shown = (await client.get(f"{API}/orders/{order['id']}", headers=guest)).json()
    assert (shown["status"], shown["payment_status"]) == ("paid", "paid")
    assert await events_of(session, "order.paid") == 1
