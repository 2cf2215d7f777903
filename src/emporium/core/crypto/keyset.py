"""Which key set a database was written with: its fingerprint, recorded in the database.

A database whose personal data was sealed with one key file is unreadable with another:
starting with a missing or different key file, and creating a fresh one, would lock every
customer out and fail every queued job. So the first start records the key set's
fingerprint (table ``key_set``, one row) and every later start compares: a missing or
different key file is refused with a one-line message naming the fix. Only a database that
holds no protected data may get a new key file.

The fingerprint is ``HMAC-SHA256(index_key, "emporium key set v1" || pepper)`` in hex: it
identifies the blind-index key and the pepper, the two keys that are never rotated (rotation
adds data and token keys), so ``emporium keys rotate`` keeps it valid; being a MAC under a
256-bit secret it reveals nothing about the keys (NIST SP 800-107, HMAC as a PRF).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Integer, String, Table, exists, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from emporium.core.crypto.keys import KeyRing
from emporium.core.db.base import Base

_LABEL = b"emporium key set v1"
_ROW = 1


class KeySet(Base):
    """The one row naming the key set this database's protected data was written with."""

    __tablename__ = "key_set"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))


class KeySetMismatch(Exception):
    """The key file does not belong to this database (or is missing while the database
    holds protected data); the message is one line naming the problem and the fix."""


def fingerprint(ring: KeyRing) -> str:
    """The key set's fingerprint: 64 hex digits, stable across ``keys rotate``."""
    return hmac.new(ring.index_key, _LABEL + ring.pepper, hashlib.sha256).hexdigest()


def _short(value: str) -> str:
    return value[:12]


async def _holds_data(conn: AsyncConnection, protected: Sequence[Table]) -> bool:
    for table in protected:
        if await conn.scalar(select(exists().select_from(table))):
            return True
    return False


async def check_key_set(
    engine: AsyncEngine, ring: KeyRing | None, *, key_file: Path, protected: Sequence[Table]
) -> bool:
    """Compare ``ring`` (None: no key file) with the key set recorded in the database,
    recording it when none is (a first start, or a database from before this check).

    Returns True when a new key file may be created: no key file, nothing recorded and no
    row in any ``protected`` table (tables holding sealed or blind-indexed data).

    Raises KeySetMismatch when the key file is missing or different while the database
    holds data written with another key set.
    """
    async with engine.connect() as conn:
        recorded = await conn.scalar(select(KeySet.fingerprint).where(KeySet.id == _ROW))
        if recorded is None and ring is None:
            if await _holds_data(conn, protected):
                raise KeySetMismatch(
                    f"no key file at {key_file}, but the database holds data encrypted with "
                    "a key file: restore that file (or set EMPORIUM_KEY_FILE to it); a new "
                    "key file would lock every customer out"
                )
            return True
    if recorded is None:
        assert ring is not None
        try:
            async with engine.begin() as conn:
                await conn.execute(insert(KeySet).values(id=_ROW, fingerprint=fingerprint(ring)))
        except IntegrityError:  # a concurrent first start won: compare with its key set
            return await check_key_set(engine, ring, key_file=key_file, protected=protected)
        return False
    if ring is None:
        raise KeySetMismatch(
            f"no key file at {key_file}, but the database was written with key set "
            f"{_short(recorded)}: restore that key file from your backup (or set "
            "EMPORIUM_KEY_FILE to it); a new key file would lock every customer out"
        )
    if not hmac.compare_digest(fingerprint(ring), recorded):
        raise KeySetMismatch(
            f"the key file {key_file} holds key set {_short(fingerprint(ring))}, but the "
            f"database was written with key set {_short(recorded)}: set EMPORIUM_KEY_FILE "
            "to the key file of this database (restore it from your backup)"
        )
    return False
