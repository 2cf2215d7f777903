"""API shapes of the audit room."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from msgspec import Struct


class AuditActor(Struct):
    """Who acted: ``type`` is ``user``, ``api_key``, ``system`` or ``cli``; ``id`` the user's
    or key's id (None for ``system`` and ``cli``)."""

    type: str
    id: str | None


class AuditEventRead(Struct):
    """An audit event. ``ip`` is a keyed pseudonym of the client address (the same address
    always gives the same value), never the address; ``details`` holds ids and field names,
    never personal values; ``hash`` chains to ``prev_hash``, the previous event's."""

    id: uuid.UUID
    seq: int
    at: datetime
    actor: AuditActor
    action: str
    object_type: str
    object_id: str | None
    ip: str | None
    request_id: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditEventPage(Struct):
    """A keyset page of audit events, newest first."""

    items: list[AuditEventRead]
    next_cursor: str | None
