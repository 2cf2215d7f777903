"""The payments room's jobs: the test provider's event deliveries, giving back the money of
cancelled orders (``order.cancelled``, and money captured after a cancellation), and the two
schedules of :mod:`.reconcile`: ``payments.expire_orders`` (every minute) and
``payments.reconcile`` (every ``EMPORIUM_PAYMENTS_RECONCILE_MINUTES``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlalchemy import select

from emporium.accounts.protect import Vault
from emporium.core.clock import utcnow
from emporium.core.money import format_money
from emporium.jobs.registry import JobRun, Registry
from emporium.mail.service import send_once
from emporium.mail.transport import Transport
from emporium.orders.models import Order
from emporium.payments.apply import REFUND_ORPHAN, RELEASE_GIFT_CARDS
from emporium.payments.events import apply_event, parse
from emporium.payments.providers import build_providers, test_secret
from emporium.payments.providers.test import EVENT_JOB, SIGNATURE_HEADER, sign
from emporium.payments.reconcile import expire_due, reconcile_due
from emporium.payments.refunds import give_everything_back, release_gift_cards
from emporium.payments.service import PaymentsContext

ORDER_CANCELLED = "payments.order_cancelled"
LATE_MONEY_TEMPLATE = "late_payment_refunded"
EXPIRE_ORDERS = "payments.expire_orders"
RECONCILE = "payments.reconcile"


def context_for(run: JobRun, vault: Vault) -> PaymentsContext:
    """The payments context of one job run: providers on the run's own sessions."""
    providers = build_providers(run.settings, vault.ring, run.sessionmaker)
    return PaymentsContext(vault, providers, run.settings.payments_capture)


def _deliver_test_event(vault: Vault) -> Callable[[JobRun], Awaitable[None]]:
    async def handle(run: JobRun) -> None:
        async with _providers(run, vault) as ctx:
            if "test" not in ctx.providers:
                return
            body = str(run.payload["body"]).encode()
            secret = test_secret(run.settings, vault.ring)
            signature = sign(body, secret, int(utcnow().timestamp()))
            event = parse(ctx, "test", body, {SIGNATURE_HEADER: signature}, None)
            async with run.sessionmaker() as session, session.begin():
                await apply_event(session, ctx, "test", event)

    return handle


def _give_back(vault: Vault, reason: str) -> Callable[[JobRun], Awaitable[None]]:
    async def handle(run: JobRun) -> None:
        data = run.payload.get("data", run.payload)
        order_id = uuid.UUID(str(data["order_id"]))
        async with _providers(run, vault) as ctx, run.sessionmaker() as session:
            await give_everything_back(session, ctx, order_id, reason)

    return handle


@asynccontextmanager
async def _providers(run: JobRun, vault: Vault) -> AsyncIterator[PaymentsContext]:
    """:func:`context_for`, its Stripe connections closed after the run: every job builds
    its providers on its own sessions, and nothing is left open between runs."""
    ctx = context_for(run, vault)
    try:
        yield ctx
    finally:
        for provider in ctx.providers.values():
            close = getattr(provider, "aclose", None)  # Stripe's HTTP client (not imported here)
            if close is not None:
                await close()


def _release_gift_cards(vault: Vault) -> Callable[[JobRun], Awaitable[None]]:
    async def handle(run: JobRun) -> None:
        order_id = uuid.UUID(str(run.payload["order_id"]))
        async with _providers(run, vault) as ctx, run.sessionmaker() as session:
            await release_gift_cards(session, ctx, order_id)

    return handle


def _expire(vault: Vault) -> Callable[[JobRun], Awaitable[None]]:
    async def handle(run: JobRun) -> None:
        async with _providers(run, vault) as ctx:
            await expire_due(run.sessionmaker, ctx)

    return handle


def _reconcile(vault: Vault) -> Callable[[JobRun], Awaitable[None]]:
    async def handle(run: JobRun) -> None:
        minutes = timedelta(minutes=run.settings.payments_reconcile_minutes)
        async with _providers(run, vault) as ctx:
            await reconcile_due(run.sessionmaker, ctx, minutes)

    return handle


def _give_back_late_money(
    vault: Vault, transport: Transport
) -> Callable[[JobRun], Awaitable[None]]:
    """``payments.refund_orphan``: give back what an order cancelled meanwhile received,
    then tell staff (``EMPORIUM_STAFF_EMAIL``; once per job, however often it is retried)."""
    give_back = _give_back(vault, "payment on a cancelled order")

    async def handle(run: JobRun) -> None:
        await give_back(run)
        to = run.settings.staff_email
        if not to:
            return
        order_id = uuid.UUID(str(run.payload["order_id"]))
        async with run.sessionmaker() as session:
            order = (
                await session.execute(
                    select(Order.number, Order.currency).where(Order.id == order_id)
                )
            ).one()
        amount = format_money(int(run.payload.get("amount", 0)), order.currency)
        await send_once(
            run.sessionmaker,
            transport,
            key=f"{run.id}:{LATE_MONEY_TEMPLATE}",
            template=LATE_MONEY_TEMPLATE,
            context={"first_name": None, "number": order.number, "amount": amount},
            to=to,
            sender=run.settings.mail_from,
        )

    return handle


def register(
    registry: Registry, vault: Vault, transport: Transport, reconcile_every: timedelta
) -> None:
    """The test provider's deliveries (``payments.test_event``), the refund of a cancelled
    order's payments (subscribed to ``order.cancelled``) and of money captured on one after
    its cancellation (``payments.refund_orphan``); order expiry every minute and
    reconciliation every ``reconcile_every`` (``EMPORIUM_PAYMENTS_RECONCILE_MINUTES``)."""
    registry.handle(EVENT_JOB, _deliver_test_event(vault))
    registry.handle(ORDER_CANCELLED, _give_back(vault, "order cancelled"))
    registry.subscribe("order.cancelled", ORDER_CANCELLED)
    registry.handle(REFUND_ORPHAN, _give_back_late_money(vault, transport))
    registry.handle(RELEASE_GIFT_CARDS, _release_gift_cards(vault))
    registry.handle(EXPIRE_ORDERS, _expire(vault))
    registry.every(EXPIRE_ORDERS, timedelta(minutes=1))
    registry.handle(RECONCILE, _reconcile(vault))
    registry.every(RECONCILE, reconcile_every)
