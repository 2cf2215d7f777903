"""Tables of the audit room: the events and the head of their hash chain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from emporium.core.db.base import Base, UTCDateTime, new_id

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first event of a chain that was never pruned."""

MAIN_CHAIN = 1
"""The id of the one chain every event joins (``audit_chain.id``)."""


class AuditEvent(Base):
    """One audited action or read. ``hash`` is the SHA-256 of the event's content and of
    ``prev_hash`` (the previous event's ``hash``), so altering, removing or inserting an event
    breaks the chain (``audit.chain.verify_chain``). Never updated, never deleted except by
    ``audit.service.prune_events`` (PostgreSQL refuses anything else: a trigger)."""

    __tablename__ = "audit_event"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_type: Mapped[str] = mapped_column(String(10))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(100))
    object_type: Mapped[str] = mapped_column(String(50))
    object_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_event_at", "at", "id"),
        Index("ix_audit_event_object", "object_type", "object_id"),
        Index("ix_audit_event_actor", "actor_id", "at"),
    )


class AuditChain(Base):
    """The head of a chain: its last ``seq`` and ``hash`` (each writer takes this row's lock,
    so concurrent writers line up instead of forking the chain), and where pruning cut it:
    events up to ``pruned_seq`` were deleted, the last of them had hash ``pruned_hash``."""

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    head_seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    pruned_seq: Mapped[int] = mapped_column(BigInteger)
    pruned_hash: Mapped[str] = mapped_column(String(64))
    pruned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
