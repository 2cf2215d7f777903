"""API shapes of the jobs room (admin)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from msgspec import Struct


class JobRead(Struct):
    """A job as admins see it; ``last_error`` says why the last attempt failed."""

    id: uuid.UUID
    kind: str
    status: str
    attempts: int
    max_attempts: int
    run_at: datetime
    last_error: str | None
    payload: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class JobPage(Struct):
    """A keyset page of jobs."""

    items: list[JobRead]
    next_cursor: str | None
