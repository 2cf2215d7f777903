"""Send an e-mail at most once per logical message, as far as a crash allows.

:func:`send_once` records the message (its fixed Message-ID) before the first attempt and
``sent_at`` after a successful one. A retry of a message already recorded as sent does
nothing. The one window left is a crash after the server accepted the message and before
``sent_at`` committed: the retry sends it again with the same Message-ID, which receivers
and mail clients treat as the same message (docs/adr/0009-jobs-outbox-webhooks.md).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from emporium.core.clock import utcnow
from emporium.mail.compose import compose, message_id_for
from emporium.mail.models import MailMessage
from emporium.mail.transport import Transport

EMAILS_SENT = Counter(
    "emporium_emails_sent_total", "E-mails the transport accepted, per template", ["template"]
)
EMAILS_FAILED = Counter(
    "emporium_email_failures_total",
    "E-mail attempts the transport refused or could not deliver (the job retries), per template",
    ["template"],
)


async def _record(session: AsyncSession, key: str, template: str, sender: str) -> MailMessage:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    values = {
        "dedupe_key": key,
        "message_id": message_id_for(key, sender),
        "template": template,
        "created_at": utcnow(),
    }
    await session.execute(dialect.insert(MailMessage).values(values).on_conflict_do_nothing())
    row = await session.scalar(select(MailMessage).where(MailMessage.dedupe_key == key))
    assert row is not None
    return row


async def send_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    transport: Transport,
    *,
    key: str,
    template: str,
    context: dict[str, Any],
    to: str,
    sender: str,
) -> bool:
    """Send ``template`` to ``to`` unless the message ``key`` was sent already; returns
    whether it was sent now. Raises whatever the transport raises (the job retries) and
    UnsafeHeader for an address that would inject headers."""
    async with sessionmaker() as session, session.begin():
        record = await _record(session, key, template, sender)
    if record.sent_at is not None:
        return False
    message = compose(template, context, to=to, sender=sender, message_id=record.message_id)
    try:
        await transport.send(message)
    except Exception:
        EMAILS_FAILED.labels(template).inc()
        raise
    EMAILS_SENT.labels(template).inc()
    async with sessionmaker() as session, session.begin():
        stored = await session.get(MailMessage, record.id)
        if stored is not None:
            stored.sent_at = utcnow()
    return True
