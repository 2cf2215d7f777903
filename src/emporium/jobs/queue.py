"""The queue's transactions: dispatch events into jobs, claim a job under a lease, finish it.

Claims are one ``UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED) RETURNING``
on PostgreSQL (a batch of up to ``n`` jobs per statement), so any number of workers take
different jobs without waiting on each other. Dispatching a batch of events writes all their
jobs with one multi-row ``INSERT``, and finished jobs are recorded together in one ``UPDATE``. On
SQLite the same statement runs under the database's single writer lock (``FOR UPDATE`` is
not emitted there), which is just as exclusive. A claim sets ``locked_until``: a job whose
runner died (``kill -9``) is claimed again once that lease has expired, and ``lock_token``
makes sure that only the current holder can finish it.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Integer, Update, and_, bindparam, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.sqltypes import TupleType

from emporium.core.clock import utcnow
from emporium.core.db.base import for_session, per_dialect, table_of
from emporium.jobs.models import DEAD, DONE, QUEUED, RUNNING, Job, OutboxEvent
from emporium.jobs.outbox import insert_jobs, job_row
from emporium.jobs.registry import Registry

DISPATCH_BATCH = 100
_JOBS, _EVENTS = table_of(Job), table_of(OutboxEvent)
_JOB, _EVENT = _JOBS.c, _EVENTS.c
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


def _statements(dialect: Any) -> tuple[Update, Update]:
    """The queue's statements for one kind of database, built once: the dispatch of a batch
    of events and the claim of up to ``:limit`` jobs. They
    name the tables (not the mapped classes), so a session runs them without the ORM's
    bulk-DML steps; the values are bound at each execution."""
    postgres = dialect is postgresql
    pick_events = (
        select(_EVENT.id)
        .where(_EVENT.dispatched_at.is_(None))
        .order_by(_EVENT.occurred_at)
        .limit(DISPATCH_BATCH)
        .with_for_update(skip_locked=True)
    )
    dispatch = (
        update(_EVENTS)
        .where(_EVENT.id.in_(pick_events.scalar_subquery()))
        .values(dispatched_at=_NOW)
        .returning(_EVENT.id, _EVENT.type, _EVENT.data, _EVENT.occurred_at, _EVENT.trace_context)
    )
    due = or_(
        and_(_JOB.status == QUEUED, _JOB.run_at <= _NOW),
        and_(_JOB.status == RUNNING, _JOB.locked_until < _NOW),
    )
    pick = (
        select(_JOB.id)
        .where(due)
        .order_by(_JOB.run_at)
        .limit(bindparam("limit", type_=Integer))
        .with_for_update(skip_locked=True)
    )
    # PostgreSQL: picked once, in a CTE: an ``IN (subquery ... SKIP LOCKED)`` may be run
    # again per row by the planner and take more than ``limit`` jobs. SQLite: no row locks.
    chosen = _JOB.id == pick.cte("picked").c.id if postgres else _JOB.id.in_(pick.scalar_subquery())
    claim = (
        update(_JOBS)
        .where(chosen, due)
        .values(
            status=RUNNING,
            attempts=_JOB.attempts + 1,
            locked_until=bindparam("lease_end", type_=_JOB.locked_until.type),
            lock_token=bindparam("token", type_=_JOB.lock_token.type),
            updated_at=_NOW,
        )
        .returning(
            _JOB.id,
            _JOB.kind,
            _JOB.payload,
            _JOB.attempts,
            _JOB.max_attempts,
            _JOB.run_at,
            _JOB.trace_context,
        )
    )
    return dispatch, claim


_NOW = bindparam("now", type_=_JOB.run_at.type)
_STATEMENTS = per_dialect(_statements)
_FINISH = (
    update(_JOBS)
    .where(
        tuple_(_JOB.id, _JOB.lock_token).in_(
            bindparam("held", expanding=True, type_=TupleType(_JOB.id.type, _JOB.lock_token.type))
        )
    )
    .values(status=DONE, finished_at=_NOW, updated_at=_NOW, locked_until=None, lock_token=None)
)


async def dispatch_events(session: AsyncSession, registry: Registry, *, max_attempts: int) -> int:
    """Turn undispatched events into one job per subscribed kind, in one transaction.

    The dedupe key ``<event id>:<kind>`` makes dispatching the same event twice harmless;
    each job carries its event's trace context. A kind done at dispatch
    (``Registry.at_dispatch``) gets no job: its work runs once for the batch, given the
    events' payloads with their ``trace_context``. Returns how many events were dispatched.
    """
    dispatch, _claim = for_session(_STATEMENTS, session)
    events = (await session.execute(dispatch, {"now": utcnow()})).all()
    now = utcnow()
    rows: list[dict[str, Any]] = []
    at_dispatch: dict[str, list[dict[str, Any]]] = {}
    for event_id, event_type, data, occurred_at, trace_context in events:
        payload = {
            "event_id": str(event_id),
            "type": event_type,
            "data": data,
            "occurred_at": occurred_at.isoformat(),
        }
        for kind in registry.jobs_for(event_type, data):
            if kind in registry.dispatch_work:
                at_dispatch.setdefault(kind, []).append(payload | {"trace_context": trace_context})
                continue
            key = f"{event_id}:{kind}"
            rows.append(
                job_row(
                    kind,
                    payload,
                    key=key,
                    max_attempts=max_attempts,
                    now=now,
                    trace_context=trace_context,
                )
            )
    if rows:  # every job of the batch in one statement; a dispatched-twice event adds none
        await insert_jobs(session, rows)
    for kind, payloads in at_dispatch.items():
        await registry.dispatch_work[kind](session, payloads, max_attempts)
    return len(events)


async def claim(session: AsyncSession, *, lease: timedelta) -> Claim | None:
    """Take the oldest due job (queued and due, or running with an expired lease)."""
    claims = await claim_many(session, lease=lease, limit=1)
    return claims[0] if claims else None


async def claim_many(session: AsyncSession, *, lease: timedelta, limit: int) -> list[Claim]:
    """Take up to ``limit`` due jobs, oldest first, in one statement; each gets its own
    lock token (only its holder can finish it)."""
    if limit < 1:
        return []
    now = utcnow()
    token = secrets.token_hex(16)
    params = {"now": now, "limit": limit, "lease_end": now + lease, "token": token}
    rows = sorted(
        (await session.execute(for_session(_STATEMENTS, session)[1], params)).all(),
        key=lambda r: r[5],
    )
    return [Claim(r[0], r[1], r[2], r[3], r[4], token, r[6]) for r in rows]


async def finish(session: AsyncSession, job: Claim) -> bool:
    """Mark the job done, if this runner still holds it."""
    return await finish_many(session, [job]) == 1


async def finish_many(session: AsyncSession, jobs: Sequence[Claim]) -> int:
    """Mark ``jobs`` done in one statement, those this runner still holds; returns how many."""
    if not jobs:
        return 0
    held = [(job.id, job.token) for job in jobs]
    result = await session.execute(_FINISH, {"now": utcnow(), "held": held})
    return int(result.rowcount)  # type: ignore[attr-defined]


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
