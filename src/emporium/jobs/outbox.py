"""Recording events and jobs in the caller's transaction.

:func:`emit_event` is the one function commerce rooms call: the event row commits or rolls
back with their change, so an event exists if and only if its change committed (the
transactional outbox). :func:`enqueue` adds a job the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.core.clock import utcnow
from emporium.core.db.base import for_session, per_dialect, table_of
from emporium.core.tracing import current_context, publish_context
from emporium.jobs.models import QUEUED, Job, OutboxEvent

DEFAULT_MAX_ATTEMPTS = 10
_INSERT_EVENT = insert(table_of(OutboxEvent))
_JOBS = table_of(Job)
# Built once per database kind, the values bound at each execution (SQLAlchemy caches their
# SQL); on the table, not the mapped class, so no ORM bulk-insert step runs.
_INSERT_JOBS = per_dialect(lambda dialect: dialect.insert(_JOBS).on_conflict_do_nothing())
_INSERT_JOB = per_dialect(
    lambda dialect: dialect.insert(_JOBS).on_conflict_do_nothing().returning(_JOBS.c.id)
)


def emit_event(session: AsyncSession, type: str, data: Mapping[str, Any]) -> uuid.UUID:
    """Record the domain event ``type`` (``order.created``, ...) with JSON ``data`` in
    ``session``'s transaction and return its id. Data carries ids, not personal data
    (an e-mail handler looks the address up at send time)."""
    event_id, row = _event_row(type, data)
    session.add(OutboxEvent(**row))
    return event_id


async def record_event(session: AsyncSession, type: str, data: Mapping[str, Any]) -> uuid.UUID:
    """:func:`emit_event` written at once with a prebuilt Core insert: the same row, but no
    ORM object, so a transaction that adds none (checkout) skips the ORM flush at commit."""
    event_id, row = _event_row(type, data)
    await session.execute(_INSERT_EVENT, row)
    return event_id


def _event_row(type: str, data: Mapping[str, Any]) -> tuple[uuid.UUID, dict[str, Any]]:
    """A new event's id and ``outbox_event`` row (not yet dispatched, with the current trace
    context when tracing)."""
    event_id = uuid.uuid4()
    return event_id, {
        "id": event_id,
        "type": type,
        "data": dict(data),
        "occurred_at": utcnow(),
        "dispatched_at": None,
        "trace_context": publish_context(type, event_id),
    }


def job_row(
    kind: str,
    payload: Mapping[str, Any],
    *,
    key: str | None,
    max_attempts: int,
    now: datetime,
    trace_context: Mapping[str, str] | None,
    run_at: datetime | None = None,
) -> dict[str, Any]:
    """The ``job`` row of a new queued job (due at ``run_at``, default ``now``), deduplicated
    by ``key`` when given."""
    return {
        "id": uuid.uuid4(),
        "kind": kind,
        "payload": dict(payload),
        "status": QUEUED,
        "attempts": 0,
        "max_attempts": max_attempts,
        "run_at": run_at or now,
        "dedupe_key": key,
        "created_at": now,
        "updated_at": now,
        "trace_context": dict(trace_context) if trace_context else None,
    }


async def insert_jobs(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Write :func:`job_row` rows in ``session``'s transaction in one ``INSERT ... ON
    CONFLICT DO NOTHING`` (a dedupe key that had a job adds none)."""
    await session.execute(for_session(_INSERT_JOBS, session), rows)


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: Mapping[str, Any],
    *,
    dedupe_key: str | None = None,
    run_at: datetime | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    trace_context: Mapping[str, str] | None = None,
) -> bool:
    """Add a job of ``kind`` in ``session``'s transaction (flushed at once).

    With ``dedupe_key`` the job is added only if no job ever had that key (``INSERT ... ON
    CONFLICT DO NOTHING``); returns whether a row was added. ``trace_context``: the W3C
    Trace Context the job's span continues (default: the current span's, when tracing).
    """
    values = job_row(
        kind,
        payload,
        key=dedupe_key,
        max_attempts=max_attempts,
        now=utcnow(),
        trace_context=trace_context or current_context(),
        run_at=run_at,
    )
    result = await session.execute(for_session(_INSERT_JOB, session), values)
    return result.first() is not None
