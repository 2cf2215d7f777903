"""The queue's transactions: dispatch events into jobs, claim a job under a lease, finish it.

Claims are one ``UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`` on
PostgreSQL, so any number of workers take different jobs without waiting on each other. On
SQLite the same statement runs under the database's single writer lock (``FOR UPDATE`` is
not emitted there), which is just as exclusive. A claim sets ``locked_until``: a job whose
runner died (``kill -9``) is claimed again once that lease has expired, and ``lock_token``
makes sure that only the current holder can finish it.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.core.clock import utcnow
from emporium.jobs.models import DEAD, DONE, QUEUED, RUNNING, Job, OutboxEvent
from emporium.jobs.outbox import enqueue
from emporium.jobs.registry import Registry

DISPATCH_BATCH = 100
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class Claim:
    """A job this runner holds until ``lease`` runs out."""

    id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    token: str
    trace_context: dict[str, str] | None = None


async def dispatch_events(session: AsyncSession, registry: Registry, *, max_attempts: int) -> int:
    """Turn undispatched events into one job per subscribed kind, in one transaction.

    The dedupe key ``<event id>:<kind>`` makes dispatching the same event twice harmless;
    each job carries its event's trace context. Returns how many events were dispatched.
    """
    pick = (
        select(OutboxEvent.id)
        .where(OutboxEvent.dispatched_at.is_(None))
        .order_by(OutboxEvent.occurred_at)
        .limit(DISPATCH_BATCH)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(OutboxEvent)
        .where(OutboxEvent.id.in_(pick.scalar_subquery()))
        .values(dispatched_at=utcnow())
        .returning(
            OutboxEvent.id,
            OutboxEvent.type,
            OutboxEvent.data,
            OutboxEvent.occurred_at,
            OutboxEvent.trace_context,
        )
        .execution_options(synchronize_session=False)
    )
    events = (await session.execute(stmt)).all()
    for event_id, event_type, data, occurred_at, trace_context in events:
        payload = {
            "event_id": str(event_id),
            "type": event_type,
            "data": data,
            "occurred_at": occurred_at.isoformat(),
        }
        for kind in registry.kinds_for(event_type):
            key = f"{event_id}:{kind}"
            await enqueue(
                session,
                kind,
                payload,
                dedupe_key=key,
                max_attempts=max_attempts,
                trace_context=trace_context,
            )
    return len(events)


async def claim(session: AsyncSession, *, lease: timedelta) -> Claim | None:
    """Take the oldest due job (queued and due, or running with an expired lease)."""
    now = utcnow()
    due = or_(
        and_(Job.status == QUEUED, Job.run_at <= now),
        and_(Job.status == RUNNING, Job.locked_until < now),
    )
    pick = select(Job.id).where(due).order_by(Job.run_at).limit(1).with_for_update(skip_locked=True)
    token = secrets.token_hex(16)
    stmt = (
        update(Job)
        .where(Job.id == pick.scalar_subquery(), due)
        .values(
            status=RUNNING,
            attempts=Job.attempts + 1,
            locked_until=now + lease,
            lock_token=token,
            updated_at=now,
        )
        .returning(Job.id, Job.kind, Job.payload, Job.attempts, Job.max_attempts, Job.trace_context)
        .execution_options(synchronize_session=False)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        return None
    return Claim(row[0], row[1], row[2], row[3], row[4], token, row[5])


async def finish(session: AsyncSession, job: Claim) -> bool:
    """Mark the job done, if this runner still holds it."""
    now = utcnow()
    stmt = (
        update(Job)
        .where(Job.id == job.id, Job.lock_token == job.token)
        .values(status=DONE, finished_at=now, updated_at=now, locked_until=None, lock_token=None)
        .execution_options(synchronize_session=False)
    )
    return bool((await session.execute(stmt)).rowcount)  # type: ignore[attr-defined]


async def fail(session: AsyncSession, job: Claim, error: str, *, delay: timedelta) -> str:
    """Record a failed attempt: queued again after ``delay``, or ``dead`` when the job has
    used its attempts. Returns the new status."""
    now = utcnow()
    status = DEAD if job.attempts >= job.max_attempts else QUEUED
    stmt = (
        update(Job)
        .where(Job.id == job.id, Job.lock_token == job.token)
        .values(
            status=status,
            run_at=now + delay,
            last_error=error[:MAX_ERROR_CHARS],
            updated_at=now,
            finished_at=now if status == DEAD else None,
            locked_until=None,
            lock_token=None,
        )
        .execution_options(synchronize_session=False)
    )
    await session.execute(stmt)
    return status
