"""Admin verbs of the jobs room, and its own housekeeping."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import select

from emporium.audit.chain import record_audit
from emporium.core.clock import utcnow
from emporium.core.db.pagination import by_created_at, created_at_cursor
from emporium.core.errors import Conflict, NotFound
from emporium.jobs.models import DEAD, DONE, QUEUED, Job, OutboxEvent
from emporium.jobs.registry import JobRun, Registry
from emporium.jobs.schemas import JobPage, JobRead

CLEANUP_KIND = "jobs.cleanup"


def job_read(job: Job) -> JobRead:
    """The API shape of a job."""
    return JobRead(
        id=job.id,
        kind=job.kind,
        status=job.status,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        run_at=job.run_at,
        last_error=job.last_error,
        payload=job.payload,
        created_at=job.created_at,
        updated_at=job.updated_at,
        finished_at=job.finished_at,
    )


async def list_jobs(
    session: AsyncSession, *, status: str | None, limit: int, cursor: str | None
) -> JobPage:
    """Jobs (optionally of one status), oldest first, as a keyset page."""
    stmt = select(Job)
    if status:
        stmt = stmt.where(Job.status == status)
    stmt = by_created_at(stmt, "created_at", Job.created_at, Job.id, cursor)
    jobs = list(await session.scalars(stmt.limit(limit + 1)))
    items = [job_read(j) for j in jobs[:limit]]
    return JobPage(
        items=items, next_cursor=created_at_cursor(items, len(jobs) > limit, "created_at")
    )


async def retry_job(session: AsyncSession, job_id: uuid.UUID) -> JobRead:
    """Queue a dead job again with a fresh set of attempts. Raises NotFound (404),
    Conflict (409) when the job is not dead."""
    job = await session.get(Job, job_id)
    if job is None:
        raise NotFound("No such job.")
    if job.status != DEAD:
        raise Conflict("Only dead jobs can be retried.")
    now = utcnow()
    job.status, job.attempts, job.run_at, job.updated_at = QUEUED, 0, now, now
    job.finished_at = None
    await session.flush()
    await record_audit(
        session,
        action="job.retried",
        object_type="job",
        object_id=job.id,
        details={"kind": job.kind},
    )
    return job_read(job)


async def cleanup(run: JobRun) -> None:
    """Delete finished jobs and dispatched events older than ``jobs_retention_days``
    (dead jobs stay until an admin retries them or they age out too)."""
    before = utcnow() - timedelta(days=run.settings.jobs_retention_days)
    async with run.sessionmaker() as session, session.begin():
        await session.execute(
            delete(Job).where(Job.status.in_([DONE, DEAD]), Job.finished_at < before)
        )
        await session.execute(delete(OutboxEvent).where(OutboxEvent.dispatched_at < before))


def register(registry: Registry) -> None:
    """Register the jobs room's own housekeeping (hourly)."""
    registry.handle(CLEANUP_KIND, cleanup)
    registry.every(CLEANUP_KIND, timedelta(hours=1))
