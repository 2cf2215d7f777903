"""Provider events: each applied once however often and however concurrently it arrives;
a missing or wrong signature is refused (400) and changes nothing; an unknown provider is
404."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.jobs.models import OutboxEvent
from emporium.payments.models import PaymentChange, PaymentEvent
from factories import API, Client, assert_problem
from payments.support import deliver, deliver_at_once, guest_order, pay, signed, succeeded

Json = dict[str, Any]


async def captures(session: AsyncSession, payment_id: str) -> int:
    """How many captures the payment's money history holds."""
    value = await session.scalar(
        select(func.count())
        .select_from(PaymentChange)
        .where(PaymentChange.kind == "captured", PaymentChange.payment_id == uuid.UUID(payment_id))
    )
    await session.rollback()
    return int(value or 0)


async def paid_events(session: AsyncSession, order_id: str) -> int:
    """How many ``order.paid`` events the order announced."""
    rows = (
        await session.execute(select(OutboxEvent.data).where(OutboxEvent.type == "order.paid"))
    ).all()
    await session.rollback()
    return sum(1 for (data,) in rows if data["order_id"] == order_id)


async def awaiting_action(
    client: Client, staff: dict[str, str]
) -> tuple[Json, Json, dict[str, str]]:
    """A guest's order and its payment waiting for 3-D Secure, and the guest's headers."""
    order, guest = await guest_order(client, staff)
    started = await pay(client, order["id"], guest, "pm_card_authenticationRequired")
    assert started.json()["status"] == "requires_action", started.text
    return order, started.json(), guest


async def order_of(client: Client, order_id: str, guest: dict[str, str]) -> Json:
    shown = await client.get(f"{API}/orders/{order_id}", headers=guest)
    assert shown.status_code == 200, shown.text
    body: Json = shown.json()
    return body


async def test_one_event_delivered_ten_times_in_a_row_changes_the_order_once(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    order, payment, guest = await awaiting_action(client, admin_headers)
    event = succeeded(payment)
    answers = [await deliver(client, event) for _ in range(10)]
    assert [a.status_code for a in answers] == [200] * 10
    shown = await order_of(client, order["id"], guest)
    assert (shown["status"], shown["payment_status"]) == ("paid", "paid")
    assert shown["paid_total"] == order["total"]
    assert await captures(session, payment["id"]) == 1
    assert await paid_events(session, order["id"]) == 1
    # The same capture in another event (the provider sends several) changes nothing either.
    assert (await deliver(client, succeeded(payment, "charge.succeeded"))).status_code == 200
    assert (await order_of(client, order["id"], guest))["paid_total"] == order["total"]
    assert await captures(session, payment["id"]) == 1


async def test_one_event_delivered_ten_times_at_once_changes_the_order_once(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    order, payment, guest = await awaiting_action(client, admin_headers)
    answers = await deliver_at_once(client, succeeded(payment), 10)
    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers]
    shown = await order_of(client, order["id"], guest)
    assert (shown["status"], shown["paid_total"]) == ("paid", order["total"])
    assert await captures(session, payment["id"]) == 1
    assert await paid_events(session, order["id"]) == 1
    stored = await session.scalar(select(func.count()).select_from(PaymentEvent))
    await session.rollback()
    assert stored == 1


async def test_a_bad_or_missing_signature_is_400_and_changes_nothing(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    order, payment, guest = await awaiting_action(client, admin_headers)
    event = succeeded(payment)
    body, good = signed(client.app, event)
    forged = {**good, "Test-Signature": good["Test-Signature"][:-4] + "0000"}
    stale, _ = signed(client.app, event, timestamp=1_000_000_000)
    _, stale_headers = signed(client.app, event, timestamp=1_000_000_000)
    url = f"{API}/payments/webhooks/test"
    for headers, content in (
        (forged, body),
        ({"Content-Type": "application/json"}, body),
        (stale_headers, stale),
        (good, body.replace(b"captured", b"cancelled")),
    ):
        answer = await client.post(url, content=content, headers=headers)
        assert_problem(answer, 400, "invalid_signature")
    shown = await order_of(client, order["id"], guest)
    assert (shown["status"], shown["paid_total"]) == ("pending", 0)
    assert await captures(session, payment["id"]) == 0
    assert (await client.post(url, content=body, headers=good)).status_code == 200
    assert (await order_of(client, order["id"], guest))["status"] == "paid"


async def test_an_unknown_provider_is_404_and_an_unknown_payment_is_not_recorded(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    _, payment, _ = await awaiting_action(client, admin_headers)
    body, headers = signed(client.app, succeeded(payment))
    for name in ("paypal", "stripe"):  # stripe is not enabled here
        answer = await client.post(f"{API}/payments/webhooks/{name}", content=body, headers=headers)
        assert_problem(answer, 404, "provider_not_found")
    stranger = succeeded({**payment, "id": str(uuid.uuid4()), "client_secret": "tpi_x_secret_y"})
    answer = await deliver(client, stranger)
    assert answer.status_code == 200
    assert answer.json() == {"received": False}
    assert await session.scalar(select(func.count()).select_from(PaymentEvent)) == 0
