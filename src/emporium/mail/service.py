"""Send an e-mail at most once per logical message, as far as a crash allows.

:func:`send_once` records the message (its fixed Message-ID) before the first attempt and
``sent_at`` after a successful one. A retry of a message already recorded as sent does
nothing. The one window left is a crash after the server accepted the message and before
``sent_at`` committed: the retry sends it again with the same Message-ID, which receivers
and mail clients treat as the same message (docs/adr/0009-jobs-outbox-webhooks.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from emporium.core.clock import utcnow
from emporium.core.db.base import for_session, per_dialect, table_of
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


_MAIL = table_of(MailMessage)
_RECORD = per_dialect(  # built once; the values are bound at each execution
    lambda dialect: (
        dialect.insert(_MAIL)
        .on_conflict_do_nothing()
        .returning(_MAIL.c.id, _MAIL.c.message_id, _MAIL.c.sent_at)
    )
)
_RECORDED = select(_MAIL.c.id, _MAIL.c.message_id, _MAIL.c.sent_at).where(
    _MAIL.c.dedupe_key == bindparam("key", type_=_MAIL.c.dedupe_key.type)
)
_MARK_SENT = (
    update(_MAIL)
    .where(_MAIL.c.id == bindparam("record_id", type_=_MAIL.c.id.type))
    .values(sent_at=bindparam("now", type_=_MAIL.c.sent_at.type))
)


@dataclass(frozen=True)
class Recorded:
    """A message's record: its row id, its fixed Message-ID, and when it was sent (None:
    not yet)."""

    id: uuid.UUID
    message_id: str
    sent_at: datetime | None

    async def mark_sent(self, session: AsyncSession) -> None:
        """Record in ``session``'s transaction that the message was sent (now)."""
        await session.execute(_MARK_SENT, {"record_id": self.id, "now": utcnow()})


async def record_message(
    session: AsyncSession, *, key: str, template: str, sender: str
) -> Recorded:
    """The record of message ``key``, made now in ``session``'s transaction unless it exists
    (one ``INSERT ... ON CONFLICT DO NOTHING RETURNING``; a read only for a retried message).
    A handler that reads its recipient records the message in the same transaction."""
    values = {
        "id": uuid.uuid4(),
        "dedupe_key": key,
        "message_id": message_id_for(key, sender),
        "template": template,
        "created_at": utcnow(),
    }
    row = (await session.execute(for_session(_RECORD, session), values)).first()
    if row is None:  # recorded by an earlier attempt
        row = (await session.execute(_RECORDED, {"key": key})).one()
    return Recorded(row[0], row[1], row[2])


async def send_recorded(
    transport: Transport,
    recorded: Recorded,
    *,
    template: str,
    context: dict[str, Any],
    to: str,
    sender: str,
) -> bool:
    """Send the ``recorded`` message (``template`` to ``to``) unless it was sent already;
    returns whether it was sent now (the caller then commits ``recorded.mark_sent``).
    Raises as :func:`send_once`."""
    if recorded.sent_at is not None:
        return False
    message = compose(template, context, to=to, sender=sender, message_id=recorded.message_id)
    try:
        await transport.send(message)
    except Exception:
        EMAILS_FAILED.labels(template).inc()
        raise
    EMAILS_SENT.labels(template).inc()
    return True


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
        recorded = await record_message(session, key=key, template=template, sender=sender)
    if not await send_recorded(
        transport, recorded, template=template, context=context, to=to, sender=sender
    ):
        return False
    async with sessionmaker() as session, session.begin():
        await recorded.mark_sent(session)
    return True
