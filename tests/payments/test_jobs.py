"""The two scheduled jobs that make payments safe over time: ``payments.expire_orders``
cancels an unpaid order after ``EMPORIUM_ORDER_PAYMENT_MINUTES`` (stock back, once) but
never one whose payment is still open at the provider, nor a paid one, and never leaves one
paid-and-cancelled when a success races with it; ``payments.reconcile`` finishes a payment
whose outcome we never heard, once, however often it runs. Time moves through the clock
seam, never by sleeping."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from doubles.stripe_api import SECRET_KEY, WEBHOOK_SECRET, StripeDouble
from emporium.catalog.models import Variant
from emporium.core.clock import MovableClock, use
from emporium.core.config import Settings
from emporium.jobs.models import Job, OutboxEvent
from emporium.jobs.registry import JobRun
from emporium.payments.jobs import EXPIRE_ORDERS, RECONCILE
from emporium.payments.models import Payment, PaymentChange, TestProviderIntent
from emporium.payments.providers import test_secret
from emporium.payments.providers.test import EVENT_JOB, TestProvider, sign
from factories import API, Client
from payments.support import guest_order, pay, succeeded
from runjobs import drain, run_schedules

MINUTES = 30
Json = dict[str, Any]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Orders wait ``MINUTES`` for payment; reconciliation after the default 5 minutes."""
    return settings.model_copy(update={"order_payment_minutes": MINUTES})


@pytest.fixture
def clock() -> MovableClock:
    """The time orders, payments, the provider and the job runner see."""
    return MovableClock()


async def shown(client: Client, order: Json, guest: dict[str, str]) -> Json:
    answer = await client.get(f"{API}/orders/{order['id']}", headers=guest)
    assert answer.status_code == 200, answer.text
    body: Json = answer.json()
    return body


async def stock(session: AsyncSession, order: Json) -> int:
    """The stock of the order's (only) variant."""
    variant = uuid.UUID(order["items"][0]["variant_id"])
    value = await session.scalar(select(Variant.stock).where(Variant.id == variant))
    await session.rollback()
    return int(value or 0)


async def events(session: AsyncSession, type: str, order: Json) -> int:
    """How many ``type`` events the order announced."""
    rows = (await session.execute(select(OutboxEvent.data).where(OutboxEvent.type == type))).all()
    await session.rollback()
    return sum(1 for (data,) in rows if data.get("order_id") == order["id"])


async def captures(session: AsyncSession, order: Json) -> list[tuple[int, str]]:
    """The captures in the order's money history: ``(amount, source)``."""
    rows = (
        await session.execute(
            select(PaymentChange.amount, PaymentChange.source).where(
                PaymentChange.kind == "captured",
                PaymentChange.order_id == uuid.UUID(order["id"]),
            )
        )
    ).all()
    await session.rollback()
    return [(r.amount, r.source) for r in rows]


def provider(client: Client) -> TestProvider:
    """The app's test provider (its state lives on the app's engine: call it on the app's
    loop, through the client's portal)."""
    found = client.app.state.payments.providers["test"]
    assert isinstance(found, TestProvider)
    return found


def on_app_loop(client: Client, work: Any) -> Any:
    """Run the coroutine function ``work`` on the app's loop, with the app's clock."""

    async def call() -> Any:
        with use(client.app.state.clock):
            return await work()

    with client.portal() as portal:
        return portal.call(call)


def job(client: Client, kind: str) -> Any:
    """A coroutine function running the app's handler of ``kind`` once, as the runner does."""
    app = client.app
    runner = app.state.job_runner

    async def run() -> None:
        handler = runner.registry.handlers[kind]
        run = JobRun(str(uuid.uuid4()), kind, {}, 1, 1, runner.sessionmaker, app.state.settings)
        await handler(run)

    return run


def reference_of(payment: Json) -> str:
    return str(payment["client_secret"]).split("_secret_")[0]


def signed_now(client: Client, event: Json) -> tuple[bytes, dict[str, str]]:
    """A test provider delivery signed at the app's (moved) time."""
    body = json.dumps(event).encode()
    secret = test_secret(client.app.state.settings, client.app.state.accounts.vault.ring)
    when = int(client.app.state.clock.now().timestamp())
    return body, {"Test-Signature": sign(body, secret, when), "Content-Type": "application/json"}


async def forget_provider_events(session: AsyncSession) -> None:
    """Lose every test provider event not yet delivered (our process never heard)."""
    await session.execute(delete(Job).where(Job.kind == EVENT_JOB))
    await session.commit()


async def test_an_unpaid_order_expires_after_the_setting_and_its_stock_comes_back(
    client: Client, admin_headers: dict[str, str], session: AsyncSession, clock: MovableClock
) -> None:
    order, guest = await guest_order(client, admin_headers)
    assert await stock(session, order) == 8
    clock.advance(timedelta(minutes=MINUTES - 1))
    await run_schedules(client)
    assert (await shown(client, order, guest))["status"] == "pending"

    clock.advance(timedelta(minutes=2))
    await run_schedules(client)
    expired = await shown(client, order, guest)
    assert expired["status"] == "cancelled"
    assert expired["status_history"][-1]["by"] == "system"
    assert await stock(session, order) == 10
    clock.advance(timedelta(minutes=2))
    await run_schedules(client)
    assert await events(session, "order.cancelled", order) == 1
    assert await stock(session, order) == 10


async def test_an_order_waits_while_3d_secure_is_open_and_expires_once_it_failed(
    client: Client, admin_headers: dict[str, str], session: AsyncSession, clock: MovableClock
) -> None:
    order, guest = await guest_order(client, admin_headers)
    started = await pay(client, order["id"], guest, "pm_card_authenticationRequired")
    payment = started.json()
    assert payment["status"] == "requires_action", started.text
    clock.advance(timedelta(minutes=MINUTES + 5))
    for _ in range(3):
        clock.advance(timedelta(minutes=1))
        await run_schedules(client)
        assert (await shown(client, order, guest))["status"] == "pending"
    assert await stock(session, order) == 8

    # The customer fails 3-D Secure; its event is lost: the expiry's own question finds it.
    on_app_loop(
        client, lambda: provider(client).complete_action(reference_of(payment), succeed=False)
    )
    await forget_provider_events(session)
    clock.advance(timedelta(minutes=1))
    await run_schedules(client)
    expired = await shown(client, order, guest)
    assert (expired["status"], expired["paid_total"]) == ("cancelled", 0)
    listed = await client.get(f"{API}/orders/{order['id']}/payments", headers=guest)
    assert [(p["status"], p["failure_code"]) for p in listed.json()["items"]] == [
        ("failed", "authentication_required")
    ]
    assert await stock(session, order) == 10
    assert await events(session, "order.cancelled", order) == 1


async def test_a_paid_order_never_expires(
    client: Client, admin_headers: dict[str, str], session: AsyncSession, clock: MovableClock
) -> None:
    order, guest = await guest_order(client, admin_headers)
    assert (await pay(client, order["id"], guest)).json()["status"] == "captured"
    for hours in (1, 5, 48):
        clock.offset = timedelta(hours=hours)
        await run_schedules(client)
    paid = await shown(client, order, guest)
    assert (paid["status"], paid["paid_total"]) == ("paid", order["total"])
    assert await events(session, "order.cancelled", order) == 0
    assert await stock(session, order) == 8


async def _race(client: Client, order: Json, guest: dict[str, str], late: str) -> None:
    """Run the expiry job and a late success at the same time on the app's loop: the
    customer's card payment (``late="pay"``) or the provider's success event for a payment
    that finished 3-D Secure (``late="event"``)."""
    app = client.app
    expire = job(client, EXPIRE_ORDERS)
    started = None
    if late == "event":
        started = (await pay(client, order["id"], guest, "pm_card_authenticationRequired")).json()
        on_app_loop(client, lambda: provider(client).complete_action(reference_of(started)))
    before = app.state.clock.offset
    app.state.clock.advance(timedelta(minutes=MINUTES + 1))

    async def success() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
            if started is None:
                body = {"provider": "test", "payment_method": "pm_card_visa"}
                url = f"{API}/orders/{order['id']}/payments"
                return await c.post(url, json=body, headers=guest)
            content, headers = signed_now(client, succeeded(started))
            return await c.post(f"{API}/payments/webhooks/test", content=content, headers=headers)

    async def both() -> list[Any]:
        return list(await asyncio.gather(expire(), success()))

    _, answer = on_app_loop(client, both)
    app.state.clock.offset = before  # back, so the staff's access token stays valid
    assert answer.status_code in (200, 201, 409), answer.text


@pytest.mark.parametrize("late", ["pay", "event"])
async def test_expiry_raced_with_a_late_success_never_ends_paid_and_cancelled(
    client: Client,
    admin_headers: dict[str, str],
    session: AsyncSession,
    clock: MovableClock,
    late: str,
) -> None:
    outcomes = set()
    for _ in range(10):
        order, guest = await guest_order(client, admin_headers)
        await _race(client, order, guest, late)
        await drain(client)  # events, the refund of money captured on a cancelled order
        final = await shown(client, order, guest)
        paid, cancelled = (
            await events(session, "order.paid", order),
            await events(session, "order.cancelled", order),
        )
        outcomes.add(final["status"])
        if final["status"] == "paid":
            assert (paid, cancelled) == (1, 0)
            assert final["paid_total"] - final["refunded_total"] == order["total"]
            assert await stock(session, order) == 8
        else:
            assert final["status"] == "cancelled", final
            assert (paid, cancelled) == (0, 1)
            assert final["paid_total"] == final["refunded_total"]
            assert await stock(session, order) == 10
        assert len(await captures(session, order)) <= 1
    assert outcomes <= {"paid", "cancelled"}


async def test_reconciliation_finishes_a_3d_secure_payment_whose_event_was_lost_once(
    client: Client, admin_headers: dict[str, str], session: AsyncSession, clock: MovableClock
) -> None:
    order, guest = await guest_order(client, admin_headers)
    payment = (await pay(client, order["id"], guest, "pm_card_authenticationRequired")).json()
    await drain(client)
    on_app_loop(client, lambda: provider(client).complete_action(reference_of(payment)))
    await forget_provider_events(session)
    clock.advance(timedelta(minutes=2))
    await run_schedules(client)  # younger than EMPORIUM_PAYMENTS_RECONCILE_MINUTES: not asked
    assert (await shown(client, order, guest))["status"] == "pending"

    clock.advance(timedelta(minutes=4))
    reconcile = job(client, RECONCILE)

    async def twice() -> None:
        await asyncio.gather(reconcile(), reconcile())

    on_app_loop(client, twice)
    await run_schedules(client)
    paid = await shown(client, order, guest)
    assert (paid["status"], paid["paid_total"]) == ("paid", order["total"])
    assert await captures(session, order) == [(order["total"], "reconcile")]
    assert await events(session, "order.paid", order) == 1


@pytest.fixture
def stripe_settings(settings: Settings, stripe_api: StripeDouble) -> Settings:
    """The app with Stripe enabled, pointed at the double."""
    return settings.model_copy(
        update={
            "payment_providers": ["manual", "test", "stripe"],
            "stripe_api_base": stripe_api.url,
            "stripe_secret_key": SecretStr(SECRET_KEY),
            "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET),
        }
    )


async def test_reconciliation_finds_a_stripe_payment_whose_answer_was_lost(
    stripe_settings: Settings,
    stripe_api: StripeDouble,
    admin_headers: dict[str, str],
    session: AsyncSession,
) -> None:
    from litestar.testing import AsyncTestClient

    from emporium.app import create_app

    clock = MovableClock()
    async with AsyncTestClient(app=create_app(stripe_settings, clock=clock)) as client:
        order, guest = await guest_order(client, admin_headers)
        stripe_api.lose_next(3, path="/v1/payment_intents")  # beyond the library's retries
        body = {"provider": "stripe", "payment_method": "pm_card_visa"}
        started = await client.post(
            f"{API}/orders/{order['id']}/payments", json=body, headers=guest
        )
        assert (started.status_code, started.json()["status"]) == (201, "pending"), started.text
        assert len(stripe_api.calls_to("POST", "/v1/payment_intents")) == 3
        clock.advance(timedelta(minutes=6))
        await run_schedules(client)
        await run_schedules(client)
        paid = await shown(client, order, guest)
        assert (paid["status"], paid["paid_total"]) == ("paid", order["total"])
        assert await captures(session, order) == [(order["total"], "reconcile")]
        creates = stripe_api.calls_to("POST", "/v1/payment_intents")
        assert [c.replayed for c in creates][-1] is True  # the same key: no second intent
        (intent,) = stripe_api.intents.values()
        assert intent["metadata"]["emporium_payment_id"] == started.json()["id"]
        assert intent["status"] == "succeeded"


async def test_a_payment_without_reference_older_than_23_hours_is_not_created_again(
    client: Client, admin_headers: dict[str, str], session: AsyncSession, clock: MovableClock
) -> None:
    order, guest = await guest_order(client, admin_headers)
    long_ago = clock.now() - timedelta(hours=24)
    payment_id = uuid.uuid4()
    session.add(
        Payment(
            id=payment_id,
            order_id=uuid.UUID(order["id"]),
            provider="test",
            status="pending",
            amount=order["total"],
            currency=order["currency"],
            payment_method="pm_card_visa",
            created_at=long_ago,
            updated_at=long_ago,
        )
    )
    await session.commit()
    clock.advance(timedelta(minutes=6))
    await run_schedules(client)
    listed = await client.get(f"{API}/orders/{order['id']}/payments", headers=guest)
    assert [p["status"] for p in listed.json()["items"]] == ["pending"]
    made = await session.scalar(select(func.count()).select_from(TestProviderIntent))
    await session.rollback()
    assert made == 0  # Stripe would have forgotten the key: a second charge is possible
    assert (await shown(client, order, guest))["status"] == "pending"
