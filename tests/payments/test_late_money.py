"""Money that arrives for an order cancelled meanwhile goes back by itself.

The contract: "a payment that succeeds on an order that has meanwhile expired or been
cancelled is refunded automatically and recorded". Here the customer is at 3-D Secure when
staff cancel the order, and the bank's success reaches the provider before Emporium voids
the payment: the order stays cancelled (never paid-and-cancelled), the captured money is
refunded through the provider, the money history says so, and staff get one e-mail
(``EMPORIUM_STAFF_EMAIL``).
"""

from __future__ import annotations

import uuid
from functools import partial

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.core.config import Settings
from emporium.jobs.models import OutboxEvent
from emporium.payments.models import Payment, PaymentChange
from factories import API, Client
from mail.test_mail import folder_messages
from payments.support import guest_order, pay
from runjobs import drain


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test app's settings with an address for staff alerts."""
    return settings.model_copy(update={"staff_email": "ops@shop.example"})


async def test_money_captured_after_a_cancellation_is_refunded_and_recorded(
    client: Client, admin_headers: dict[str, str], session: AsyncSession, settings: Settings
) -> None:
    order, guest = await guest_order(client, admin_headers)
    started = await pay(client, order["id"], guest, "pm_card_authenticationRequired")
    assert started.json()["status"] == "requires_action", started.text
    payment_id = uuid.UUID(started.json()["id"])
    reference = await session.scalar(select(Payment.reference).where(Payment.id == payment_id))
    assert reference is not None
    await drain(client)  # the provider's requires_action event
    cancelled = await client.post(f"{API}/orders/{order['id']}/cancel", headers=admin_headers)
    assert cancelled.status_code == 200, cancelled.text

    # The customer finishes 3-D Secure before Emporium's job voids the payment.
    provider = client.app.state.payments.providers["test"]
    with client.portal() as portal:  # the provider's engine lives on the app's loop
        portal.call(partial(provider.complete_action, reference))
    for _ in range(6):  # order.cancelled, the success event, the refund, its event...
        if await drain(client) == 0:
            break

    shown = (await client.get(f"{API}/orders/{order['id']}", headers=guest)).json()
    assert shown["status"] == "cancelled"
    assert (shown["paid_total"], shown["refunded_total"]) == (order["total"], order["total"])
    refunds = await client.get(f"{API}/orders/{order['id']}/refunds", headers=admin_headers)
    assert [(r["amount"], r["status"]) for r in refunds.json()["items"]] == [
        (order["total"], "succeeded")
    ]
    (payment,) = (await client.get(f"{API}/orders/{order['id']}/payments", headers=guest)).json()[
        "items"
    ]
    assert (payment["status"], payment["refunded_amount"]) == ("captured", order["total"])
    kinds = (
        await session.scalars(
            select(PaymentChange.kind)
            .where(PaymentChange.payment_id == payment_id)
            .order_by(PaymentChange.created_at)
        )
    ).all()
    assert "captured" in kinds
    assert "refunded" in kinds
    paid_events = await session.scalar(
        select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == "order.paid")
    )
    assert paid_events == 0
    assert settings.mail_dir is not None
    alerts = [m for m in folder_messages(settings.mail_dir) if m["To"] == "ops@shop.example"]
    assert len(alerts) == 1
    assert alerts[0]["Subject"] == f"Order {order['number']}: money after cancellation refunded"
    assert "captured" in alerts[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
