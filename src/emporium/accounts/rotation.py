"""Re-encrypt every protected column under the active data key, in resumable batches.

Run by ``emporium keys rotate`` after a new key was added to the key file. Values already
under the active key are left alone, so an interrupted run simply continues where it
stopped when started again. Each batch commits on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from emporium.core.crypto.keys import KeyRing
from emporium.core.crypto.sealing import needs_reencryption, reencrypt_field
from emporium.core.db.base import Sealed, sealed_columns


async def reencrypt_all(
    sessionmaker: async_sessionmaker[AsyncSession],
    ring: KeyRing,
    *,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
    protected: Sealed | None = None,
) -> int:
    """Re-encrypt every value not under ``ring``'s active key; returns how many changed.
    ``protected``: the sealed columns to visit; by default every column declared with
    ``core.db.base.sealed`` on the models imported so far (the CLI imports them all first).

    Raises DecryptionError if a value cannot be decrypted with any key of ``ring``.
    """
    changed = 0
    for model, columns in sealed_columns() if protected is None else protected:
        table = model.__tablename__
        last_id: Any = None
        while True:
            async with sessionmaker() as session, session.begin():
                stmt = select(model).order_by(model.id).limit(batch_size)
                if last_id is not None:
                    stmt = stmt.where(model.id > last_id)
                rows = list(await session.scalars(stmt))
                for row in rows:
                    for attribute, column in columns.items():
                        token = getattr(row, attribute)
                        if token and needs_reencryption(ring, token):
                            setattr(
                                row,
                                attribute,
                                reencrypt_field(
                                    ring, token, table=table, column=column, row_id=str(row.id)
                                ),
                            )
                            changed += 1
            if progress:
                progress(len(rows))
            if len(rows) < batch_size:
                break
            last_id = rows[-1].id
    return changed
