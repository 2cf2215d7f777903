"""Reading, exporting and pruning the audit trail (writing is ``audit.chain.record_audit``)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Select, and_, delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.audit.chain import record_audit
from emporium.audit.models import MAIN_CHAIN, AuditChain, AuditEvent
from emporium.audit.schemas import AuditActor, AuditEventPage, AuditEventRead
from emporium.core.clock import utcnow
from emporium.core.db.pagination import decode_cursor, encode_cursor, invalid_cursor

PRUNE_SETTING = "emporium.audit_prune"
"""The transaction-local PostgreSQL setting the append-only trigger lets deletions through
with (set only by :func:`prune_events`)."""

_SORT = "-seq"
_EXPORT_BATCH = 500


def event_read(event: AuditEvent) -> AuditEventRead:
    """The API shape of an event."""
    return AuditEventRead(
        id=event.id,
        seq=event.seq,
        at=event.at,
        actor=AuditActor(type=event.actor_type, id=event.actor_id),
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        ip=event.ip,
        request_id=event.request_id,
        details=event.details,
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


@dataclasses.dataclass(frozen=True)
class EventFilter:
    """What ``GET /audit-events`` filters on; None matches everything. ``since`` is
    inclusive, ``until`` exclusive."""

    actor_id: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, stmt: Select[Any]) -> Select[Any]:
        """``stmt`` narrowed to the events this filter matches."""
        for column, value in (
            (AuditEvent.actor_id, self.actor_id),
            (AuditEvent.action, self.action),
            (AuditEvent.object_type, self.object_type),
            (AuditEvent.object_id, self.object_id),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if self.since is not None:
            stmt = stmt.where(AuditEvent.at >= self.since)
        if self.until is not None:
            stmt = stmt.where(AuditEvent.at < self.until)
        return stmt


async def list_events(
    session: AsyncSession, *, where: EventFilter, limit: int, cursor: str | None
) -> AuditEventPage:
    """Events matching ``where``, newest first (by ``seq``), as a keyset page.

    Raises InvalidInput (422) for a bad cursor.
    """
    stmt = where.apply(select(AuditEvent)).order_by(AuditEvent.seq.desc())
    if cursor:
        value, _ = decode_cursor(cursor, _SORT)
        if not isinstance(value, int):
            raise invalid_cursor()
        stmt = stmt.where(AuditEvent.seq < value)
    events: list[AuditEvent] = list(await session.scalars(stmt.limit(limit + 1)))
    items = [event_read(e) for e in events[:limit]]
    more = len(events) > limit
    next_cursor = encode_cursor(_SORT, items[-1].seq, items[-1].id) if more and items else None
    return AuditEventPage(items=items, next_cursor=next_cursor)


async def export_events(session: AsyncSession, *, since: datetime | None) -> AsyncIterator[bytes]:
    """Every event at or after ``since`` in chain order, one JSON object per line (JSON
    Lines, for a SIEM), read in batches."""
    after = -1
    encoder = msgspec.json.Encoder()
    while True:
        stmt = EventFilter(since=since).apply(select(AuditEvent)).where(AuditEvent.seq > after)
        ordered = stmt.order_by(AuditEvent.seq).limit(_EXPORT_BATCH)
        batch: list[AuditEvent] = list(await session.scalars(ordered))
        for event in batch:
            yield encoder.encode(event_read(event)) + b"\n"
        if len(batch) < _EXPORT_BATCH:
            return
        after = batch[-1].seq
        session.expunge_all()


@dataclasses.dataclass(frozen=True)
class PruneResult:
    """What :func:`prune_events` deleted: the number of events and the new cut of the chain."""

    deleted: int
    pruned_seq: int
    pruned_hash: str | None


async def prune_events(session: AsyncSession, *, retention_days: int) -> PruneResult:
    """Delete the events older than ``retention_days`` days, oldest first without gaps, and
    record where the chain now starts (``audit_chain.pruned_seq``/``pruned_hash``) so that
    ``verify`` still checks what is left. The pruning is itself audited. Raises ValueError
    for a retention below one day."""
    if retention_days < 1:
        raise ValueError("the audit retention is at least one day")
    before = utcnow() - timedelta(days=retention_days)
    cut = await session.scalar(select(func.max(AuditEvent.seq)).where(AuditEvent.at < before))
    if cut is None:
        return PruneResult(0, 0, None)
    # Take the chain's lock first: no event is numbered while the cut moves.
    await session.execute(
        update(AuditChain).where(AuditChain.id == MAIN_CHAIN).values(head_seq=AuditChain.head_seq)
    )
    last = await session.scalar(select(AuditEvent).where(AuditEvent.seq == cut))
    if last is None:  # the event was read just above; only a deletion behind our back
        raise RuntimeError(f"audit event seq {cut} vanished while pruning")
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        await session.execute(text("SELECT set_config(:name, 'on', true)"), {"name": PRUNE_SETTING})
    deleted = await session.execute(delete(AuditEvent).where(AuditEvent.seq <= cut))
    await session.execute(
        update(AuditChain)
        .where(AuditChain.id == MAIN_CHAIN)
        .values(pruned_seq=cut, pruned_hash=last.hash, pruned_at=utcnow())
    )
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT set_config(:name, 'off', true)"), {"name": PRUNE_SETTING}
        )
    count = int(getattr(deleted, "rowcount", 0) or 0)
    await record_audit(
        session,
        action="audit.pruned",
        object_type="audit_chain",
        object_id=MAIN_CHAIN,
        details={"deleted": count, "pruned_seq": cut, "retention_days": retention_days},
    )
    return PruneResult(count, cut, last.hash)


async def events_about(
    session: AsyncSession, user_id: str, order_ids: Sequence[str] = ()
) -> list[AuditEventRead]:
    """Every event about a person, oldest first: on their account, on one of their orders
    (``order_ids``), or done by them (for their export, GDPR art. 15)."""
    about = or_(
        and_(AuditEvent.object_type == "user", AuditEvent.object_id == user_id),
        AuditEvent.actor_id == user_id,
    )
    if order_ids:
        mine = and_(AuditEvent.object_type == "order", AuditEvent.object_id.in_(list(order_ids)))
        about = or_(about, mine)
    events = await session.scalars(select(AuditEvent).where(about).order_by(AuditEvent.seq))
    return [event_read(event) for event in events]
