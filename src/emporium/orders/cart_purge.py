"""Abandoned guest carts are deleted after ``EMPORIUM_GUEST_CART_DAYS`` without a change.

A guest cart (no ``customer_id``) holds sealed personal data (e-mail, addresses) and answers
to a token that may never be sent again, so it is not kept for ever: an hourly job deletes
every guest cart whose ``updated_at`` (its last write: lines, e-mail, addresses, method) is
older than the setting, its lines with it. A customer's cart belongs to the account and is
never purged. Reads do not count as a change.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.core.clock import utcnow
from emporium.core.db.base import table_of
from emporium.jobs.registry import JobRun, Registry
from emporium.orders.models import Cart

_C = table_of(Cart).c
PURGE_KIND = "orders.purge_guest_carts"


async def purge_guest_carts(session: AsyncSession, *, older_than: timedelta) -> int:
    """Delete the guest carts last changed more than ``older_than`` ago; returns how many.

    One statement, so a cart written meanwhile (its ``updated_at`` moved) is either deleted
    whole or kept whole; its lines go by the foreign key's ``ON DELETE CASCADE``.
    """
    cutoff = utcnow() - older_than
    gone = await session.execute(
        delete(table_of(Cart)).where(_C.customer_id.is_(None), _C.updated_at < cutoff)
    )
    return int(gone.rowcount)  # type: ignore[attr-defined]


async def purge_job(run: JobRun) -> None:
    """The hourly job: :func:`purge_guest_carts` for ``EMPORIUM_GUEST_CART_DAYS``, in its
    own transaction."""
    days = timedelta(days=run.settings.guest_cart_days)
    async with run.sessionmaker() as session, session.begin():
        await purge_guest_carts(session, older_than=days)


def register(registry: Registry) -> None:
    """Purge abandoned guest carts every hour."""
    registry.handle(PURGE_KIND, purge_job)
    registry.every(PURGE_KIND, timedelta(hours=1))
