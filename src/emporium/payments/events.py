"""Provider events (``POST /payments/webhooks/{provider}``, and the test provider's own
deliveries): verified, then applied exactly once.

The event's id is recorded in ``payment_event`` (``INSERT ... ON CONFLICT DO NOTHING``) in
the same transaction that applies it, so a replayed or concurrent delivery of the same event
changes nothing twice. An event about a payment or refund we do not know is answered
``200`` but not recorded, so that a later retry can still apply it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.core.clock import utcnow
from emporium.core.db.base import table_of
from emporium.core.security_events import security_event
from emporium.payments.apply import apply_intent, apply_refund, system
from emporium.payments.exceptions import InvalidSignatureError
from emporium.payments.models import Payment, PaymentEvent, Refund
from emporium.payments.providers.base import (
    PAYMENT_ID_KEY,
    REFUND_ID_KEY,
    InvalidSignature,
    ProviderEvent,
)
from emporium.payments.service import PaymentsContext

log = structlog.get_logger(__name__)
_P, _R = table_of(Payment).c, table_of(Refund).c


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return None if value is None else uuid.UUID(value)
    except ValueError:
        return None


async def _target(
    session: AsyncSession, provider: str, table: Any, key: str, meta: Mapping[str, str], ref: str
) -> uuid.UUID | None:
    """Our row an event is about: by the id in its metadata, else by the provider's
    reference; only rows of that provider."""
    columns = table.c
    found = _uuid(meta.get(key))
    query = select(columns.id).where(columns.provider == provider)
    if found is not None:
        return await session.scalar(query.where(columns.id == found))
    return await session.scalar(query.where(columns.reference == ref))


async def _first_time(session: AsyncSession, provider: str, event: ProviderEvent) -> bool:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table_of(PaymentEvent)).values(
        id=uuid.uuid4(), provider=provider, event_id=event.id, type=event.type, received_at=utcnow()
    )
    inserted = await session.execute(stmt.on_conflict_do_nothing())
    return bool(inserted.rowcount == 1)  # type: ignore[attr-defined]


def parse(
    ctx: PaymentsContext,
    provider: str,
    body: bytes,
    headers: Mapping[str, str],
    client_ip: str | None,
) -> ProviderEvent:
    """Verify and parse a delivery.

    Raises ProviderNotFound (404) for a provider not enabled; InvalidSignatureError (400
    ``invalid_signature``, logged as a security event) for a bad or missing signature."""
    found = ctx.provider(provider)
    try:
        return found.parse_event(body, headers)
    except InvalidSignature as exc:
        security_event(
            "input_validation_fail",
            client_ip=client_ip,
            reason="invalid_signature",
            provider=provider,
            detail=str(exc),
        )
        raise InvalidSignatureError("The event's signature is missing or wrong.") from exc


async def apply_event(
    session: AsyncSession, ctx: PaymentsContext, provider: str, event: ProviderEvent
) -> bool:
    """Apply a verified event once, in the caller's transaction; returns whether it was
    recorded (False: a duplicate, an unknown target, or a type Emporium does not use)."""
    actor = system("webhook")
    if event.intent is not None:
        intent = event.intent
        payment_id = await _target(
            session, provider, table_of(Payment), PAYMENT_ID_KEY, intent.metadata, intent.reference
        )
        if payment_id is None:
            log.info("payment_event_unknown_payment", provider=provider, event_id=event.id)
            return False
        if not await _first_time(session, provider, event):
            return False
        await apply_intent(session, ctx.vault, payment_id, intent, actor)
        return True
    if event.refund is not None:
        refund = event.refund
        refund_id = await _target(
            session, provider, table_of(Refund), REFUND_ID_KEY, refund.metadata, refund.reference
        )
        if refund_id is None:
            log.info("payment_event_unknown_refund", provider=provider, event_id=event.id)
            return False
        if not await _first_time(session, provider, event):
            return False
        await apply_refund(session, ctx.vault, refund_id, refund, actor)
        return True
    return False
