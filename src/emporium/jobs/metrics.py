"""The jobs room's metrics: job runs (process counters) and the queue (a scrape-time probe).

The queue gauges are *global*: every node and worker that is scraped reads the same shared
table and reports the same values, so aggregate them with ``max`` (not ``sum``) across
instances. The probe's queries are cheap and bounded: each walks an index
(``ix_job_due``, ``ix_outbox_event_pending``) and counts at most :data:`COUNT_CAP` jobs per
status; on PostgreSQL they also run under a ``statement_timeout``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from prometheus_client import Counter, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from emporium.core.clock import utcnow
from emporium.core.metrics import NamedProbe
from emporium.jobs.models import DEAD, QUEUED, RUNNING, Job, OutboxEvent

COUNT_CAP = 100_000
"""Jobs counted per status at most (a scrape stays cheap however long the queue grows)."""

JOB_DURATION = Histogram(
    "emporium_job_duration_seconds",
    "Time a job's handler ran, per job kind (every attempt, failed or not)",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
JOB_FAILURES = Counter(
    "emporium_job_failures_total",
    "Failed job attempts, per job kind and what follows (retry: queued again; dead: no "
    "attempts left)",
    ["kind", "outcome"],
)


def observe_run(kind: str, seconds: float, error: str | None, status: str | None) -> None:
    """Record one attempt of a ``kind`` job: its handler's ``seconds``; on failure
    (``error``), the job's new ``status`` (``queued`` or ``dead``)."""
    JOB_DURATION.labels(kind).observe(seconds)
    if error is not None:
        JOB_FAILURES.labels(kind, "dead" if status == DEAD else "retry").inc()


async def _counts(session: AsyncSession, status: str) -> dict[str, int]:
    """Jobs per kind in ``status`` (at most :data:`COUNT_CAP` counted)."""
    capped = select(Job.kind).where(Job.status == status).limit(COUNT_CAP).subquery()
    rows = await session.execute(
        select(capped.c.kind, func.count()).select_from(capped).group_by(capped.c.kind)
    )
    return {kind: int(n) for kind, n in rows.all()}


def _age(now: datetime, then: datetime | None) -> float:
    """Seconds from ``then`` to ``now``; 0 for none (or a time ahead of ``now``)."""
    return 0.0 if then is None else max(0.0, (now - then).total_seconds())


async def _measure(session: AsyncSession, kinds: Iterable[str]) -> list[Metric]:
    """The queue's gauges, read in ``session``."""
    now = utcnow()
    jobs = GaugeMetricFamily(
        "emporium_jobs",
        "Jobs per status (queued, running, dead) and kind, in the shared queue (global: "
        "every instance reports the same value)",
        labels=["status", "kind"],
    )
    for status in (QUEUED, RUNNING, DEAD):
        found = await _counts(session, status)
        for kind in sorted(set(kinds) | set(found)):
            jobs.add_metric([status, kind], found.get(kind, 0))
    oldest_due = await session.scalar(
        select(func.min(Job.run_at)).where(Job.status == QUEUED, Job.run_at <= now)
    )
    oldest_event = await session.scalar(
        select(func.min(OutboxEvent.occurred_at)).where(OutboxEvent.dispatched_at.is_(None))
    )
    return [
        jobs,
        GaugeMetricFamily(
            "emporium_jobs_oldest_due_age_seconds",
            "How long the oldest due queued job has waited past its run time; 0 when none "
            "is due (global)",
            value=_age(now, oldest_due),
        ),
        GaugeMetricFamily(
            "emporium_outbox_lag_seconds",
            "Age of the oldest domain event not yet dispatched into jobs; 0 when none (global)",
            value=_age(now, oldest_event),
        ),
    ]


def queue_probe(
    sessionmaker: async_sessionmaker[AsyncSession], kinds: Iterable[str], *, timeout_seconds: float
) -> NamedProbe:
    """The ``jobs`` probe: ``emporium_jobs{status,kind}`` (every kind of ``kinds`` listed,
    0 when it has none), ``emporium_jobs_oldest_due_age_seconds`` and
    ``emporium_outbox_lag_seconds``. On PostgreSQL its statements are cancelled after
    ``timeout_seconds``."""
    known = tuple(kinds)
    limit_ms = str(max(1, int(timeout_seconds * 1000)))

    async def probe() -> list[Metric]:
        async with sessionmaker() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                await session.execute(
                    text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": limit_ms}
                )
            return await _measure(session, known)

    return NamedProbe("jobs", probe)
