"""What a parcel tells the world: the buyer's e-mail with the tracking link (a guest's
included), the ``fulfillment.created``, ``order.fulfilled`` and ``order.delivered`` events,
and webhooks that subscribe to them (``GET /webhooks/events`` lists every event type)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import SignIn
from emporium.app import create_app
from emporium.core.config import Settings
from emporium.jobs.models import OutboxEvent
from factories import API, Client, assert_problem
from fulfilment.support import TRACKING, paid_order, ship, ship_body
from mail.test_mail import folder_messages, html_of, text_of
from orders.support import ADDRESS, stocked_variants
from receiver import running_receiver
from runjobs import drain

FULFILMENT_EVENTS = ["fulfillment.created", "order.fulfilled", "order.delivered"]


def _shipping_mails(settings: Settings, number: str) -> list[Any]:
    assert settings.mail_dir is not None
    if not settings.mail_dir.exists():
        return []
    return [
        m for m in folder_messages(settings.mail_dir) if m["Subject"] == f"Order {number} shipped"
    ]


async def test_the_guest_gets_the_tracking_link_by_e_mail(
    client: Client, admin_headers: dict[str, str], settings: Settings
) -> None:
    order, _ = await paid_order(client, admin_headers, quantity=2)
    line = order["items"][0]
    quiet = await ship(client, order["id"], admin_headers, ship_body(line["id"], 1))
    assert quiet.status_code == 201, quiet.text
    await drain(client)
    assert _shipping_mails(settings, order["number"]) == []  # notify_customer false

    told = await ship(
        client, order["id"], admin_headers, ship_body(line["id"], 1, notify=True, tracking=TRACKING)
    )
    assert told.status_code == 201, told.text
    await drain(client)
    await drain(client)  # a second run sends nothing twice
    (mail,) = _shipping_mails(settings, order["number"])
    assert mail["To"] == "guest@example.com"
    text = text_of(mail)
    assert f"1 x {line['title']}" in text
    assert "Carrier: DHL" in text
    assert f"Tracking number: {TRACKING['tracking_number']}" in text
    assert f"Track your parcel: {TRACKING['tracking_url']}" in text
    assert f'<a href="{TRACKING["tracking_url"]}">' in html_of(mail)


async def test_a_customer_gets_it_at_the_account_s_address(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn, settings: Settings
) -> None:
    buyer = await sign_in(email="ada.buyer@example.com")
    (variant,) = await stocked_variants(client, admin_headers, 5)
    placed = await client.post(
        f"{API}/orders",
        json={"items": [{"variant_id": variant["id"], "quantity": 1}], "shipping_address": ADDRESS},
        headers=buyer,
    )
    assert placed.status_code == 201, placed.text
    order = placed.json()
    paid = await client.post(
        f"{API}/orders/{order['id']}/payments",
        json={"provider": "test", "payment_method": "pm_card_visa"},
        headers=buyer,
    )
    assert paid.status_code == 201, paid.text
    await drain(client)
    body = ship_body(
        order["items"][0]["id"], 1, notify=True, tracking={"tracking_url": TRACKING["tracking_url"]}
    )
    assert (await ship(client, order["id"], admin_headers, body)).status_code == 201
    await drain(client)
    (mail,) = _shipping_mails(settings, order["number"])
    assert mail["To"] == "ada.buyer@example.com"
    assert "Carrier" not in text_of(mail)  # no carrier given, none shown
    assert TRACKING["tracking_url"] in text_of(mail)


async def test_the_events_of_a_parcel_s_life(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    order, _ = await paid_order(client, admin_headers, quantity=1)
    line = order["items"][0]
    parcel = await ship(
        client, order["id"], admin_headers, ship_body(line["id"], 1, tracking=TRACKING)
    )
    assert parcel.status_code == 201, parcel.text
    delivered = await client.post(
        f"{API}/fulfillments/{parcel.json()['id']}/delivered", headers=admin_headers
    )
    assert delivered.status_code == 200, delivered.text
    rows = (
        await session.execute(
            select(OutboxEvent.type, OutboxEvent.data).where(
                OutboxEvent.type.in_(FULFILMENT_EVENTS)
            )
        )
    ).all()
    by_type = {row.type: row.data for row in rows}
    assert sorted(by_type) == sorted(FULFILMENT_EVENTS)
    assert len(rows) == 3
    created = by_type["fulfillment.created"]
    assert created["fulfillment_id"] == parcel.json()["id"]
    assert created["order_id"] == order["id"]
    assert created["tracking_url"] == TRACKING["tracking_url"]
    assert created["lines"] == [
        {"order_line_id": line["id"], "sku": line["sku"], "title": line["title"], "quantity": 1}
    ]
    assert "email" not in created  # events carry ids, never addresses
    assert by_type["order.fulfilled"]["status"] == "fulfilled"
    assert by_type["order.delivered"]["status"] == "delivered"


async def test_webhooks_list_and_subscribe_to_the_fulfilment_events(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    listed = await client.get(f"{API}/webhooks/events", headers=admin_headers)
    assert listed.status_code == 200, listed.text
    events = listed.json()["items"]
    for event in [*FULFILMENT_EVENTS, "order.paid", "return.requested", "refund.created"]:
        assert event in events
    assert len(events) == len(set(events))
    staff = await sign_in(roles=["staff"])
    assert_problem(await client.get(f"{API}/webhooks/events", headers=staff), 403)
    assert_problem(await client.get(f"{API}/webhooks/events"), 401)
    made = await client.post(
        f"{API}/webhooks",
        json={"url": "https://hooks.example.com/emporium", "events": FULFILMENT_EVENTS},
        headers=admin_headers,
    )
    assert made.status_code == 201, made.text
    assert sorted(made.json()["events"]) == sorted(FULFILMENT_EVENTS)


@pytest.fixture
async def open_client(settings: Settings) -> AsyncIterator[Client]:
    """A client of an app that allows private webhook targets (the local receiver)."""
    allowed = settings.model_copy(update={"webhooks_allow_private": True})
    async with AsyncTestClient(app=create_app(allowed)) as client:
        yield client


async def test_a_subscriber_receives_the_parcel_and_the_order_moves(
    open_client: Client, admin_headers: dict[str, str]
) -> None:
    client = open_client
    order, _ = await paid_order(client, admin_headers, quantity=1)
    with running_receiver() as receiver:
        made = await client.post(
            f"{API}/webhooks",
            json={"url": receiver.url, "events": FULFILMENT_EVENTS},
            headers=admin_headers,
        )
        assert made.status_code == 201, made.text
        receiver.secret = made.json()["secret"]
        body = ship_body(order["items"][0]["id"], 1, tracking=TRACKING)
        parcel = (await ship(client, order["id"], admin_headers, body)).json()
        await client.post(f"{API}/fulfillments/{parcel['id']}/delivered", headers=admin_headers)
        for _ in range(3):
            if await drain(client) == 0:
                break
        received = sorted((r.body["type"], r.verified) for r in receiver.requests)
    assert received == sorted((event, True) for event in FULFILMENT_EVENTS)
