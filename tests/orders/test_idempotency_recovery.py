"""Idempotency keys recover from every failure ADR 0010 names: a database error at any
point (the key is freed at once), a request past its time limit, a claim whose process
died (taken over after the lease), a slow request superseded by its retry, an expired key.

Faults are real: a trigger that makes the database refuse a write (at the statement or at
COMMIT), a row lock held by the test, an ``emporium serve`` process killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import SignIn
from emporium.accounts.protect import build_context
from emporium.app import create_app
from emporium.core.clock import utcnow
from emporium.core.config import Settings
from emporium.core.crypto.keys import load_key_file
from emporium.core.db.base import create_engine, create_sessionmaker
from emporium.orders import checkout, idempotency
from emporium.orders.exceptions import IdempotencyKeyInFlight
from emporium.orders.models import IdempotencyKey, Order
from emporium.orders.schemas import OrderCreate
from factories import API, Client, assert_problem
from orders.support import ADDRESS, order, stock_of, stocked_variants
from servers import server_env, serving

Json = dict[str, Any]


async def _count(session: AsyncSession, model: Any) -> int:
    value = int(await session.scalar(select(func.count()).select_from(model)) or 0)
    await session.rollback()
    return value


async def _me(client: Client, headers: dict[str, str]) -> uuid.UUID:
    response = await client.get(f"{API}/users/me", headers=headers)
    assert response.status_code == 200, response.text
    return uuid.UUID(response.json()["id"])


def _payload(variant_id: str, quantity: int) -> Json:
    return {
        "items": [{"variant_id": variant_id, "quantity": quantity}],
        "shipping_address": ADDRESS,
    }


def _fingerprint(payload: Json) -> str:
    data = msgspec.convert(payload, OrderCreate)
    return idempotency.fingerprint("POST", "/orders", msgspec.json.encode(data))


@asynccontextmanager
async def _client_with(settings: Settings, **changes: Any) -> AsyncIterator[Client]:
    app = create_app(settings.model_copy(update=changes))
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


# --- a database error frees the key at once -------------------------------------------------


@asynccontextmanager
async def _failing_order_lines(session: AsyncSession, *, at_commit: bool) -> AsyncIterator[None]:
    """Make the database refuse every new order line: at the INSERT, or (PostgreSQL, a
    deferred constraint trigger) only at COMMIT. Removed on the way out."""
    if session.get_bind().dialect.name == "sqlite":
        assert not at_commit
        await session.execute(
            text(
                "CREATE TRIGGER inject_fault BEFORE INSERT ON order_line "
                "BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
            )
        )
        drops = ["DROP TRIGGER inject_fault"]
    else:
        await session.execute(
            text(
                "CREATE FUNCTION inject_fault() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'injected fault'; END $$"
            )
        )
        when = (
            "AFTER INSERT ON order_line DEFERRABLE INITIALLY DEFERRED"
            if at_commit
            else ("BEFORE INSERT ON order_line")
        )
        kind = "CONSTRAINT TRIGGER" if at_commit else "TRIGGER"
        await session.execute(
            text(f"CREATE {kind} inject_fault {when} FOR EACH ROW EXECUTE FUNCTION inject_fault()")
        )
        drops = ["DROP TRIGGER inject_fault ON order_line", "DROP FUNCTION inject_fault()"]
    await session.commit()
    try:
        yield
    finally:
        for statement in drops:
            await session.execute(text(statement))
        await session.commit()


@pytest.mark.parametrize("at_commit", [False, True], ids=["at-insert", "at-commit"])
async def test_a_database_error_frees_the_key_for_an_immediate_retry(
    client: Client,
    admin_headers: dict[str, str],
    sign_in: SignIn,
    session: AsyncSession,
    settings: Settings,
    at_commit: bool,
) -> None:
    """The database refuses the order (a trigger raises, at the INSERT or at COMMIT): the
    answer is a server error without a traceback, nothing is ordered, and the very next
    retry with the same key places the order (no 409 for the length of a lease)."""
    if at_commit and settings.is_sqlite:
        pytest.skip("SQLite has no deferred triggers: the at-COMMIT fault is PostgreSQL's")
    (variant,) = await stocked_variants(client, admin_headers, 10)
    buyer = await sign_in()
    async with _failing_order_lines(session, at_commit=at_commit):
        failed = await order(client, buyer, [(variant["id"], 2)], key="db-error")
        assert failed.status_code >= 500, failed.text
        assert_problem(failed, failed.status_code)
        assert "Traceback" not in failed.text
    assert await _count(session, Order) == 0
    assert await _count(session, IdempotencyKey) == 0
    started = time.monotonic()
    retry = await order(client, buyer, [(variant["id"], 2)], key="db-error")
    assert retry.status_code == 201, retry.text
    assert time.monotonic() - started < 2
    assert "idempotent-replayed" not in retry.headers
    assert await stock_of(client, admin_headers, variant) == 8
    assert await _count(session, Order) == 1


# --- the lease is the request's time limit ---------------------------------------------------


@pytest.mark.slow
async def test_a_checkout_past_its_time_limit_is_stopped_and_frees_its_key(
    client: Client,
    admin_headers: dict[str, str],
    sign_in: SignIn,
    session: AsyncSession,
    settings: Settings,
) -> None:
    """PostgreSQL: the test holds the variant's row lock, so the checkout waits. With a
    2 s lease it is stopped at 80% of it: 503 ``service_unavailable`` with Retry-After,
    nothing ordered, key freed; once the lock is gone the same key places the order."""
    if settings.is_sqlite:
        pytest.skip("a row lock that stops one statement is PostgreSQL's (SQLite locks all)")
    (variant,) = await stocked_variants(client, admin_headers, 10)
    buyer = await sign_in()
    async with _client_with(settings, idempotency_lease_seconds=2) as limited:
        await session.execute(
            text("SELECT stock FROM variant WHERE id = :id FOR UPDATE"),
            {"id": uuid.UUID(variant["id"])},
        )
        started = time.monotonic()
        stopped = await order(limited, buyer, [(variant["id"], 1)], key="slow")
        waited = time.monotonic() - started
        await session.rollback()
        assert_problem(stopped, 503, "service_unavailable")
        assert stopped.headers["retry-after"] == "1"
        assert 1.5 <= waited < 3, waited
        assert await _count(session, IdempotencyKey) == 0
        retry = await order(limited, buyer, [(variant["id"], 1)], key="slow")
        assert retry.status_code == 201, retry.text
    assert await stock_of(client, admin_headers, variant) == 9
    assert await _count(session, Order) == 1


# --- a dead claim, a superseded request, an expired key --------------------------------------


async def test_a_claim_whose_process_died_is_taken_over_after_its_lease(
    client: Client,
    admin_headers: dict[str, str],
    sign_in: SignIn,
    settings: Settings,
    session: AsyncSession,
) -> None:
    """A request claimed the key and its process vanished (the claim is never completed nor
    released): retries get 409 ``idempotency_key_in_flight`` while the lease runs, then the
    next retry takes the key over and places the one order."""
    (variant,) = await stocked_variants(client, admin_headers, 10)
    buyer = await sign_in()
    payload = _payload(variant["id"], 1)
    engine = create_engine(settings)
    try:
        dead = await idempotency.begin(
            create_sessionmaker(engine),
            scope=idempotency.scope_of(await _me(client, buyer)),
            key="orphan",
            fingerprint=_fingerprint(payload),
            ttl=timedelta(hours=24),
            lease=timedelta(seconds=1),
        )
    finally:
        await engine.dispose()
    assert isinstance(dead, idempotency.Claim)
    headers = buyer | {"Idempotency-Key": "orphan"}
    blocked = await client.post(f"{API}/orders", json=payload, headers=headers)
    assert_problem(blocked, 409, "idempotency_key_in_flight")
    await asyncio.sleep(1.1)
    taken = await client.post(f"{API}/orders", json=payload, headers=headers)
    assert taken.status_code == 201, taken.text
    replay = await client.post(f"{API}/orders", json=payload, headers=headers)
    assert replay.json()["id"] == taken.json()["id"]
    assert replay.headers["idempotent-replayed"] == "true"
    assert await _count(session, Order) == 1


async def test_a_slow_request_superseded_by_its_retry_makes_no_order(
    client: Client,
    admin_headers: dict[str, str],
    sign_in: SignIn,
    settings: Settings,
    session: AsyncSession,
) -> None:
    """The first request outlives its lease; the retry takes the key over and places the
    order. When the slow one finally writes its order, storing its answer fails with 409
    and its transaction rolls back: one key, one order, stock taken once."""
    (variant,) = await stocked_variants(client, admin_headers, 10)
    buyer = await sign_in()
    customer_id = await _me(client, buyer)
    payload = _payload(variant["id"], 3)
    ctx = build_context(settings, load_key_file(settings.key_file))
    engine = create_engine(settings)
    try:
        sessionmaker = create_sessionmaker(engine)
        slow = await idempotency.begin(
            sessionmaker,
            scope=idempotency.scope_of(customer_id),
            key="slow",
            fingerprint=_fingerprint(payload),
            ttl=timedelta(hours=24),
            lease=timedelta(seconds=1),
        )
        assert isinstance(slow, idempotency.Claim)
        await asyncio.sleep(1.1)
        retry = await order(client, buyer, [(variant["id"], 3)], key="slow")
        assert retry.status_code == 201, retry.text
        async with sessionmaker() as late:
            placed = await checkout.place_order(
                late, ctx, customer_id=customer_id, data=msgspec.convert(payload, OrderCreate)
            )
            with pytest.raises(IdempotencyKeyInFlight):
                await idempotency.complete(late, slow, 201, placed.id)
            await late.rollback()
    finally:
        await engine.dispose()
    assert await _count(session, Order) == 1
    assert await stock_of(client, admin_headers, variant) == 7
    again = await order(client, buyer, [(variant["id"], 3)], key="slow")
    assert again.json()["id"] == retry.json()["id"]


async def _expire_keys(session: AsyncSession) -> None:
    """Let every stored key's time pass (what 24 h of waiting would do)."""
    await session.execute(update(IdempotencyKey).values(expires_at=utcnow() - timedelta(seconds=1)))
    await session.commit()


async def test_an_expired_key_is_a_new_key(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn, session: AsyncSession
) -> None:
    """Past its expiry (24 h by default) a key is forgotten: the same key places a new
    order, even with another body, instead of replaying or answering 422."""
    (variant,) = await stocked_variants(client, admin_headers, 10)
    buyer = await sign_in()
    first = await order(client, buyer, [(variant["id"], 1)], key="old")
    assert first.status_code == 201, first.text
    await _expire_keys(session)
    for quantity in (1, 2):
        again = await order(client, buyer, [(variant["id"], quantity)], key="old")
        assert again.status_code == 201, again.text
        assert again.json()["id"] != first.json()["id"]
        assert "idempotent-replayed" not in again.headers
        await _expire_keys(session)
    assert await _count(session, Order) == 3
    assert await stock_of(client, admin_headers, variant) == 6


# --- kill -9 of a real server mid-request ----------------------------------------------------


async def _wait_for_claim(session: AsyncSession) -> None:
    for _ in range(200):
        if await _count(session, IdempotencyKey):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the request never claimed its key")


@pytest.mark.slow
async def test_a_server_killed_mid_checkout_costs_its_retry_only_the_lease(
    client: Client,
    admin_headers: dict[str, str],
    sign_in: SignIn,
    settings: Settings,
    key_file: Path,
    tmp_path: Path,
    session: AsyncSession,
) -> None:
    """PostgreSQL: a real ``emporium serve`` (lease 6 s) takes a checkout that waits on a
    row lock the test holds; the server is killed with SIGKILL mid-request and restarted.
    The retry with the same key answers 409 while the dead claim's lease runs, then places
    the one order: within the lease (not 60 s) of the claim, stock taken once."""
    if settings.is_sqlite:
        pytest.skip("holding a checkout mid-transaction needs a row lock (PostgreSQL)")
    lease = 6.0
    (variant,) = await stocked_variants(client, admin_headers, 10)
    buyer = await sign_in()
    env = server_env(
        settings.database_url,
        key_file,
        route_limits=False,
        jobs_embedded="false",
        database_pool_size="3",
        idempotency_lease_seconds=str(lease),
    )
    body = _payload(variant["id"], 2)
    headers = buyer | {"Idempotency-Key": "killed"}
    with serving(env, tmp_path) as (base, proc):
        await session.execute(
            text("SELECT stock FROM variant WHERE id = :id FOR UPDATE"),
            {"id": uuid.UUID(variant["id"])},
        )
        outcome: list[object] = []

        def send() -> None:
            try:
                outcome.append(
                    httpx.post(f"{base}{API}/orders", json=body, headers=headers, timeout=30)
                )
            except httpx.TransportError as exc:
                outcome.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        sent = time.monotonic()
        await _wait_for_claim_in_other_session(settings)
        os.kill(proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        proc.wait(timeout=10)
        sender.join(timeout=10)
        await session.rollback()
    assert isinstance(outcome[0], httpx.TransportError), outcome
    with serving(env, tmp_path) as (base, _proc):
        ready, answers = time.monotonic(), []
        async with httpx.AsyncClient(timeout=30) as http:
            while time.monotonic() - killed < lease + 10:
                answer = await http.post(f"{base}{API}/orders", json=body, headers=headers)
                answers.append(answer.status_code)
                if answer.status_code == 201:
                    break
                assert_problem(answer, 409, "idempotency_key_in_flight")
                await asyncio.sleep(0.2)
        recovered = time.monotonic()
    assert answers[-1] == 201, answers
    if ready - sent < lease - 1:  # back before the lease ran out: the dead claim held it
        assert answers[0] == 409, answers
    # the retry waits for the dead claim's lease, or for the restart if that took longer
    assert recovered - sent < max(lease, ready - sent) + 1.5, (recovered - sent, answers)
    assert await stock_of(client, admin_headers, variant) == 8
    assert await _count(session, Order) == 1


async def _wait_for_claim_in_other_session(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as probe:
            await _wait_for_claim(probe)
    finally:
        await engine.dispose()
