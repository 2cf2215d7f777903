"""``Idempotency-Key`` for order-creating requests, with Stripe's semantics.

A key belongs to one principal (``scope``) and is kept for ``ttl`` (24 h by default):

- first use: the key is *claimed* in its own committed transaction, with a lease
  (``locked_until``, ``EMPORIUM_IDEMPOTENCY_LEASE_SECONDS``) that is also the request's time
  limit (:attr:`Claim.deadline`); the order and the stored answer are then written by the
  request's transaction with :func:`complete`, so the answer exists if and only if the order
  does;
- the stored answer is the status and the order's id, never the body: the body holds the
  shipping address (personal data), so a replay renders the order again from its sealed row;
- same key, same body, finished: the stored status and the order are replayed;
- same key, another body: ``422 idempotency_key_reused``;
- same key while the first request is in flight: ``409 idempotency_key_in_flight``;
- a claim whose process died (lease expired) is taken over by the next retry; the old
  request, if still alive, then fails to complete and rolls back, so one key makes at most
  one order;
- a request that failed in any way the process survived (a domain error such as
  ``insufficient_stock``, a database error, a bug, its time limit) releases the key:
  nothing was created, and the client may retry with the same key at once.

The claim table is shared by all server processes through the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import structlog
from sqlalchemy import Executable, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from emporium.core.clock import utcnow
from emporium.core.db.base import table_of
from emporium.jobs.registry import JobRun, Registry
from emporium.orders.exceptions import (
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
)
from emporium.orders.models import IdempotencyKey

_K = table_of(IdempotencyKey).c
T = TypeVar("T")
log = structlog.get_logger(__name__)
SCOPE_PREFIX = "orders:"


@dataclass(frozen=True)
class Claim:
    """This request owns ``key`` in ``scope`` until it completes or releases it, and at the
    latest until ``deadline`` (event-loop time, seconds), when its lease runs out."""

    scope: str
    key: str
    token: str
    deadline: float


@dataclass(frozen=True)
class Replay:
    """The stored answer of the request that first used the key: its status and order,
    and what it made within the order (``resource_id``: a payment), if anything."""

    status_code: int
    order_id: uuid.UUID
    resource_id: uuid.UUID | None = None


def scope_of(customer_id: uuid.UUID) -> str:
    """The scope of a customer's keys for ``POST /orders``."""
    return f"{SCOPE_PREFIX}{customer_id}"


def cart_scope(cart_id: uuid.UUID) -> str:
    """The scope of a guest's keys for ``POST /orders {cart_id}``: the cart, whose token
    the caller has proven."""
    return f"{SCOPE_PREFIX}cart:{cart_id}"


def payment_scope(order_id: uuid.UUID) -> str:
    """The scope of keys for ``POST /orders/{id}/payments``: the order, which the caller
    has proven they may pay."""
    return f"payments:{order_id}"


def check_key(key: str) -> str:
    """Validate an ``Idempotency-Key`` header: 1 to 255 printable ASCII characters.

    Raises InvalidIdempotencyKey (422).
    """
    if not 1 <= len(key) <= 255 or not all(" " <= ch <= "~" for ch in key):
        raise InvalidIdempotencyKey(
            "Idempotency-Key must be 1 to 255 printable ASCII characters.",
            errors=[{"loc": ["header", "Idempotency-Key"], "msg": "1-255 printable ASCII"}],
        )
    return key


def fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of what identifies a request: method, path and canonical body."""
    return hashlib.sha256(b"\n".join((method.encode(), path.encode(), body))).hexdigest()


def _insert(dialect: str, values: dict[str, object]) -> Executable:
    ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return ins(table_of(IdempotencyKey)).values(**values).on_conflict_do_nothing()


async def begin(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    scope: str,
    key: str,
    fingerprint: str,
    ttl: timedelta,
    lease: timedelta,
) -> Claim | Replay:
    """Claim ``key`` for this request for ``lease``, or return the stored answer to replay.

    Raises:
        IdempotencyKeyReused: (422) the key was used with another body.
        IdempotencyKeyInFlight: (409) a request with this key is being processed.
    """
    token, now = secrets.token_hex(16), utcnow()
    deadline = asyncio.get_running_loop().time() + lease.total_seconds()
    fresh = {
        "claim": token,
        "locked_until": now + lease,
        "fingerprint": fingerprint,
        "status_code": None,
        "order_id": None,
        "created_at": now,
        "expires_at": now + ttl,
    }
    async with sessionmaker() as session, session.begin():
        dialect = session.get_bind().dialect.name
        inserted = await session.execute(_insert(dialect, {"scope": scope, "key": key, **fresh}))
        if inserted.rowcount == 1:  # type: ignore[attr-defined]
            return Claim(scope, key, token, deadline)
        where = (_K.scope == scope, _K.key == key)
        query = select(
            _K.fingerprint,
            _K.claim,
            _K.locked_until,
            _K.status_code,
            _K.order_id,
            _K.resource_id,
            _K.expires_at,
        ).where(*where)
        if dialect == "postgresql":
            query = query.with_for_update()
        row = (await session.execute(query)).one()
        if row.expires_at <= now:
            takeover = update(table_of(IdempotencyKey)).where(*where, _K.expires_at <= now)
        elif row.fingerprint != fingerprint:
            raise IdempotencyKeyReused("This Idempotency-Key was used with another request.")
        elif row.status_code is not None and row.order_id is not None:
            return Replay(row.status_code, row.order_id, row.resource_id)
        elif row.locked_until is not None and row.locked_until > now:
            raise IdempotencyKeyInFlight("A request with this Idempotency-Key is in progress.")
        else:  # the first request's process died: its lease ran out
            takeover = update(table_of(IdempotencyKey)).where(
                *where, _K.claim == row.claim, _K.status_code.is_(None)
            )
        taken = await session.execute(takeover.values(**fresh))
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise IdempotencyKeyInFlight("A request with this Idempotency-Key is in progress.")
        return Claim(scope, key, token, deadline)


async def complete(
    session: AsyncSession,
    claim: Claim,
    status_code: int,
    order_id: uuid.UUID,
    resource_id: uuid.UUID | None = None,
) -> None:
    """Store the answer (status, order id and what was made in it, ``resource_id``) in the
    request's own transaction, the one that made the order (or the payment).

    Raises IdempotencyKeyInFlight (409) when the claim was taken over meanwhile: the caller's
    transaction then rolls back, so the key still makes at most one order.
    """
    done = await session.execute(
        update(table_of(IdempotencyKey))
        .where(_K.scope == claim.scope, _K.key == claim.key, _K.claim == claim.token)
        .values(
            status_code=status_code,
            order_id=order_id,
            resource_id=resource_id,
            claim=None,
            locked_until=None,
        )
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise IdempotencyKeyInFlight("This request took too long and was superseded by a retry.")


STOP_AT = 0.8
"""A request with a key is stopped at this fraction of its lease, so that it has rolled back
and freed the key before a retry could take the key over."""


async def run_claimed(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    claim: Claim,
    lease: timedelta,
    *,
    act: Callable[[], Awaitable[tuple[T, uuid.UUID, uuid.UUID | None]]],
    commit: Callable[[], Awaitable[None]],
    timed_out: Callable[[], Exception],
) -> T:
    """Do what ``claim`` was taken for, at most once: ``act()`` (answering its result, the
    order id and what else it made, ``resource_id``), the stored answer
    (:func:`complete`, status 201) and ``commit()``, all within ``STOP_AT`` of ``lease``.
    Any failure (domain error, database error, bug, time limit) rolls back and releases the
    key, so that an immediate retry may use it.

    Raises what ``act`` raises, ``timed_out()`` when the time limit passed, and whatever
    the database raised.
    """
    limit = asyncio.timeout_at(claim.deadline - (1 - STOP_AT) * lease.total_seconds())
    try:
        async with limit:
            result, order_id, resource_id = await act()
            await complete(session, claim, 201, order_id, resource_id)
            await commit()
    except BaseException as exc:
        await _abandon(session, sessionmaker, claim)
        if isinstance(exc, TimeoutError) and limit.expired():
            raise timed_out() from exc
        raise
    return result


async def _abandon(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], claim: Claim
) -> None:
    """After a failed request: end its transaction first (SQLite allows one writer), then
    free the key. If the database cannot be reached, the key's lease frees it instead."""
    try:
        await session.rollback()
    except Exception:  # the connection may be gone with the failure
        log.warning("idempotent_rollback_failed", exc_info=True)
    try:
        await release(sessionmaker, claim)
    except Exception:
        log.warning("idempotency_release_failed", exc_info=True)


async def release(sessionmaker: async_sessionmaker[AsyncSession], claim: Claim) -> None:
    """Give the key up after a failure that created nothing (it may be used again)."""
    async with sessionmaker() as session, session.begin():
        await session.execute(
            delete(table_of(IdempotencyKey)).where(
                _K.scope == claim.scope,
                _K.key == claim.key,
                _K.claim == claim.token,
                _K.status_code.is_(None),
            )
        )


async def erase_customer(session: AsyncSession, customer_id: uuid.UUID) -> None:
    """Forget every key of ``customer_id`` (account erasure, GDPR art. 17), in the caller's
    transaction."""
    await session.execute(delete(table_of(IdempotencyKey)).where(_K.scope == scope_of(customer_id)))


async def purge_expired(session: AsyncSession) -> int:
    """Delete keys past their expiry (housekeeping); returns how many went."""
    gone = await session.execute(delete(table_of(IdempotencyKey)).where(_K.expires_at <= utcnow()))
    return int(gone.rowcount)  # type: ignore[attr-defined]


PURGE_KIND = "orders.purge_idempotency_keys"


async def purge_job(run: JobRun) -> None:
    """The hourly job: :func:`purge_expired` in its own transaction."""
    async with run.sessionmaker() as session, session.begin():
        await purge_expired(session)


def register(registry: Registry) -> None:
    """Purge expired idempotency keys every hour."""
    registry.handle(PURGE_KIND, purge_job)
    registry.every(PURGE_KIND, timedelta(hours=1))
