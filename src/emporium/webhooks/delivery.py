"""The webhook jobs: fan an event out to its endpoints, then deliver each, with retries.

The fan-out runs once per public event, in the transaction that dispatches it
(``Registry.at_dispatch``; a ``webhooks.fanout`` job written before that does the same): it
creates one delivery per subscribed active endpoint (unique per endpoint and event, so a
second run adds nothing) and a ``webhooks.deliver`` job for each. ``webhooks.deliver``
sends the stored body with the delivery's fixed ``webhook-id``, records the attempt (in the
transaction that records the job's result: ``JobRun.record_with_result``), and on failure
asks the runner to retry after the backoff it shows as ``next_retry_at``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from prometheus_client import Counter
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.core.clock import utcnow
from emporium.core.crypto.keys import KeyRing
from emporium.core.crypto.sealing import decrypt_field
from emporium.core.db.base import autocommit_session, for_session, per_dialect, table_of
from emporium.core.tracing import current_context
from emporium.jobs.outbox import insert_jobs, job_row
from emporium.jobs.registry import Handler, JobRun, Registry, RetryLater, Write
from emporium.jobs.runner import backoff
from emporium.webhooks import sender
from emporium.webhooks.addresses import Resolver, system_resolver
from emporium.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from emporium.webhooks.schemas import EVENT_TYPES

FANOUT, DELIVER = "webhooks.fanout", "webhooks.deliver"
SUCCEEDED, FAILED, PENDING = "succeeded", "failed", "pending"
DELIVERIES = Counter(
    "emporium_webhook_deliveries_total",
    "Webhook delivery attempts per result: succeeded (2xx), retrying (will be sent again), "
    "failed (no attempts left)",
    ["result"],
)


@dataclass(frozen=True)
class WebhooksContext:
    """What the webhooks room needs: the key ring (secrets) and the resolver seam."""

    ring: KeyRing
    resolver: Resolver = field(default=system_resolver)


def open_secret(ring: KeyRing, endpoint: WebhookEndpoint) -> str:
    """The endpoint's signing secret in clear (``whsec_...``)."""
    return decrypt_field(
        ring,
        endpoint.secret_enc,
        table="webhook_endpoint",
        column="secret",
        row_id=str(endpoint.id),
    )


def _body(payload: dict[str, object]) -> str:
    message = {
        "type": payload["type"],
        "timestamp": payload["occurred_at"],
        "data": payload["data"],
    }
    return msgspec.json.encode(message).decode()


async def fanout(run: JobRun) -> None:
    """The ``webhooks.fanout`` job of one event (written before fan-outs ran at dispatch,
    :func:`fanout_events`): the same work in a transaction of its own."""
    async with run.sessionmaker() as session, session.begin():
        await fanout_events(session, [run.payload], run.settings.jobs_max_attempts)


async def fanout_events(
    session: AsyncSession, payloads: list[dict[str, Any]], max_attempts: int
) -> None:
    """Create the deliveries of a batch of events (their job payloads) and a
    ``webhooks.deliver`` job for each, in ``session``'s transaction (the dispatch's,
    ``Registry.at_dispatch``): one read of the active endpoints, one multi-row insert of
    the deliveries, one of their jobs. Idempotent: a delivery is unique per endpoint and
    event, and one that exists gets no second job. Each job continues its event's trace
    (the payload's ``trace_context``, else the current span's)."""
    endpoints = (await session.execute(_ACTIVE)).all()
    rows, contexts = [], {}
    now = utcnow()
    for payload in payloads:
        event_type = str(payload["type"])
        targets = [endpoint_id for endpoint_id, events in endpoints if event_type in events]
        if targets:
            rows += _deliveries(payload, targets, now)
            contexts[str(payload["event_id"])] = payload.get("trace_context") or current_context()
    if not rows:
        return
    inserted = await session.execute(for_session(_DELIVERIES, session), rows)
    made = {str(delivery_id) for delivery_id in inserted.scalars()}
    jobs = [
        job_row(
            DELIVER,
            {"delivery_id": str(row["id"])},
            key=f"delivery:{row['id']}",
            max_attempts=max_attempts,
            now=now,
            trace_context=contexts[str(row["event_id"])],
        )
        for row in rows
        if str(row["id"]) in made  # none for deliveries an earlier run made
    ]
    if jobs:
        await insert_jobs(session, jobs)


def _deliveries(
    payload: dict[str, Any], endpoint_ids: list[uuid.UUID], now: datetime
) -> list[dict[str, Any]]:
    """The ``webhook_delivery`` rows of one event for ``endpoint_ids`` (pending, its body
    fixed now, a ``msg_id`` per delivery)."""
    body, event_id = _body(payload), uuid.UUID(str(payload["event_id"]))
    rows = []
    for endpoint_id in endpoint_ids:
        delivery_id = uuid.uuid4()
        rows.append(
            {
                "id": delivery_id,
                "endpoint_id": endpoint_id,
                "event_id": event_id,
                "event_type": str(payload["type"]),
                "msg_id": f"msg_{delivery_id.hex}",
                "body": body,
                "status": PENDING,
                "attempts": 0,
                "created_at": now,
            }
        )
    return rows


_DELIVERY = table_of(WebhookDelivery)
_ENDPOINT = table_of(WebhookEndpoint)
_ATTEMPT = table_of(WebhookAttempt)
_ACTIVE = select(_ENDPOINT.c.id, _ENDPOINT.c.events).where(_ENDPOINT.c.is_active.is_(True))
_DELIVERIES = per_dialect(  # built once, the rows bound at each execution
    lambda dialect: dialect.insert(_DELIVERY).on_conflict_do_nothing().returning(_DELIVERY.c.id)
)
_TO_SEND = (
    select(
        _DELIVERY.c.status,
        _DELIVERY.c.msg_id,
        _DELIVERY.c.body,
        _ENDPOINT.c.id,
        _ENDPOINT.c.url,
        _ENDPOINT.c.secret_enc,
    )
    .join_from(_DELIVERY, _ENDPOINT, _ENDPOINT.c.id == _DELIVERY.c.endpoint_id)
    .where(_DELIVERY.c.id == bindparam("delivery_id", type_=_DELIVERY.c.id.type))
)
_RECORD_ATTEMPT = (
    update(_DELIVERY)
    .where(_DELIVERY.c.id == bindparam("delivery_id", type_=_DELIVERY.c.id.type))
    .values(
        attempts=_DELIVERY.c.attempts + 1,
        last_status_code=bindparam("code", type_=_DELIVERY.c.last_status_code.type),
        last_duration_ms=bindparam("ms", type_=_DELIVERY.c.last_duration_ms.type),
        last_error=bindparam("error", type_=_DELIVERY.c.last_error.type),
        status=bindparam("new_status", type_=_DELIVERY.c.status.type),
        next_retry_at=bindparam("retry_at", type_=_DELIVERY.c.next_retry_at.type),
        delivered_at=bindparam("done_at", type_=_DELIVERY.c.delivered_at.type),
    )
)
_INSERT_ATTEMPT = insert(_ATTEMPT)


def _attempt(
    delivery_id: uuid.UUID, outcome: sender.Outcome, now: datetime, retry_at: datetime | None
) -> Write:
    """The write that records one attempt's ``outcome``: the delivery's new state and its
    attempt row (none when the delivery is gone), with the statements built once above."""
    status = SUCCEEDED if outcome.ok else PENDING if retry_at else FAILED
    update_delivery = {
        "delivery_id": delivery_id,
        "code": outcome.status_code,
        "ms": outcome.duration_ms,
        "error": outcome.error,
        "new_status": status,
        "retry_at": retry_at,
        "done_at": now if outcome.ok else None,
    }
    attempt = {
        "id": uuid.uuid4(),
        "delivery_id": delivery_id,
        "attempted_at": now,
        "status_code": outcome.status_code,
        "duration_ms": outcome.duration_ms,
        "error": outcome.error,
    }

    async def write(session: AsyncSession) -> None:
        result = await session.execute(_RECORD_ATTEMPT, update_delivery)
        if result.rowcount:  # type: ignore[attr-defined]
            await session.execute(_INSERT_ATTEMPT, attempt)

    return write


def deliver_handler(ctx: WebhooksContext) -> Handler:
    """The ``webhooks.deliver`` handler bound to ``ctx``."""

    async def deliver(run: JobRun) -> None:
        delivery_id = uuid.UUID(str(run.payload["delivery_id"]))
        # one read, the delivery and its endpoint: no transaction around it
        async with autocommit_session(run.sessionmaker, run.settings) as session:
            row = (await session.execute(_TO_SEND, {"delivery_id": delivery_id})).first()
        if row is None or row.status == SUCCEEDED:
            return  # deleted (with its endpoint), or delivered by an earlier run
        s = run.settings
        now = utcnow()
        secret = decrypt_field(
            ctx.ring, row.secret_enc, table="webhook_endpoint", column="secret", row_id=str(row.id)
        )
        headers = sender.signed_headers(secret, row.msg_id, row.body, now)
        outcome = await sender.send(
            row.url,
            row.body,
            headers,
            allow_private=s.webhooks_allow_private,
            time_limit=s.webhooks_timeout_seconds,
            max_redirects=s.webhooks_max_redirects,
            resolver=ctx.resolver,
        )
        delay = None if outcome.ok or run.attempt >= run.max_attempts else backoff(s, run.attempt)
        DELIVERIES.labels("succeeded" if outcome.ok else "retrying" if delay else "failed").inc()
        # recorded with the job's result (done, or retried): no transaction of its own
        run.record_with_result(_attempt(delivery_id, outcome, now, now + delay if delay else None))
        if not outcome.ok:
            reason = outcome.error or f"answered {outcome.status_code}"
            if delay is None:
                raise RuntimeError(reason)
            raise RetryLater(reason, delay=delay)

    return deliver


def register(registry: Registry, ctx: WebhooksContext) -> None:
    """Subscribe the fan-out to every public event type and register the delivery job."""
    registry.handle(FANOUT, fanout)
    registry.at_dispatch(FANOUT, fanout_events)
    registry.handle(DELIVER, deliver_handler(ctx))
    for event_type in EVENT_TYPES:
        registry.subscribe(event_type, FANOUT)
