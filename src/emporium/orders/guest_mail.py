"""E-mails about guests' orders (no account): the confirmation, the payment received
(``order.paid``: the order is paid) and the cancellation.

Events carry ids, never addresses: the job reads the order's sealed e-mail when it runs.
Customers' order e-mails go to the account (``accounts.notifications``); these handlers
leave those alone. Each message is keyed by its event and template (``mail.service.
record_message``): a retried job never sends a second e-mail.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from emporium.accounts.notifications import order_context
from emporium.accounts.protect import AccountsContext
from emporium.core.db.base import autocommit_session
from emporium.jobs.registry import JobRun, Registry
from emporium.mail.service import record_message, send_recorded
from emporium.mail.transport import Transport
from emporium.orders.queries import order_email

TEMPLATE_OF_EVENT = {
    "order.created": "order_confirmation",
    "order.paid": "order_paid",
    "order.cancelled": "order_cancelled",
}


def _handler(template: str, ctx: AccountsContext, transport: Transport) -> Callable[[JobRun], Any]:
    async def handle(run: JobRun) -> None:
        data: dict[str, Any] = run.payload["data"]
        if data.get("customer_id"):
            return  # a customer's order: the account's e-mail gets it
        order_id = uuid.UUID(str(data["order_id"]))
        sender = run.settings.mail_from
        # the address and the record: two statements, neither needs the other's transaction
        async with autocommit_session(run.sessionmaker, run.settings) as session:
            email = await order_email(session, ctx.vault, order_id)
            if not email:
                return  # no such order any more, or no e-mail recorded
            key = f"{run.payload['event_id']}:{template}"
            recorded = await record_message(session, key=key, template=template, sender=sender)
        sent = await send_recorded(
            transport,
            recorded,
            template=template,
            context={"first_name": None, **order_context(data)},
            to=email,
            sender=sender,
        )
        if sent:  # sent_at commits with the job's result: no transaction of its own
            run.record_with_result(recorded.mark_sent)

    return handle


def for_a_guest(data: dict[str, Any]) -> bool:
    """Whether an ``order.*`` event is about a guest's order (no customer account)."""
    return not data.get("customer_id")


def register(registry: Registry, ctx: AccountsContext, transport: Transport) -> None:
    """Register the guest order e-mails (one job kind per template, ``mail.guest_*``), made
    for guests' orders only."""
    for event_type, template in TEMPLATE_OF_EVENT.items():
        kind = f"mail.guest_{template}"
        registry.handle(kind, _handler(template, ctx, transport))
        registry.subscribe(event_type, kind, when=for_a_guest)
