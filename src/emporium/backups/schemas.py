"""API shapes of the backups room (admin)."""

from __future__ import annotations

import uuid
from datetime import datetime

from msgspec import Struct


class BackupCopyRead(Struct):
    """A backup's copy at one destination: ``pending``, ``done``, ``failed`` (retried) or
    ``pruned``; ``last_error`` says why the last attempt failed."""

    destination: str
    status: str
    attempts: int
    last_error: str | None
    copied_at: datetime | None


class BackupRead(Struct):
    """A backup: its size in bytes (encrypted parts), the SHA-256 of its manifest
    (``checksum``) and its copies."""

    id: str
    created_at: datetime
    engine: str
    schema_version: str | None
    size_bytes: int
    checksum: str
    copies: list[BackupCopyRead]


class BackupList(Struct):
    """The most recent backups, newest first."""

    items: list[BackupRead]


class BackupQueued(Struct):
    """A backup queued as a job (its progress: ``GET /jobs``, then ``GET /backups``)."""

    job_id: uuid.UUID
    status: str
