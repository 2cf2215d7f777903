"""``emporium worker`` processes against a real webhook receiver: a worker killed with
``kill -9`` in the middle of a delivery leaves it to another worker, which sends the same
message (same ``webhook-id``, valid signature); two workers on PostgreSQL never run the
same job, while both run jobs at the same time."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from emporium.core.config import Settings
from emporium.core.crypto.keys import load_key_file
from emporium.core.db.base import create_engine, create_sessionmaker
from emporium.jobs.models import DONE, Job
from emporium.jobs.outbox import emit_event
from emporium.webhooks import service as webhooks
from emporium.webhooks.delivery import WebhooksContext
from emporium.webhooks.models import WebhookDelivery
from emporium.webhooks.schemas import WebhookCreate
from receiver import Receiver, running_receiver

EMPORIUM = Path(sys.executable).parent / "emporium"


@contextmanager
def worker(settings: Settings, tmp_path: Path, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """An ``emporium worker`` process on the test database (short lease, fast polling)."""
    env = {
        **os.environ,
        "EMPORIUM_DATABASE_URL": settings.database_url,
        "EMPORIUM_KEY_FILE": str(settings.key_file),
        "EMPORIUM_JOBS_LEASE_SECONDS": "3",
        "EMPORIUM_JOBS_POLL_SECONDS": "0.1",
        "EMPORIUM_JOBS_CONCURRENCY": "1",
        "EMPORIUM_WEBHOOKS_ALLOW_PRIVATE": "true",
        "EMPORIUM_MAIL_DIR": str(tmp_path / "mail"),
        "EMPORIUM_LOG_LEVEL": "WARNING",
    }
    log = (tmp_path / f"{name}.log").open("wb")
    process = subprocess.Popen(
        [str(EMPORIUM), "worker", "--name", name], env=env, stdout=log, stderr=log
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


async def _endpoint_and_events(settings: Settings, receiver: Receiver, count: int) -> None:
    """Register the receiver for ``user.created`` and emit ``count`` such events."""
    engine = create_engine(settings)
    ring = load_key_file(settings.key_file)
    allowed = settings.model_copy(update={"webhooks_allow_private": True})
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            data = WebhookCreate(url=receiver.url, events=["user.created"])
            created = await webhooks.create_endpoint(session, WebhooksContext(ring), allowed, data)
            receiver.secret = created.secret
            for _ in range(count):
                emit_event(session, "user.created", {"user_id": str(uuid.uuid4())})
    finally:
        await engine.dispose()


async def _deliveries(settings: Settings) -> list[WebhookDelivery]:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            return list(await session.scalars(select(WebhookDelivery)))
    finally:
        await engine.dispose()


async def _wait_delivered(settings: Settings, count: int) -> list[WebhookDelivery]:
    for _ in range(300):
        deliveries = await _deliveries(settings)
        if len(deliveries) == count and all(d.status == "succeeded" for d in deliveries):
            return deliveries
        await asyncio.sleep(0.1)
    raise AssertionError(f"not delivered: {[d.status for d in await _deliveries(settings)]}")


@pytest.mark.slow
async def test_kill_9_mid_delivery_then_the_same_message_is_delivered_once(
    settings: Settings, tmp_path: Path
) -> None:
    """The receiver holds the first request; the worker sending it is killed with SIGKILL.
    After the lease, a second worker delivers the same message: the receiver saw one
    webhook id (twice on the wire, as Standard Webhooks allows), both signatures valid, and
    the job ends done after two attempts, with nothing sent later."""
    first_arrived, release = threading.Event(), threading.Event()

    def hold_first(_got: object) -> None:
        if not first_arrived.is_set():
            first_arrived.set()
            release.wait(30)

    with running_receiver() as receiver:
        receiver.hold = hold_first
        await _endpoint_and_events(settings, receiver, 1)
        with worker(settings, tmp_path, "doomed") as doomed:
            assert await asyncio.to_thread(first_arrived.wait, 60), "no delivery started"
            os.kill(doomed.pid, signal.SIGKILL)
            doomed.wait()
        release.set()
        with worker(settings, tmp_path, "survivor"):
            (delivery,) = await _wait_delivered(settings, 1)
            await asyncio.sleep(1)
        ids = receiver.ids()
    assert len(ids) == 2
    assert set(ids) == {delivery.msg_id}
    assert all(r.verified for r in receiver.requests)
    assert receiver.requests[1].body["type"] == "user.created"
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session:
        jobs = list(await session.scalars(select(Job).where(Job.kind == "webhooks.deliver")))
    await engine.dispose()
    assert [(j.status, j.attempts) for j in jobs] == [(DONE, 2)]


@pytest.mark.slow
async def test_two_workers_on_postgresql_never_run_the_same_job(
    settings: Settings, tmp_path: Path
) -> None:
    """Two workers (one job at a time each) share 20 deliveries through FOR UPDATE SKIP
    LOCKED: every message arrives exactly once, and at some moment both were sending."""
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("several workers share jobs through PostgreSQL; SQLite is single-node")
    with running_receiver() as receiver:
        receiver.delay = 0.3
        await _endpoint_and_events(settings, receiver, 20)
        with worker(settings, tmp_path, "one"), worker(settings, tmp_path, "two"):
            await _wait_delivered(settings, 20)
            await asyncio.sleep(1)
        requests = list(receiver.requests)
    ids = [r.webhook_id for r in requests]
    assert len(ids) == 20
    assert len(set(ids)) == 20
    assert all(r.verified for r in requests)
    overlapping = any(
        a.started < b.ended and b.started < a.ended
        for i, a in enumerate(requests)
        for b in requests[i + 1 :]
    )
    assert overlapping, "the two workers never ran jobs at the same time"
