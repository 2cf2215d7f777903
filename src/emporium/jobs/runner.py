"""The runner: dispatch the outbox, run due jobs, enqueue schedules; embedded or as a worker.

Each of ``jobs_concurrency`` loops claims one job at a time and runs its handler with a
time limit shorter than the lease, so no job ever runs on two runners at once. A failed
attempt is retried after ``backoff * 2**(attempt-1)`` seconds (capped, with jitter); after
``max_attempts`` the job is ``dead`` and waits for an admin (``POST /jobs/{id}/retry``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from emporium.core.clock import SYSTEM_CLOCK, Clock, use, utcnow
from emporium.core.config import Settings
from emporium.core.db.outages import outage_kind, report_outage
from emporium.core.tracing import background, job_span, mark_failed
from emporium.jobs import queue
from emporium.jobs.metrics import observe_run
from emporium.jobs.outbox import enqueue
from emporium.jobs.registry import JobRun, Registry, RetryLater

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
        with job_span(job.kind, job.id, job.attempts, job.trace_context) as span:
            await self._settle(job, span)
        return True

    async def _settle(self, job: queue.Claim, span: Span | None) -> None:
        """Run the claimed job and record its result (inside its span, when tracing)."""
        started = time.perf_counter()
        error, delay = await self._execute(job)
        seconds = time.perf_counter() - started
        async with self.sessionmaker() as session, session.begin():
            if error is None:
                await queue.finish(session, job)
                observe_run(job.kind, seconds, None, None)
                log.info("job_done", job_id=str(job.id), kind=job.kind, runner=self.name)
                return
            delay = delay or backoff(self.settings, job.attempts)
            status = await queue.fail(session, job, error, delay=delay)
        mark_failed(span, error)
        observe_run(job.kind, seconds, error, status)
        log.warning("job_failed", job_id=str(job.id), kind=job.kind, status=status, error=error)

    async def _execute(self, job: queue.Claim) -> tuple[str | None, timedelta | None]:
        """Run the handler; ``(error text, chosen delay)``, or ``(None, None)`` on success."""
        if job.attempts > job.max_attempts:
            return "attempts used up (the last runner stopped without a result)", None
        handler = self.registry.handlers.get(job.kind)
        if handler is None:
            return f"no handler for job kind {job.kind!r}", None
        run = JobRun(
            str(job.id),
            job.kind,
            dict(job.payload),
            job.attempts,
            job.max_attempts,
            self.sessionmaker,
            self.settings,
        )
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

    async def _loop(self, index: int) -> None:
        while not self._stop.is_set():
            try:
                if index == 0:
                    await self.dispatch()
                if await self.run_one():
                    continue
            except Exception as exc:
                _log_failure("job_runner_error", exc, self.name)
            await self._pause(self._wake, self.settings.jobs_poll_seconds)
            if not self._stop.is_set():
                self._wake.clear()

    async def _schedules(self) -> None:
        while not self._stop.is_set():
            try:
                await self.enqueue_schedules()
            except Exception as exc:
                _log_failure("job_schedule_error", exc, self.name)
            await self._pause(self._stop, SCHEDULE_CHECK.total_seconds())

    async def run(self) -> None:
        """Run until :meth:`stop` (or cancelled): ``jobs_concurrency`` job loops and the
        schedule loop."""
        log.info("job_runner_started", runner=self.name)
        # The loops' tasks copy the context: the clock, and (tracing) no spans for polling.
        with use(self.clock), background():
            loops = [self._loop(i) for i in range(self.settings.jobs_concurrency)]
            await asyncio.gather(*loops, self._schedules())


def _log_failure(event: str, exc: Exception, runner: str) -> None:
    """A database outage is logged once per kind and minute (``core.db.outages``); anything
    else with its traceback."""
    kind = outage_kind(exc)
    if kind is not None:
        report_outage(kind, exc)
    else:
        log.error(event, runner=runner, exc_info=exc)
