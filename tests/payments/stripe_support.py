"""Helpers of the Stripe race tests: orders placed in a batch, the client's confirm and the
provider's webhook raced, and what the database says happened, per order."""

from __future__ import annotations

import asyncio
import email.policy
import random
import uuid
from collections import Counter
from email.parser import BytesParser
from pathlib import Path
from typing import Any, cast

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.core.db.base import table_of
from emporium.jobs.models import OutboxEvent
from emporium.orders.models import Order
from emporium.payments.models import Payment, PaymentChange, Refund
from factories import API
from orders.support import ADDRESS, stocked_variants
from payments.conftest import StripeShop

Json = dict[str, Any]
VISA = {"provider": "stripe", "payment_method": "pm_card_visa"}


async def place_orders(
    shop: StripeShop, staff: dict[str, str], buyer: dict[str, str], count: int, batch: int = 20
) -> list[Json]:
    """``count`` pending orders of one unit each of one product (placed ``batch`` at a
    time, concurrently), by the customer of ``buyer``."""
    (variant,) = await stocked_variants(cast(Any, shop.http), staff, count + 10, price=1999)
    body = {"items": [{"variant_id": variant["id"], "quantity": 1}], "shipping_address": ADDRESS}
    placed: list[Json] = []
    for start in range(0, count, batch):
        answers = await asyncio.gather(
            *(
                shop.http.post(f"{API}/orders", json=body, headers=buyer)
                for _ in range(min(batch, count - start))
            )
        )
        for answer in answers:
            assert answer.status_code == 201, answer.text
            placed.append(answer.json())
    return placed


def take_held(shop: StripeShop, kind: str, key: str, value: str) -> Json | None:
    """Take out of the double's queue the first held event of type ``kind`` whose object's
    metadata ``key`` is ``value``."""
    with shop.stripe.lock:
        for event in shop.stripe.queued:
            meta = event["data"]["object"].get("metadata") or {}
            if event["type"] == kind and meta.get(key) == value:
                shop.stripe.queued.remove(event)
                return event
    return None


async def post_event(shop: StripeShop, event: Json) -> httpx.Response:
    """Deliver ``event``, signed as Stripe signs, to the app's Stripe webhook."""
    body, headers = shop.stripe.signed(event)
    return await shop.http.post(shop.webhook, content=body, headers=headers)


async def release_when_made(
    shop: StripeShop, order_id: str, delay: float, kind: str = "payment_intent.succeeded"
) -> httpx.Response:
    """Wait until the double made the ``kind`` event of the order's intent (it exists before
    the API answer leaves), wait ``delay`` seconds more, then deliver it: it lands while the
    client's request is still reading the answer or applying it."""
    for _ in range(20_000):
        event = take_held(shop, kind, "emporium_order_id", order_id)
        if event is not None:
            await asyncio.sleep(delay)
            return await post_event(shop, event)
        await asyncio.sleep(0.001)
    raise AssertionError(f"the double made no {kind} for order {order_id}")


async def race_confirm_and_webhook(
    shop: StripeShop, order: Json, buyer: dict[str, str], rng: random.Random
) -> tuple[httpx.Response, httpx.Response | None]:
    """The client's confirm (``POST /orders/{id}/payments`` with ``pm_card_visa``) and the
    provider's ``payment_intent.succeeded``, at the same time. With the double delivering
    immediately the event is applied before the API answer leaves; else it is released
    0-30 ms after it was made, racing the client's own apply."""
    paying = shop.http.post(f"{API}/orders/{order['id']}/payments", json=VISA, headers=buyer)
    if shop.stripe.delivery == "immediate":
        return await paying, None
    paid, hook = await asyncio.gather(
        paying, release_when_made(shop, order["id"], rng.uniform(0, 0.03))
    )
    return paid, hook


async def per_order(session: AsyncSession, query: Any) -> Counter[str]:
    """``select(order_id, ...)`` rows counted by order id (as strings)."""
    rows = (await session.execute(query)).all()
    await session.rollback()
    return Counter(str(row[0]) for row in rows)


async def captured_changes(session: AsyncSession) -> Counter[str]:
    """How many ``captured`` lines each order's money history holds."""
    query = select(PaymentChange.order_id).where(PaymentChange.kind == "captured")
    return await per_order(session, query)


async def events_by_order(session: AsyncSession, event_type: str) -> Counter[str]:
    """How many outbox events of ``event_type`` name each order."""
    rows = (
        await session.execute(select(OutboxEvent.data).where(OutboxEvent.type == event_type))
    ).all()
    await session.rollback()
    return Counter(str(data["order_id"]) for (data,) in rows)


async def orders_by_id(session: AsyncSession, ids: list[str]) -> dict[str, Any]:
    """The orders' rows by id."""
    wanted = [uuid.UUID(i) for i in ids]
    table = table_of(Order)
    rows = (await session.execute(select(table).where(table.c.id.in_(wanted)))).all()
    await session.rollback()
    return {str(row.id): row for row in rows}


async def payments_of(session: AsyncSession, order_id: str) -> list[Any]:
    """The order's payment rows, oldest first."""
    table = table_of(Payment).c
    query = select(table_of(Payment)).where(table.order_id == uuid.UUID(order_id))
    found = list((await session.execute(query.order_by(table.created_at))).all())
    await session.rollback()
    return found


async def refunds_of(session: AsyncSession, order_id: str) -> list[Any]:
    """The order's refund rows, oldest first."""
    table = table_of(Refund).c
    query = select(table_of(Refund)).where(table.order_id == uuid.UUID(order_id))
    found = list((await session.execute(query.order_by(table.created_at))).all())
    await session.rollback()
    return found


async def count_changes(session: AsyncSession, order_id: str, kind: str) -> int:
    """How many ``kind`` lines the order's money history holds."""
    value = await session.scalar(
        select(func.count())
        .select_from(PaymentChange)
        .where(PaymentChange.order_id == uuid.UUID(order_id), PaymentChange.kind == kind)
    )
    await session.rollback()
    return int(value or 0)


def paid_mails(folder: Path) -> Counter[str]:
    """The e-mails in the mail folder whose subject says an order is paid, counted by order
    number; each one's text must say "paid" too."""
    found: Counter[str] = Counter()
    for path in sorted(folder.glob("*.eml")):
        message = BytesParser(policy=email.policy.default).parsebytes(path.read_bytes())
        subject = str(message["Subject"])
        if subject.startswith("Order ") and subject.endswith(" paid"):
            text = message.get_body(preferencelist=("plain",))
            assert text is not None, subject
            assert "is paid" in text.get_content(), subject
            found[subject.removeprefix("Order ").removesuffix(" paid")] += 1
    return found
