"""Payments under ``kill -9``: a real ``emporium serve`` with the ``stripe`` provider, pointed
at the Stripe API double, killed at the worst moments and restarted on the same port.

- Between the provider's success and our commit: the intent succeeded at Stripe, the
  server dies while it waits for the answer. Stripe keeps retrying its
  ``payment_intent.succeeded`` event until our webhook answers 2xx; the client retries
  with its ``Idempotency-Key``. The order ends paid once, the card charged once.
- After our commit, before the client read the answer: the retry with the same key
  replays the payment; a retry without a key is told the order is already paid.
- An ``emporium worker`` killed in the middle of ``payments.reconcile`` (Stripe slow to
  answer): the next worker takes the job over and the payment ends captured once.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from pydantic import SecretStr
from sqlalchemy import func, update
from sqlalchemy import select as sql_select
from sqlalchemy.ext.asyncio import AsyncSession

from doubles.stripe_api import SECRET_KEY, WEBHOOK_SECRET, StripeDouble
from emporium.app import create_app
from emporium.core.clock import utcnow
from emporium.core.config import Settings
from emporium.jobs.models import OutboxEvent
from emporium.jobs.outbox import enqueue
from emporium.orders.models import Order
from emporium.payments.jobs import RECONCILE
from emporium.payments.models import Payment
from factories import API, Client, assert_problem
from payments.support import guest_order
from servers import EMPORIUM, free_port, server_env, serving

pytestmark = pytest.mark.slow
Json = dict[str, Any]
VISA = {"provider": "stripe", "payment_method": "pm_card_visa"}


def _env(
    settings: Settings, key_file: Path, stripe_api: StripeDouble, **extra: str
) -> dict[str, str]:
    """A server with Stripe enabled against the double, no embedded jobs (nothing but the
    webhook and the client's retry may finish a payment here)."""
    return server_env(
        settings.database_url,
        key_file,
        route_limits=False,
        jobs_embedded="false",
        payment_providers="manual,test,stripe",
        stripe_secret_key=SECRET_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=stripe_api.url,
        **extra,
    )


async def _until(found: Callable[[], Any], what: str, seconds: float = 15) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


def _held(stripe_api: StripeDouble) -> list[Json]:
    with stripe_api.lock:
        held, stripe_api.queued = list(stripe_api.queued), []
    return held


def _stripe_retries(stripe_api: StripeDouble, events: list[Json], seconds: float = 15) -> None:
    """Deliver each event as Stripe does: again and again until the endpoint answers 2xx."""
    deadline = time.monotonic() + seconds
    for event in events:
        while True:
            [status] = stripe_api.send(event)
            if status is not None and 200 <= status < 300:
                break
            assert time.monotonic() < deadline, f"{event['type']} never accepted: {status}"
            time.sleep(0.2)


async def _money(session: AsyncSession, order_id: str) -> tuple[Any, list[Any], list[str]]:
    """The order, its payments and its ``order.paid`` events, as stored."""
    oid = uuid.UUID(order_id)
    order = (await session.execute(sql_select(Order).where(Order.id == oid))).scalar_one()
    payments = list(await session.scalars(sql_select(Payment).where(Payment.order_id == oid)))
    paid = [
        str(e.data["order_id"])
        for e in await session.scalars(
            sql_select(OutboxEvent).where(OutboxEvent.type == "order.paid")
        )
    ]
    session.expunge_all()  # keep what was read past the rollback
    await session.rollback()
    return order, payments, paid


async def _payment_count(session: AsyncSession) -> int:
    value = int(await session.scalar(sql_select(func.count()).select_from(Payment)) or 0)
    await session.rollback()
    return value


def _assert_paid_once(
    stripe_api: StripeDouble, order: Any, payments: list[Any], paid: list[str]
) -> None:
    """One captured payment of the whole total, the order paid once, one charge at Stripe."""
    assert [(p.status, p.captured_amount) for p in payments] == [("captured", order.total)]
    assert (order.status, order.paid_total, order.payment_status) == (
        "paid",
        order.total,
        "paid",
    )
    assert paid == [str(order.id)]
    assert len(stripe_api.intents) == len(stripe_api.charges) == 1
    [intent] = stripe_api.intents.values()
    assert (intent["status"], intent["amount_received"]) == ("succeeded", order.total)
    assert payments[0].reference == intent["id"]
    creates = stripe_api.calls_to("POST", "/v1/payment_intents")
    assert len([c for c in creates if not c.replayed]) == 1


@pytest.mark.parametrize("first", ["webhook", "retry"])
async def test_killed_between_the_providers_success_and_our_commit(
    first: str,
    client: Client,
    admin_headers: dict[str, str],
    settings: Settings,
    key_file: Path,
    tmp_path: Path,
    session: AsyncSession,
    stripe_api: StripeDouble,
) -> None:
    """The card is charged at Stripe, the server is killed while Stripe's answer is on its
    way: our payment stays ``pending``. After the restart, whichever comes first, Stripe's
    retried ``payment_intent.succeeded`` or the client's retry with the same key, finishes
    that payment and the other changes nothing: the retry answers the same payment,
    captured; one payment, one charge, one ``order.paid``."""
    order, guest = await guest_order(client, admin_headers)
    env, port = _env(settings, key_file, stripe_api), free_port()
    url = f"{API}/orders/{order['id']}/payments"
    headers = guest | {"Idempotency-Key": "pay-once"}
    stripe_api.slow_next(20, path="/v1/payment_intents")
    outcome: list[object] = []
    with serving(env, tmp_path, port) as (base, proc):
        stripe_api.webhook_url = f"{base}{API}/payments/webhooks/stripe"

        def send() -> None:
            try:
                outcome.append(httpx.post(f"{base}{url}", json=VISA, headers=headers, timeout=30))
            except httpx.TransportError as exc:
                outcome.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        [intent] = await _until(lambda: list(stripe_api.intents.values()), "the intent")
        await _until(lambda: intent["status"] == "succeeded", "the charge")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        sender.join(timeout=10)
    assert isinstance(outcome[0], httpx.TransportError), outcome
    _, [pending], _ = await _money(session, order["id"])
    assert (pending.status, pending.captured_amount) == ("pending", 0)
    events = _held(stripe_api)
    assert "payment_intent.succeeded" in [e["type"] for e in events]
    assert stripe_api.send(events[-1]) == [None]  # nobody answers: Stripe will retry
    with serving(env, tmp_path, port) as (base, _proc):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            if first == "webhook":
                await asyncio.to_thread(_stripe_retries, stripe_api, events)
            retry = await http.post(url, json=VISA, headers=headers)
            assert retry.status_code == 201, retry.text
            assert retry.headers["idempotent-replayed"] == "true"
            assert (retry.json()["id"], retry.json()["status"]) == (str(pending.id), "captured")
            if first == "retry":
                await asyncio.to_thread(_stripe_retries, stripe_api, events)
            listed = await http.get(url, headers=guest)
            assert [p["status"] for p in listed.json()["items"]] == ["captured"]
    _assert_paid_once(stripe_api, *await _money(session, order["id"]))


def _request(port: int, path: str, body: Json, headers: dict[str, str]) -> socket.socket:
    """Send one HTTP/1.1 POST on a raw socket and return it unread."""
    payload = json.dumps(body).encode()
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}", "", ""]
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall("\r\n".join(lines).encode() + payload)
    return sock


async def test_killed_after_our_commit_before_the_client_read_the_answer(
    client: Client,
    admin_headers: dict[str, str],
    settings: Settings,
    key_file: Path,
    tmp_path: Path,
    session: AsyncSession,
    stripe_api: StripeDouble,
) -> None:
    """The payment is applied and committed; the server starts answering and is killed
    before the client read a byte. The client's retry with the same key replays the
    captured payment; a retry without a key is refused ``409 order_not_payable``; the card
    was charged once."""
    order, guest = await guest_order(client, admin_headers)
    env, port = _env(settings, key_file, stripe_api), free_port()
    url = f"{API}/orders/{order['id']}/payments"
    headers = guest | {"Idempotency-Key": "pay-once"}
    with serving(env, tmp_path, port) as (_base, proc):
        sock = _request(port, url, VISA, headers)
        try:
            readable, _, _ = await asyncio.to_thread(select.select, [sock], [], [], 20)
            assert readable, "the server never answered"
            os.kill(proc.pid, signal.SIGKILL)  # the answer stays unread
            proc.wait(timeout=10)
        finally:
            sock.close()
    _, [committed], _ = await _money(session, order["id"])
    assert committed.status == "captured"
    with serving(env, tmp_path, port) as (base, _proc):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            replay = await http.post(url, json=VISA, headers=headers)
            assert replay.status_code == 201, replay.text
            assert replay.headers["idempotent-replayed"] == "true"
            assert (replay.json()["id"], replay.json()["status"]) == (
                str(committed.id),
                "captured",
            )
            assert_problem(await http.post(url, json=VISA, headers=guest), 409, "order_not_payable")
    assert await _payment_count(session) == 1
    _assert_paid_once(stripe_api, *await _money(session, order["id"]))


@contextmanager
def _worker(env: dict[str, str], cwd: Path, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """An ``emporium worker`` process (killed, if still alive, on the way out)."""
    proc = subprocess.Popen(
        [EMPORIUM, "worker", "--name", name],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=20)


async def _status(session: AsyncSession, payment_id: str) -> str:
    found = await session.scalar(
        sql_select(Payment.status).where(Payment.id == uuid.UUID(payment_id))
    )
    await session.rollback()
    return str(found)


async def test_a_worker_killed_mid_reconciliation_leaves_it_to_the_next(
    client: Client,
    admin_headers: dict[str, str],
    settings: Settings,
    key_file: Path,
    tmp_path: Path,
    session: AsyncSession,
    stripe_api: StripeDouble,
) -> None:
    """Stripe charged the card but every answer was lost: our payment is ``pending``
    without a reference. ``payments.reconcile`` asks Stripe again (the same create, same
    key); the worker doing it is killed while Stripe is slow to answer. After the job's
    lease the next worker asks again: the payment ends captured once, one charge at Stripe,
    one ``order.paid``."""
    order, guest = await guest_order(client, admin_headers)
    stripe = settings.model_copy(
        update={
            "payment_providers": ["manual", "test", "stripe"],
            "stripe_secret_key": SecretStr(SECRET_KEY),
            "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET),
            "stripe_api_base": stripe_api.url,
        }
    )
    stripe_api.lose_next(3, path="/v1/payment_intents")  # the first try and its 2 retries
    async with AsyncTestClient(app=create_app(stripe)) as shop:
        created = await shop.post(f"{API}/orders/{order['id']}/payments", json=VISA, headers=guest)
    assert created.status_code == 201, created.text
    payment = created.json()
    assert payment["status"] == "pending"
    assert [i["status"] for i in stripe_api.intents.values()] == ["succeeded"]
    await session.execute(  # unchanged for longer than EMPORIUM_PAYMENTS_RECONCILE_MINUTES
        update(Payment)
        .where(Payment.id == uuid.UUID(payment["id"]))
        .values(updated_at=utcnow() - timedelta(minutes=10))
    )
    await enqueue(session, RECONCILE, {})
    await session.commit()
    env = _env(
        settings,
        key_file,
        stripe_api,
        jobs_lease_seconds="3",
        jobs_poll_seconds="0.1",
        jobs_concurrency="1",
        mail_dir=str(tmp_path / "mail"),
    )
    asked = len(stripe_api.calls_to("POST", "/v1/payment_intents"))
    stripe_api.slow_next(20, path="/v1/payment_intents")
    with _worker(env, tmp_path, "doomed") as doomed:
        await _until(
            lambda: len(stripe_api.calls_to("POST", "/v1/payment_intents")) > asked,
            "the reconciliation's call to Stripe",
            seconds=60,
        )
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
    assert await _status(session, payment["id"]) == "pending"
    with _worker(env, tmp_path, "survivor"):
        deadline = time.monotonic() + 60
        while await _status(session, payment["id"]) != "captured":
            assert time.monotonic() < deadline, "the next worker never reconciled the payment"
            await asyncio.sleep(0.2)
    _assert_paid_once(stripe_api, *await _money(session, order["id"]))
