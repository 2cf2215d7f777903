"""Tables of the jobs room: the event outbox and the job queue."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from emporium.core.clock import utcnow
from emporium.core.db.base import Base, UTCDateTime, new_id

QUEUED, RUNNING, DONE, DEAD = "queued", "running", "done", "dead"
JOB_STATUSES = (QUEUED, RUNNING, DONE, DEAD)


class OutboxEvent(Base):
    """A domain event, written in the transaction of the change that caused it."""

    __tablename__ = "outbox_event"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    trace_context: Mapped[dict[str, str] | None] = mapped_column(JSON)
    """W3C Trace Context of the span that recorded it (``core.tracing``; null untraced)."""

    __table_args__ = (Index("ix_outbox_event_pending", "dispatched_at", "occurred_at"),)


class Job(Base):
    """One unit of work: claimed by one runner at a time under a lease, retried with
    exponential backoff, ``dead`` after ``max_attempts``."""

    __tablename__ = "job"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default=QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lock_token: Mapped[str | None] = mapped_column(String(64))
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    trace_context: Mapped[dict[str, str] | None] = mapped_column(JSON)
    """W3C Trace Context its span continues (``core.tracing``; null untraced)."""

    __table_args__ = (
        Index("ix_job_due", "status", "run_at"),
        Index("ix_job_status_created", "status", "created_at", "id"),
    )
