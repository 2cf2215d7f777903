"""The runner: dispatch the outbox, run due jobs, enqueue schedules; embedded or as a worker.

One work loop keeps up to ``jobs_concurrency`` jobs running, each handler with a time
limit shorter than the lease, so no job ever runs on two runners at once. Each turn of the
loop is one transaction: it records the jobs finished since the last turn, dispatches a
batch of outbox events and claims as many due jobs as there are free slots
(``SKIP LOCKED``). A job finishing starts the next turn at once; with nothing to do the
loop waits up to ``jobs_poll_seconds`` (one query per runner per poll, not one per slot).
A failed attempt is retried after ``backoff * 2**(attempt-1)`` seconds (capped, with
jitter); after ``max_attempts`` the job is ``dead`` and waits for an admin
(``POST /jobs/{id}/retry``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from emporium.core.clock import SYSTEM_CLOCK, Clock, use, utcnow
from emporium.core.config import Settings
from emporium.core.db.outages import outage_kind, report_outage
from emporium.core.tracing import background, job_span, mark_failed, span_ids
from emporium.jobs import queue
from emporium.jobs.metrics import observe_run
from emporium.jobs.outbox import enqueue
from emporium.jobs.registry import JobRun, Registry, RetryLater, Write

if TYPE_CHECKING:
    from opentelemetry.trace import Span

log = structlog.get_logger("emporium.jobs")
SCHEDULE_CHECK = timedelta(seconds=30)
LEASE_SHARE = 0.8
"""A handler may use this share of the lease; the rest is margin for recording the result."""


def backoff(settings: Settings, attempt: int) -> timedelta:
    """The delay before retry number ``attempt`` (1, 2, ...): exponential, capped, ±20%."""
    base = min(
        settings.jobs_backoff_seconds * 2 ** (attempt - 1), settings.jobs_backoff_max_seconds
    )
    return timedelta(seconds=base * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not secrets


@dataclass(frozen=True)
class Outcome:
    """How a claimed job's attempt ended: ``error`` is None on success; ``delay`` is the
    retry delay the handler chose (None: the runner's backoff); ``seconds`` how long the
    handler ran."""

    job: queue.Claim
    error: str | None
    delay: timedelta | None
    seconds: float = 0.0
    trace_ids: dict[str, str] = field(default_factory=dict)
    writes: tuple[Write, ...] = ()
    """What the handler left for the transaction that records the outcome (``JobRun.
    record_with_result``)."""


def schedule_slot(now: datetime, every: timedelta) -> int:
    """The number of the ``every``-long period ``now`` falls in (same on every node)."""
    return int(now.astimezone(UTC).timestamp() // every.total_seconds())


class Runner:
    """Runs the jobs of ``registry`` from the database until stopped, with ``clock``
    behind ``core.clock.utcnow`` (:meth:`run` and :meth:`drain`; default the system's)."""

    def __init__(
        self,
        registry: Registry,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.registry = registry
        self.clock = clock or SYSTEM_CLOCK
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.name = name or socket.gethostname()
        self.lease = timedelta(seconds=settings.jobs_lease_seconds)
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._results: list[Outcome] = []
        self._running: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """Look for work now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the jobs in hand, then end :meth:`run` (graceful shutdown)."""
        self._stop.set()
        self._wake.set()

    async def _pause(self, event: asyncio.Event, seconds: float) -> None:
        """Wait for ``event`` (or a stop) for at most ``seconds``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()

    async def dispatch(self) -> int:
        """Dispatch one batch of outbox events into jobs; returns how many events."""
        async with self.sessionmaker() as session, session.begin():
            return await queue.dispatch_events(
                session, self.registry, max_attempts=self.settings.jobs_max_attempts
            )

    async def enqueue_schedules(self) -> None:
        """Enqueue each schedule's job for the current period, once across all runners."""
        now = utcnow()
        async with self.sessionmaker() as session, session.begin():
            for schedule in self.registry.schedules:
                slot = schedule_slot(now, schedule.every)
                key = f"schedule:{schedule.kind}:{slot}"
                await enqueue(session, schedule.kind, {"slot": slot}, dedupe_key=key)

    async def run_one(self) -> bool:
        """Claim and run one due job; False when there was none."""
        async with self.sessionmaker() as session, session.begin():
            job = await queue.claim(session, lease=self.lease)
        if job is None:
            return False
        await self._record([await self._attempt(job)])
        return True

    async def _attempt(self, job: queue.Claim) -> Outcome:
        """Run one claimed job inside its span (continuing the trace of the request that
        caused it, when tracing) and time it for ``emporium_job_duration_seconds``."""
        span: Span | None
        run = JobRun(
            str(job.id),
            job.kind,
            dict(job.payload),
            job.attempts,
            job.max_attempts,
            self.sessionmaker,
            self.settings,
        )
        with job_span(job.kind, job.id, job.attempts, job.trace_context) as span:
            started = time.perf_counter()
            error, delay = await self._execute(job, run)
            if error is not None:
                mark_failed(span, error)
            ids = span_ids()  # the job's log line, a turn later, still names its span
        seconds = time.perf_counter() - started
        return Outcome(job, error, delay, seconds, ids, tuple(run.writes))

    async def _record(self, outcomes: list[Outcome]) -> None:
        """Record finished jobs: the successes in one statement, each failure with its
        retry time, in one transaction; then log them."""
        if not outcomes:
            return
        async with self.sessionmaker() as session, session.begin():
            failed = await self._record_in(session, outcomes)
        self._log(outcomes, failed)

    async def _record_in(self, session: AsyncSession, outcomes: list[Outcome]) -> dict[str, str]:
        """:meth:`_record` in ``session``'s transaction (after the writes the handlers left
        for it); returns the failures' new status."""
        for o in outcomes:
            for write in o.writes:
                await write(session)
        await queue.finish_many(session, [o.job for o in outcomes if o.error is None])
        failed = {}
        for o in outcomes:
            if o.error is not None:
                delay = o.delay or backoff(self.settings, o.job.attempts)
                failed[str(o.job.id)] = await queue.fail(session, o.job, o.error, delay=delay)
        return failed

    def _log(self, outcomes: list[Outcome], failed: dict[str, str]) -> None:
        for o in outcomes:
            job_id = str(o.job.id)
            if o.error is None:
                observe_run(o.job.kind, o.seconds, None, None)
                log.info(
                    "job_done", job_id=job_id, kind=o.job.kind, runner=self.name, **o.trace_ids
                )
            else:
                status = failed[job_id]
                observe_run(o.job.kind, o.seconds, o.error, status)
                log.warning(
                    "job_failed",
                    job_id=job_id,
                    kind=o.job.kind,
                    status=status,
                    error=o.error,
                    **o.trace_ids,
                )

    async def _execute(self, job: queue.Claim, run: JobRun) -> tuple[str | None, timedelta | None]:
        """Run the handler; ``(error text, chosen delay)``, or ``(None, None)`` on success."""
        if job.attempts > job.max_attempts:
            return "attempts used up (the last runner stopped without a result)", None
        handler = self.registry.handlers.get(job.kind)
        if handler is None:
            return f"no handler for job kind {job.kind!r}", None
        try:
            async with asyncio.timeout(self.lease.total_seconds() * LEASE_SHARE):
                await handler(run)
        except RetryLater as exc:
            return str(exc), exc.delay
        except Exception as exc:  # a handler's failure is recorded and retried
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, None
        return None, None

    async def drain(self) -> int:
        """Dispatch and run until nothing is due; returns the jobs run (tests, CLI)."""
        with use(self.clock):
            return await self._drain()

    async def _drain(self) -> int:
        ran = 0
        while True:
            dispatched = await self.dispatch()
            if await self.run_one():
                ran += 1
            elif not dispatched:
                return ran

    async def turn(self, room: int) -> tuple[int, list[queue.Claim]]:
        """One transaction: record the jobs finished since the last turn, dispatch a batch
        of events and claim up to ``room`` due jobs. Returns (events dispatched, claims);
        on failure the finished jobs are kept for the next turn (without their handlers'
        writes unless the database was out: a failing write must not block the queue)."""
        outcomes, self._results = self._results, []
        try:
            async with self.sessionmaker() as session, session.begin():
                failed = await self._record_in(session, outcomes)
                dispatched = await queue.dispatch_events(
                    session, self.registry, max_attempts=self.settings.jobs_max_attempts
                )
                claims = await queue.claim_many(session, lease=self.lease, limit=room)
        except BaseException as exc:
            if isinstance(exc, Exception) and outage_kind(exc) is None:
                outcomes = _without_writes(outcomes, self.name)
            self._results[:0] = outcomes
            raise
        self._log(outcomes, failed)
        return dispatched, claims

    async def _run_claimed(self, job: queue.Claim) -> None:
        """Run one claimed job; its outcome waits for the next turn, which it starts."""
        outcome = await self._attempt(job)
        task = asyncio.current_task()
        if task is not None:
            self._running.discard(task)  # its slot is free for the next turn
        self._results.append(outcome)
        self._wake.set()

    def _start(self, job: queue.Claim) -> None:
        task = asyncio.create_task(self._run_claimed(job), name=f"emporium-job-{job.kind}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _work(self) -> None:
        """The work loop: turns while there is work, a poll-long pause when there is none."""
        try:
            await self._turns(self.settings.jobs_concurrency)
        except asyncio.CancelledError:
            for task in list(self._running):
                task.cancel()  # cancelled with the runner, as the handlers used to be
            raise
        await self._finish_running()

    async def _turns(self, slots: int) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            busy = False
            try:
                dispatched, claims = await self.turn(slots - len(self._running))
                for job in claims:
                    self._start(job)
                busy = bool(dispatched or claims)
            except Exception as exc:
                _log_failure("job_runner_error", exc, self.name)
                await self._pause(self._stop, self.settings.jobs_poll_seconds)
                continue  # an outage: try again after a poll, not at once
            if self._results:
                continue  # a job finished during the turn: record it now
            if busy and len(self._running) < slots:
                continue  # there may be more due work
            await self._pause(self._wake, self.settings.jobs_poll_seconds)

    async def _finish_running(self) -> None:
        """On stop: let the jobs in hand end, then record them."""
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        try:
            await self._record(self._results)
            self._results = []
        except Exception as exc:
            _log_failure("job_runner_error", exc, self.name)

    async def _schedules(self) -> None:
        while not self._stop.is_set():
            try:
                await self.enqueue_schedules()
            except Exception as exc:
                _log_failure("job_schedule_error", exc, self.name)
            await self._pause(self._stop, SCHEDULE_CHECK.total_seconds())

    async def run(self) -> None:
        """Run until :meth:`stop` (or cancelled): the work loop (up to ``jobs_concurrency``
        jobs at once) and the schedule loop."""
        log.info("job_runner_started", runner=self.name)
        # The loops' tasks copy the context: the clock, and (tracing) no spans for polling.
        with use(self.clock), background():
            await asyncio.gather(self._work(), self._schedules())


def _without_writes(outcomes: list[Outcome], runner: str) -> list[Outcome]:
    """``outcomes`` without the writes their handlers left (logged when there were any)."""
    dropped = [str(o.job.id) for o in outcomes if o.writes]
    if dropped:
        log.error("job_writes_dropped", job_ids=dropped, runner=runner)
    return [replace(o, writes=()) for o in outcomes]


def _log_failure(event: str, exc: Exception, runner: str) -> None:
    """A database outage is logged once per kind and minute (``core.db.outages``); anything
    else with its traceback."""
    kind = outage_kind(exc)
    if kind is not None:
        report_outage(kind, exc)
    else:
        log.error(event, runner=runner, exc_info=exc)
