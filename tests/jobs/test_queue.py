"""The outbox and the job queue in one process: events exist only with their change,
failed jobs are retried and end dead, expired leases are taken over, schedules run once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conftest import SignIn
from emporium.core.clock import utcnow
from emporium.core.config import Settings
from emporium.core.db.base import create_engine, create_sessionmaker
from emporium.jobs import queue
from emporium.jobs.models import DEAD, DONE, Job, OutboxEvent
from emporium.jobs.outbox import emit_event, enqueue
from emporium.jobs.registry import JobRun, Registry, RetryLater
from emporium.jobs.runner import Runner
from factories import API, Client


@pytest.fixture
async def maker(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the test database."""
    engine = create_engine(settings)
    yield create_sessionmaker(engine)
    await engine.dispose()


def fast(settings: Settings) -> Settings:
    """Retries after milliseconds, so a test sees a job die without waiting."""
    return settings.model_copy(update={"jobs_backoff_seconds": 0.001, "jobs_max_attempts": 3})


async def test_an_event_exists_only_if_its_change_committed(
    maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """A rolled-back transaction leaves no event; a committed one leaves exactly one, which
    the runner turns into one job per subscriber, once, however often it dispatches."""
    async with maker() as session, session.begin():
        emit_event(session, "order.created", {"order_id": "rolled-back"})
        await session.rollback()
    async with maker() as session, session.begin():
        emit_event(session, "order.created", {"order_id": "kept"})
    async with maker() as session:
        types = list(await session.scalars(select(OutboxEvent.data)))
    assert types == [{"order_id": "kept"}]

    seen: list[dict[str, object]] = []

    async def handler(run: JobRun) -> None:
        seen.append(run.payload["data"])

    registry = Registry()
    registry.handle("test.record", handler)
    registry.subscribe("order.created", "test.record")
    runner = Runner(registry, maker, settings)
    assert await runner.drain() == 1
    assert await runner.drain() == 0
    assert seen == [{"order_id": "kept"}]


async def test_failing_job_is_retried_then_dead_and_an_admin_retries_it(
    maker: async_sessionmaker[AsyncSession],
    settings: Settings,
    client: Client,
    sign_in: SignIn,
    admin_headers: dict[str, str],
) -> None:
    """Each attempt is recorded; after max_attempts the job is dead, listed under
    ``GET /jobs?status=dead`` with its error, and ``POST /jobs/{id}/retry`` queues it again."""
    calls: list[int] = []

    async def broken(run: JobRun) -> None:
        calls.append(run.attempt)
        raise ConnectionError("mail server down")

    registry = Registry()
    registry.handle("test.broken", broken)
    runner = Runner(registry, maker, fast(settings))
    async with maker() as session, session.begin():
        await enqueue(session, "test.broken", {}, max_attempts=3)
    for _ in range(200):
        await runner.drain()
        if len(calls) == 3:
            break
    assert calls == [1, 2, 3]

    customer = await sign_in(roles=["customer"])
    assert (await client.get(f"{API}/jobs", headers=customer)).status_code == 403
    response = await client.get(f"{API}/jobs", params={"status": "dead"}, headers=admin_headers)
    assert response.status_code == 200, response.text
    (dead,) = response.json()["items"]
    assert dead["kind"] == "test.broken"
    assert dead["attempts"] == 3
    assert "mail server down" in dead["last_error"]

    retry = await client.post(f"{API}/jobs/{dead['id']}/retry", headers=admin_headers)
    assert retry.status_code == 202, retry.text
    assert retry.json()["status"] == "queued"
    again = await client.post(f"{API}/jobs/{dead['id']}/retry", headers=admin_headers)
    assert again.status_code == 409
    await runner.drain()
    assert calls[3] == 1  # a fresh set of attempts


async def test_an_expired_lease_is_taken_over_and_the_old_holder_cannot_finish(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    """A runner that stopped answering (its lease ran out) loses the job: another runner
    claims it, and the first one's late result is ignored."""
    async with maker() as session, session.begin():
        await enqueue(session, "test.slow", {"n": 1})
    async with maker() as session, session.begin():
        first = await queue.claim(session, lease=timedelta(seconds=-1))  # already expired
    async with maker() as session, session.begin():
        second = await queue.claim(session, lease=timedelta(minutes=5))
    async with maker() as session, session.begin():
        nobody = await queue.claim(session, lease=timedelta(minutes=5))
    assert first is not None
    assert second is not None
    assert first.id == second.id
    assert second.attempts == 2
    assert nobody is None  # held under a live lease: nobody else gets it
    async with maker() as session, session.begin():
        assert not await queue.finish(session, first)
        assert await queue.finish(session, second)
    async with maker() as session:
        assert await session.scalar(select(Job.status)) == DONE


async def test_a_schedule_runs_once_per_period_across_runners(
    maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """Two runners enqueueing the same schedule in the same period make one job."""
    registry = Registry()
    registry.every("test.tick", timedelta(hours=1))
    for _ in range(2):
        await Runner(registry, maker, settings, name="a").enqueue_schedules()
    async with maker() as session:
        count = await session.scalar(select(func.count()).where(Job.kind == "test.tick"))
    assert count == 1


async def test_a_job_that_outlives_its_attempts_after_a_crash_is_dead(
    maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """A job whose runner crashed on its last attempt is not run again: it goes dead."""
    ran: list[int] = []

    async def handler(run: JobRun) -> None:
        ran.append(run.attempt)

    registry = Registry()
    registry.handle("test.once", handler)
    async with maker() as session, session.begin():
        await enqueue(session, "test.once", {}, max_attempts=1)
    async with maker() as session, session.begin():
        await queue.claim(session, lease=timedelta(seconds=-1))  # the crashed attempt
    await Runner(registry, maker, settings).drain()
    async with maker() as session:
        assert await session.scalar(select(Job.status)) == DEAD
    assert ran == []


async def test_a_batch_claim_takes_exactly_its_limit_and_only_holders_finish(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    """Five due jobs, a claim of three: three are held (no more, even with SKIP LOCKED on
    PostgreSQL), the next claim gets the other two; finishing the first three in one go
    marks exactly them done, and a second finish with the same claims changes nothing."""
    async with maker() as session, session.begin():
        for n in range(5):
            await enqueue(session, "test.batch", {"n": n})
    async with maker() as session, session.begin():
        first = await queue.claim_many(session, lease=timedelta(minutes=5), limit=3)
    async with maker() as session, session.begin():
        rest = await queue.claim_many(session, lease=timedelta(minutes=5), limit=10)
    assert len(first) == 3
    assert len(rest) == 2
    assert {j.id for j in first}.isdisjoint({j.id for j in rest})
    async with maker() as session, session.begin():
        assert await queue.finish_many(session, first) == 3
    async with maker() as session, session.begin():
        assert await queue.finish_many(session, first) == 0  # no longer held
    async with maker() as session:
        done = await session.scalar(select(func.count()).where(Job.status == DONE))
    assert done == 3


async def test_a_subscription_condition_makes_no_job_for_events_it_refuses(
    maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """A kind subscribed with ``when`` gets a job only for the events whose data it
    accepts; the other kinds of the same event get theirs."""
    registry = Registry()
    ran: list[tuple[str, object]] = []

    def handler(kind: str) -> Callable[[JobRun], Awaitable[None]]:
        async def handle(run: JobRun) -> None:
            ran.append((kind, run.payload["data"]["customer_id"]))

        return handle

    registry.handle("test.every", handler("test.every"))
    registry.handle("test.guests", handler("test.guests"))
    registry.subscribe("order.created", "test.every")
    registry.subscribe("order.created", "test.guests", when=lambda d: not d["customer_id"])
    async with maker() as session, session.begin():
        emit_event(session, "order.created", {"customer_id": "c-1"})
        emit_event(session, "order.created", {"customer_id": None})
    assert await Runner(registry, maker, settings).drain() == 3
    assert sorted(ran, key=str) == sorted(
        [("test.every", "c-1"), ("test.every", None), ("test.guests", None)], key=str
    )


async def test_a_handlers_write_commits_with_its_attempts_result(
    maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """A write a handler leaves with ``record_with_result`` is committed with the attempt's
    result: after a retried failure (the job queued again) and after the success (done)."""
    later = utcnow() + timedelta(days=1)  # the witnesses are never due

    async def handle(run: JobRun) -> None:
        async def witness(session: AsyncSession) -> None:
            await enqueue(session, "test.witness", {"n": run.attempt}, run_at=later)

        run.record_with_result(witness)
        if run.attempt == 1:
            raise RetryLater("first attempt fails", delay=timedelta(microseconds=1))

    registry = Registry()
    registry.handle("test.writes", handle)
    async with maker() as session, session.begin():
        await enqueue(session, "test.writes", {})
    assert await Runner(registry, maker, settings).drain() == 2
    async with maker() as session:
        rows = (await session.execute(select(Job.kind, Job.status, Job.payload))).all()
    assert sorted((kind, status, payload.get("n")) for kind, status, payload in rows) == [
        ("test.witness", "queued", 1),
        ("test.witness", "queued", 2),
        ("test.writes", DONE, None),
    ]


async def test_a_write_that_keeps_failing_does_not_block_the_runner(
    maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """A handler's write that fails for another reason than an outage is dropped after a
    failed turn: the running runner still records the job done (once, not run again)."""
    ran: list[int] = []

    async def broken(session: AsyncSession) -> None:
        raise ValueError("a write with a bug")

    async def handle(run: JobRun) -> None:
        ran.append(run.attempt)
        run.record_with_result(broken)

    registry = Registry()
    registry.handle("test.broken_write", handle)
    async with maker() as session, session.begin():
        await enqueue(session, "test.broken_write", {})
    runner = Runner(registry, maker, settings.model_copy(update={"jobs_poll_seconds": 0.05}))
    task = asyncio.create_task(runner.run())
    status = None
    for _ in range(100):
        await asyncio.sleep(0.05)
        async with maker() as session:
            status = await session.scalar(select(Job.status))
        if status == DONE:
            break
    runner.stop()
    await task
    assert status == DONE
    assert ran == [1]


async def test_work_done_at_dispatch_runs_once_per_batch_and_fails_with_the_dispatch(
    maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """A kind done at dispatch (``Registry.at_dispatch``) gets no job: its work runs once
    for the whole batch, in the dispatching transaction, with every event's payload and
    trace context. When the work fails, nothing of the dispatch commits (the other kinds'
    jobs neither): the next turn dispatches the same events again, once."""
    batches: list[list[str]] = []
    ran: list[object] = []
    broken = True

    async def work(session: AsyncSession, payloads: list[dict[str, object]], _max: int) -> None:
        assert all("trace_context" in p for p in payloads)
        await enqueue(session, "test.after", {"n": len(payloads)}, dedupe_key="after")
        if broken:
            raise RuntimeError("the work failed")
        batches.append([str(p["data"]) for p in payloads])

    async def handle(run: JobRun) -> None:
        ran.append(run.payload.get("data", run.payload))

    registry = Registry()
    registry.handle("test.each", handle)
    registry.handle("test.after", handle)
    registry.subscribe("order.created", "test.each")
    registry.subscribe("order.created", "test.batched")
    registry.at_dispatch("test.batched", work)
    async with maker() as session, session.begin():
        for n in range(3):
            emit_event(session, "order.created", {"n": n})
    runner = Runner(registry, maker, settings)
    with pytest.raises(RuntimeError, match="the work failed"):
        await runner.drain()
    async with maker() as session:
        assert await session.scalar(select(func.count()).select_from(Job)) == 0
        waiting = select(func.count()).where(OutboxEvent.dispatched_at.is_(None))
        assert await session.scalar(waiting) == 3
    broken = False
    assert await runner.drain() == 4  # three test.each jobs and the one the work enqueued
    assert [sorted(batch) for batch in batches] == [[str({"n": n}) for n in range(3)]]
    async with maker() as session:
        kinds = list(await session.scalars(select(Job.kind).order_by(Job.kind)))
    assert kinds == ["test.after", "test.each", "test.each", "test.each"]
    assert {"n": 3} in ran
