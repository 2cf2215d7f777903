"""The hash chain: recording an event in the caller's transaction, and checking the chain.

Each event's ``hash`` is the SHA-256 (FIPS 180-4) of its canonical serialisation: the JSON
(RFC 8259) object of its content and ``prev_hash`` with sorted keys, no whitespace and ASCII
escapes, so that any reader can recompute it. ``seq`` numbers the chain without gaps; the
writer takes the lock of the chain's head row (``audit_chain``) before it numbers an event,
so concurrent writers queue behind each other instead of forking the chain. See
docs/adr/0022-audit-trail.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from emporium.audit.models import GENESIS_HASH, MAIN_CHAIN, AuditChain, AuditEvent
from emporium.core.actor import current_actor
from emporium.core.clock import utcnow

_HEAD = AuditChain.__table__.c
_VERIFY_BATCH = 500


def _plain(value: Any) -> Any:
    """``value`` as plain JSON data (ids and instants as strings, tuples and sets as lists)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(_plain(v) for v in value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if value is None or isinstance(value, str | int | bool):
        return value
    raise TypeError(f"audit details hold plain data only, not {type(value).__name__}")


def canonical(event: AuditEvent) -> bytes:
    """The bytes an event's ``hash`` is computed over: its content and ``prev_hash``."""
    content = {
        "seq": event.seq,
        "id": str(event.id),
        "at": event.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "ip": event.ip,
        "request_id": event.request_id,
        "details": event.details,
        "prev_hash": event.prev_hash,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def event_hash(event: AuditEvent) -> str:
    """The SHA-256 of :func:`canonical` as 64 hex characters."""
    return hashlib.sha256(canonical(event)).hexdigest()


async def _advance_head(session: AsyncSession) -> tuple[int, str]:
    """Take the chain head's lock and the next number: ``(seq, prev_hash)``. The ``UPDATE``
    locks the row until the transaction ends (PostgreSQL: a row lock; SQLite: the database's
    write lock), so the next writer reads the head this one leaves."""
    bump = (
        update(AuditChain)
        .where(_HEAD.id == MAIN_CHAIN)
        .values(head_seq=_HEAD.head_seq + 1)
        .returning(_HEAD.head_seq, _HEAD.head_hash)
    )
    row = (await session.execute(bump)).first()
    if row is None:  # an empty database: start the chain (two first writers: one wins)
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        start = dialect.insert(AuditChain).values(
            id=MAIN_CHAIN,
            head_seq=0,
            head_hash=GENESIS_HASH,
            pruned_seq=0,
            pruned_hash=GENESIS_HASH,
        )
        await session.execute(start.on_conflict_do_nothing())
        row = (await session.execute(bump)).one()
    return int(row.head_seq), str(row.head_hash)


async def record_audit(
    session: AsyncSession,
    *,
    action: str,
    object_type: str,
    object_id: object = None,
    details: Mapping[str, Any] | None = None,
) -> uuid.UUID:
    """Record ``action`` (``user.roles_changed``, ``user.personal_data_revealed``...) on the
    object ``object_type``/``object_id`` in ``session``'s transaction, by the current actor
    (``core.actor``: the request's caller, ``cli`` or ``system``); returns the event's id.

    ``details`` holds ids and field NAMES, never personal values. Call it after the change it
    records (the chain's lock is then the last one the transaction takes, which keeps lock
    order one way). Raises TypeError for details that are not plain data.
    """
    actor = current_actor()
    seq, prev_hash = await _advance_head(session)
    event = AuditEvent(
        id=uuid.uuid4(),
        seq=seq,
        at=utcnow(),
        actor_type=actor.actor_type,
        actor_id=actor.actor_id,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        ip=actor.ip,
        request_id=actor.request_id,
        details=_plain(dict(details or {})),
        prev_hash=prev_hash,
    )
    event.hash = event_hash(event)
    await session.execute(
        update(AuditChain).where(_HEAD.id == MAIN_CHAIN).values(head_hash=event.hash)
    )
    session.add(event)
    await session.flush()
    return event.id


@dataclasses.dataclass(frozen=True)
class ChainReport:
    """What :func:`verify_chain` found: how many events it checked, and the first problem
    (None when the chain is whole) with the event it concerns."""

    checked: int
    head_seq: int
    head_hash: str
    problem: str | None = None
    event_id: uuid.UUID | None = None

    @property
    def ok(self) -> bool:
        """True when every event is intact and in place."""
        return self.problem is None


async def _events(session: AsyncSession) -> AsyncIterator[AuditEvent]:
    """Every event in ``seq`` order, read in batches."""
    after = -1
    while True:
        stmt = select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq)
        batch = list(await session.scalars(stmt.limit(_VERIFY_BATCH)))
        for event in batch:
            yield event
        if len(batch) < _VERIFY_BATCH:
            return
        after = batch[-1].seq
        session.expunge_all()


def _check(event: AuditEvent, seq: int, prev_hash: str) -> str | None:
    """What is wrong with ``event`` where the chain expects ``seq`` after ``prev_hash``."""
    if event.seq > seq:
        return (
            f"event {event.id} (seq {event.seq}): events {seq}..{event.seq - 1} "
            "before it were removed"
        )
    if event_hash(event) != event.hash:
        return (
            f"event {event.id} (seq {event.seq}) was altered: its content does not match its hash"
        )
    if event.prev_hash != prev_hash:
        return (
            f"event {event.id} (seq {event.seq}) was inserted, or the event before it was "
            "altered: it does not chain to the previous hash"
        )
    return None


async def verify_chain(session: AsyncSession) -> ChainReport:
    """Walk the chain from where pruning cut it to its head and report the first event
    altered, removed or inserted (:class:`ChainReport`). Reads only."""
    head = await session.get(AuditChain, MAIN_CHAIN)
    seq = (head.pruned_seq if head else 0) + 1
    prev_hash = head.pruned_hash if head else GENESIS_HASH
    head_seq, head_hash = (head.head_seq, head.head_hash) if head else (0, GENESIS_HASH)
    checked = 0
    async for event in _events(session):
        problem = _check(event, seq, prev_hash)
        if problem is None and event.seq > head_seq:
            problem = f"event {event.id} (seq {event.seq}) was inserted after the chain's head"
        if problem is not None:
            return ChainReport(checked, head_seq, head_hash, problem, event.id)
        seq, prev_hash, checked = seq + 1, event.hash, checked + 1
    if seq - 1 != head_seq or prev_hash != head_hash:
        problem = f"events after seq {seq - 1} were removed: the chain's head is seq {head_seq}"
        return ChainReport(checked, head_seq, head_hash, problem)
    return ChainReport(checked, head_seq, head_hash)


async def record_apart(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    action: str,
    object_type: str,
    object_id: object = None,
    details: Mapping[str, Any] | None = None,
) -> uuid.UUID:
    """:func:`record_audit` in a transaction of its own, committed before this returns: for
    a read served from a read-only connection (the answer is sent only once its audit
    event is stored; if storing fails, the read fails)."""
    async with sessionmaker() as session, session.begin():
        return await record_audit(
            session, action=action, object_type=object_type, object_id=object_id, details=details
        )
