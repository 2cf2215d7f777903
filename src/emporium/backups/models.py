"""Tables of the backups room: each backup made here and its copy at each destination."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from emporium.core.clock import utcnow
from emporium.core.db.base import Base, UTCDateTime

PENDING, DONE, FAILED, PRUNED = "pending", "done", "failed", "pruned"


class Backup(Base):
    """A backup taken by this shop: its manifest (sizes, SHA-256 of every part) and the
    SHA-256 of the manifest itself (``checksum``)."""

    __tablename__ = "backup"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    engine: Mapped[str] = mapped_column(String(20))
    schema_version: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    checksum: Mapped[str] = mapped_column(String(64))
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_backup_created", "created_at"),)


class BackupCopy(Base):
    """One backup at one destination: ``pending``, ``done``, ``failed`` (retried by the job
    runner) or ``pruned``. ``destination`` never holds credentials."""

    __tablename__ = "backup_copy"

    backup_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("backup.id", ondelete="CASCADE"), primary_key=True
    )
    destination: Mapped[str] = mapped_column(String(500), primary_key=True)
    status: Mapped[str] = mapped_column(String(10), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    copied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
