"""Backup verbs: create (snapshot, encrypt, mirror), copy again, list and prune.

A copy that fails is recorded for its destination (``backup_copy``), counted
(``emporium_backup_failures_total``), logged, retried by the job runner (a ``backups.copy``
job) and reported to admins (a ``backups.alert`` job); the other destinations' copies go on
and count as done. Encrypted parts wait in ``EMPORIUM_BACKUP_SPOOL_DIR`` until every
destination has them; a retry on another node fetches them from a destination that has.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from emporium.audit.chain import record_audit
from emporium.backups import archive, metrics
from emporium.backups.destinations import open_destination
from emporium.backups.exceptions import BackupError, DestinationError
from emporium.backups.models import DONE, FAILED, PENDING, PRUNED, Backup, BackupCopy
from emporium.backups.retention import to_keep
from emporium.backups.schemas import BackupCopyRead, BackupList, BackupQueued, BackupRead
from emporium.backups.snapshot import take_snapshot
from emporium.core.clock import utcnow
from emporium.core.config import Settings
from emporium.jobs.models import Job
from emporium.jobs.outbox import enqueue

log = structlog.get_logger("emporium.backups")
CREATE_JOB = "backups.create"
PRUNE_JOB = "backups.prune"
COPY_JOB = "backups.copy"
ALERT_JOB = "backups.alert"
SessionMaker = async_sessionmaker[AsyncSession]


@dataclass
class Outcome:
    """A backup made: its id, manifest, and the error of each destination that failed."""

    backup_id: str
    manifest: dict[str, Any]
    checksum: str
    failures: dict[str, str] = field(default_factory=dict)
    copied: list[str] = field(default_factory=list)


def spool_of(settings: Settings, backup_id: str) -> Path:
    """The local folder of a backup's encrypted parts."""
    return settings.backup_spool_dir / backup_id


async def make_archive(
    settings: Settings, backup_id: str, now: datetime
) -> tuple[Path, dict[str, Any], str]:
    """Snapshot the database and the key file into the spool, encrypted to the recipients;
    returns (folder, manifest, manifest SHA-256). Raises BackupError (no recipients, no key
    file, a failed snapshot)."""
    if not settings.backup_recipients:
        raise BackupError("EMPORIUM_BACKUP_RECIPIENTS is empty: no one could open a backup")
    recipients = archive.recipients_of(settings.backup_recipients)
    folder = spool_of(settings, backup_id)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(prefix="emporium-backup-") as tmp:
        raw = Path(tmp) / "database"
        snap = await take_snapshot(settings, raw)
        keys = Path(tmp) / "keys.json"
        try:
            shutil.copyfile(settings.key_file, keys)
        except OSError as exc:
            raise BackupError(f"cannot read the key file {settings.key_file}") from exc
        parts = await asyncio.to_thread(
            lambda: [
                archive.seal_part(raw, folder, archive.DATABASE, recipients),
                archive.seal_part(keys, folder, archive.KEYS, recipients),
            ]
        )
    manifest = {
        "format": archive.FORMAT,
        "id": backup_id,
        "created_at": now.isoformat(),
        "engine": snap.engine,
        "schema_version": snap.schema_version,
        "row_counts": snap.row_counts,
        "recipients": list(settings.backup_recipients),
        "size_bytes": sum(p.size for p in parts),
        "parts": {p.name: p.as_json() for p in parts},
    }
    return folder, manifest, archive.write_manifest(folder, manifest)


def put_all(settings: Settings, folder: Path, backup_id: str, url: str) -> None:
    """Copy the parts, then the manifest, to one destination; raises DestinationError."""
    destination = open_destination(url, settings)
    for part in (*archive.PARTS, archive.MANIFEST):
        destination.put(backup_id, part, folder / part)


async def _mark(sessions: SessionMaker, backup_id: str, url: str, error: str | None) -> None:
    """Record one copy attempt; a failure queues a retry and an alert (once per copy)."""
    now = utcnow()
    async with sessions() as session, session.begin():
        copy = await session.get(BackupCopy, (backup_id, url))
        if copy is None:
            return
        copy.attempts += 1
        copy.updated_at = now
        copy.status = DONE if error is None else FAILED
        copy.last_error = error
        copy.copied_at = now if error is None else None
        if error is not None:
            payload = {"backup_id": backup_id, "destination": url}
            await enqueue(session, COPY_JOB, payload, dedupe_key=f"backup-copy:{backup_id}:{url}")
            await enqueue(
                session,
                ALERT_JOB,
                {**payload, "error": error},
                dedupe_key=f"backup-alert:{backup_id}:{url}",
            )


async def copy_to(
    settings: Settings, sessions: SessionMaker, folder: Path, manifest: dict[str, Any], url: str
) -> str | None:
    """Copy a backup to one destination, record and report the result; returns the error
    (None when copied). Never raises for the destination's failure."""
    backup_id = str(manifest["id"])
    try:
        await asyncio.to_thread(put_all, settings, folder, backup_id, url)
    except DestinationError as exc:
        metrics.failed(url)
        log.error("backup_copy_failed", backup_id=backup_id, destination=url, error=str(exc))
        await _mark(sessions, backup_id, url, str(exc))
        return str(exc)
    metrics.copied(url, int(manifest["size_bytes"]), utcnow().timestamp())
    log.info(
        "backup_copied", backup_id=backup_id, destination=url, size_bytes=manifest["size_bytes"]
    )
    await _mark(sessions, backup_id, url, None)
    return None


async def create_backup(settings: Settings, sessions: SessionMaker) -> Outcome:
    """Make a backup and copy it to every destination of ``EMPORIUM_BACKUP_DESTINATIONS``;
    the outcome lists the destinations that failed (recorded, retried, reported). Raises
    BackupError when no backup could be made (no destination, recipients or key file)."""
    if not settings.backup_destinations:
        raise BackupError("EMPORIUM_BACKUP_DESTINATIONS is empty: nowhere to copy a backup")
    now = utcnow()
    backup_id = archive.new_backup_id(now)
    folder, manifest, checksum = await make_archive(settings, backup_id, now)
    async with sessions() as session, session.begin():
        session.add(
            Backup(
                id=backup_id,
                created_at=now,
                engine=manifest["engine"],
                schema_version=manifest["schema_version"],
                size_bytes=manifest["size_bytes"],
                checksum=checksum,
                manifest=manifest,
            )
        )
        await session.flush()
        for url in settings.backup_destinations:
            session.add(
                BackupCopy(backup_id=backup_id, destination=url, status=PENDING, updated_at=now)
            )
        details = {"size_bytes": manifest["size_bytes"], "checksum": checksum}
        await record_audit(
            session,
            action="backup.created",
            object_type="backup",
            object_id=backup_id,
            details={**details, "destinations": len(settings.backup_destinations)},
        )
    outcome = Outcome(backup_id, manifest, checksum)
    for url in settings.backup_destinations:
        error = await copy_to(settings, sessions, folder, manifest, url)
        if error is None:
            outcome.copied.append(url)
        else:
            outcome.failures[url] = error
    if not outcome.failures:
        shutil.rmtree(folder, ignore_errors=True)
    log.info(
        "backup_made", backup_id=backup_id, copied=len(outcome.copied), failed=len(outcome.failures)
    )
    return outcome


async def _parts_for(
    settings: Settings, sessions: SessionMaker, backup_id: str, into: Path
) -> Path:
    """The folder holding a backup's parts: the spool, or ``into`` filled from a destination
    that has a complete copy. Raises BackupError when none has."""
    folder = spool_of(settings, backup_id)
    if (folder / archive.MANIFEST).is_file():
        return folder
    async with sessions() as session:
        done = (
            await session.scalars(
                select(BackupCopy.destination).where(
                    BackupCopy.backup_id == backup_id, BackupCopy.status == DONE
                )
            )
        ).all()
    for url in done:
        try:
            destination = open_destination(url, settings)
            for part in (*archive.PARTS, archive.MANIFEST):
                await asyncio.to_thread(destination.get, backup_id, part, into / part)
            return into
        except DestinationError:
            continue
    raise BackupError(f"backup {backup_id}: no local or remote copy left to copy from")


async def retry_copy(settings: Settings, sessions: SessionMaker, backup_id: str, url: str) -> None:
    """Copy a backup again to a destination that failed; raises DestinationError (the job
    runner retries with backoff) or BackupError when nothing is left to copy from."""
    async with sessions() as session:
        backup = await session.get(Backup, backup_id)
        copy = await session.get(BackupCopy, (backup_id, url))
    if backup is None or copy is None or copy.status in (DONE, PRUNED):
        return
    with tempfile.TemporaryDirectory(prefix="emporium-backup-") as tmp:
        folder = await _parts_for(settings, sessions, backup_id, Path(tmp))
        error = await copy_to(settings, sessions, folder, backup.manifest, url)
    if error is not None:
        raise DestinationError(error)
    async with sessions() as session:
        left = (
            await session.scalars(
                select(BackupCopy.destination).where(
                    BackupCopy.backup_id == backup_id, BackupCopy.status != DONE
                )
            )
        ).all()
    if not left:
        shutil.rmtree(spool_of(settings, backup_id), ignore_errors=True)


async def request_backup(session: AsyncSession) -> BackupQueued:
    """Queue a ``backups.create`` job now (``POST /backups``); returns its id."""
    key = f"backup-now:{uuid.uuid4()}"
    await enqueue(session, CREATE_JOB, {}, dedupe_key=key, max_attempts=3)
    job_id = await session.scalar(select(Job.id).where(Job.dedupe_key == key))
    assert job_id is not None  # just inserted in this transaction
    await record_audit(session, action="backup.requested", object_type="job", object_id=job_id)
    return BackupQueued(job_id=job_id, status="queued")


async def list_backups(session: AsyncSession, *, limit: int) -> BackupList:
    """The ``limit`` newest backups with their copies (``GET /backups``)."""
    backups = (
        await session.scalars(select(Backup).order_by(Backup.created_at.desc()).limit(limit))
    ).all()
    copies = (
        await session.scalars(
            select(BackupCopy)
            .where(BackupCopy.backup_id.in_([b.id for b in backups]))
            .order_by(BackupCopy.destination)
        )
    ).all()
    by_backup: dict[str, list[BackupCopyRead]] = {b.id: [] for b in backups}
    for copy in copies:
        by_backup[copy.backup_id].append(
            BackupCopyRead(
                destination=copy.destination,
                status=copy.status,
                attempts=copy.attempts,
                last_error=copy.last_error,
                copied_at=copy.copied_at,
            )
        )
    return BackupList(
        items=[
            BackupRead(
                id=b.id,
                created_at=b.created_at,
                engine=b.engine,
                schema_version=b.schema_version,
                size_bytes=b.size_bytes,
                checksum=b.checksum,
                copies=by_backup[b.id],
            )
            for b in backups
        ]
    )


async def prune_backups(
    settings: Settings, sessions: SessionMaker, *, dry_run: bool = False
) -> dict[str, list[str]]:
    """Delete, at every destination, the backups the retention settings do not keep;
    returns the ids deleted (or that would be, with ``dry_run``) per destination. A
    destination that cannot be listed is logged and skipped."""
    now = utcnow()
    deleted: dict[str, list[str]] = {}
    for url in settings.backup_destinations:
        destination = open_destination(url, settings)
        try:
            ids = await asyncio.to_thread(destination.backup_ids)
        except DestinationError as exc:
            log.error("backup_prune_failed", destination=url, error=str(exc))
            continue
        keep = to_keep(
            ids,
            now,
            keep_last=settings.backup_keep_last,
            daily_days=settings.backup_keep_daily_days,
            weekly_weeks=settings.backup_keep_weekly_weeks,
        )
        deleted[url] = [i for i in ids if i not in keep]
        if dry_run:
            continue
        for backup_id in deleted[url]:
            await asyncio.to_thread(destination.delete, backup_id)
        if deleted[url]:
            async with sessions() as session, session.begin():
                await session.execute(
                    update(BackupCopy)
                    .where(BackupCopy.destination == url, BackupCopy.backup_id.in_(deleted[url]))
                    .values(status=PRUNED, updated_at=now)
                )
            log.info("backups_pruned", destination=url, count=len(deleted[url]))
    return deleted
