"""Send an e-mail at most once per logical message, as far as a crash allows.

:func:`send_once` records the message (its fixed Message-ID) before the first attempt and
``sent_at`` after a successful one. A retry of a message already recorded as sent does
nothing. The one window left is a crash after the server accepted the message and before
``sent_at`` committed: the retry sends it again with the same Message-ID, which receivers
and mail clients treat as the same message (docs/adr/0009-jobs-outbox-webhooks.md).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy import select, update
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


async def _record(
    session: AsyncSession, key: str, template: str, sender: str
) -> tuple[uuid.UUID, str, datetime | None]:
    """The message's record ``(id, Message-ID, sent_at)``, made now unless it exists (one
    ``INSERT ... ON CONFLICT DO NOTHING RETURNING``; a read only for a retried message)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    values = {
        "id": uuid.uuid4(),
        "dedupe_key": key,
        "message_id": message_id_for(key, sender),
        "template": template,
        "created_at": utcnow(),
    }
    columns = (MailMessage.id, MailMessage.message_id, MailMessage.sent_at)
    insert = dialect.insert(MailMessage).values(values).on_conflict_do_nothing()
    row = (await session.execute(insert.returning(*columns))).first()
    if row is None:  # recorded by an earlier attempt
        row = (await session.execute(select(*columns).where(MailMessage.dedupe_key == key))).one()
    return row[0], row[1], row[2]


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
        record_id, message_id, sent_at = await _record(session, key, template, sender)
    if sent_at is not None:
        return False
    message = compose(template, context, to=to, sender=sender, message_id=message_id)
    try:
        await transport.send(message)
    except Exception:
        EMAILS_FAILED.labels(template).inc()
        raise
    EMAILS_SENT.labels(template).inc()
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(MailMessage)
            .where(MailMessage.id == record_id)
            .values(sent_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    return True
