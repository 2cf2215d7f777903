"""E-mails to account holders, sent by jobs from domain events, and account clean-ups.

Events carry ids, never addresses: each handler looks the account up when it runs and
opens the sealed e-mail address then, so an erased or deactivated account gets nothing.
Order events (``order.created``, ``order.paid``, ``order.cancelled``) carry
``customer_id``; security notices (``security.*``) carry ``user_id``. Every message is
keyed by its event and template (``mail.service.record_message``): a retried job never sends a
second, different e-mail.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.models import AccountToken, AuthSession, UserAccount
from emporium.accounts.protect import AccountsContext, Vault
from emporium.accounts.recovery import (
    RESET_EVENT,
    RESET_REQUEST_KIND,
    VERIFY_EVENT,
    handle_reset_request,
    open_token,
)
from emporium.accounts.service import PASSWORD_CHANGED_EVENT
from emporium.core.clock import utcnow
from emporium.core.config import Settings
from emporium.core.db.base import autocommit_session, table_of
from emporium.core.money import format_money
from emporium.jobs.registry import JobRun, Registry
from emporium.mail.service import record_message, send_recorded
from emporium.mail.transport import Transport

TEMPLATE_OF_EVENT = {
    VERIFY_EVENT: "verify_email",
    RESET_EVENT: "password_reset",
    PASSWORD_CHANGED_EVENT: "password_changed",
    "security.mfa_enabled": "mfa_enabled",
    "security.mfa_disabled": "mfa_disabled",
    "security.account_locked": "account_locked",
    "order.created": "order_confirmation",
    "order.paid": "order_paid",
    "order.cancelled": "order_cancelled",
}
CLEANUP_KIND = "accounts.cleanup"


def order_context(data: dict[str, Any]) -> dict[str, Any]:
    """The template context of an order e-mail from an ``order.*`` event's data: number,
    items and every total formatted in the order's currency."""
    currency = str(data.get("currency", ""))
    items = [
        {
            "title": item["title"],
            "sku": item["sku"],
            "quantity": item["quantity"],
            "unit_price": format_money(int(item["unit_price"]), currency),
            "line_total": format_money(int(item["line_total"]), currency),
        }
        for item in data.get("items", [])
    ]
    return {
        "number": str(data["number"]),
        "items": items,
        **{
            name: format_money(int(data.get(name, 0)), currency)
            for name in ("subtotal", "discount_total", "shipping_total", "tax_total")
        },
        "has_discount": int(data.get("discount_total", 0)) > 0,
        "prices_include_tax": bool(data.get("prices_include_tax", False)),
        "total": format_money(int(data["total"]), currency),
    }


def _context(
    template: str, data: dict[str, Any], ctx: AccountsContext, settings: Settings
) -> dict[str, Any]:
    if template in ("verify_email", "password_reset"):
        token = open_token(ctx, str(data["token_id"]), str(data["token_enc"]))
        page = "verify-email" if template == "verify_email" else "reset-password"
        # The token rides in the fragment: browsers never send it to a server or a Referer.
        link = f"{settings.storefront_url.rstrip('/')}/{page}#token={token}"
        return {"link": link, "minutes": settings.account_token_minutes}
    if template.startswith("order_"):
        return order_context(data)
    return {}


_USER = table_of(UserAccount).c
_RECIPIENT = select(_USER.is_active, _USER.email_enc, _USER.first_name_enc).where(
    _USER.id == bindparam("user_id", type_=_USER.id.type)
)


async def account_recipient(
    session: AsyncSession, vault: Vault, user_id: uuid.UUID
) -> tuple[str, str | None] | None:
    """The clear e-mail and first name to write to for an account; None when there is
    nobody to write to (no such account: erased or deleted; or deactivated). One read of
    three columns (no ORM object)."""
    row = (await session.execute(_RECIPIENT, {"user_id": user_id})).first()
    if row is None or not row.is_active:
        return None
    email = vault.open_column(UserAccount.email_enc, user_id, row.email_enc) or ""
    return email, vault.open_column(UserAccount.first_name_enc, user_id, row.first_name_enc)


def _mail_handler(
    template: str, ctx: AccountsContext, transport: Transport
) -> Callable[[JobRun], Any]:
    async def handle(run: JobRun) -> None:
        data: dict[str, Any] = run.payload["data"]
        if not (data.get("user_id") or data.get("customer_id")):
            return  # a guest's order: orders.guest_mail writes to the order's e-mail
        user_id = uuid.UUID(str(data.get("user_id") or data["customer_id"]))
        sender = run.settings.mail_from
        # the recipient and the record: two statements, neither needs the other's transaction
        async with autocommit_session(run.sessionmaker, run.settings) as session:
            found = await account_recipient(session, ctx.vault, user_id)
            if found is None:
                return  # erased, deleted or deactivated: nobody to write to
            email, first_name = found
            context = {"first_name": first_name, **_context(template, data, ctx, run.settings)}
            key = f"{run.payload['event_id']}:{template}"
            recorded = await record_message(session, key=key, template=template, sender=sender)
        sent = await send_recorded(
            transport,
            recorded,
            template=template,
            context=context,
            to=email,
            sender=sender,
        )
        if sent:  # sent_at commits with the job's result: no transaction of its own
            run.record_with_result(recorded.mark_sent)

    return handle


def _reset_request_handler(ctx: AccountsContext) -> Callable[[JobRun], Any]:
    async def handle(run: JobRun) -> None:
        minutes = run.settings.account_token_minutes
        async with run.sessionmaker() as session, session.begin():
            await handle_reset_request(session, ctx, run.payload, minutes=minutes)

    return handle


async def cleanup(run: JobRun) -> None:
    """Delete ended sessions (expired, idle-expired, or revoked a day ago; their refresh
    tokens go with them) and expired e-mail tokens."""
    now = utcnow()
    async with run.sessionmaker() as session, session.begin():
        await session.execute(
            delete(AuthSession).where(
                or_(
                    AuthSession.expires_at < now,
                    AuthSession.idle_expires_at < now,
                    AuthSession.revoked_at < now - timedelta(days=1),
                )
            )
        )
        await session.execute(delete(AccountToken).where(AccountToken.expires_at < now))


def for_an_account(data: dict[str, Any]) -> bool:
    """Whether an event names an account to write to (``user_id`` or ``customer_id``)."""
    return bool(data.get("user_id") or data.get("customer_id"))


def register(registry: Registry, ctx: AccountsContext, transport: Transport) -> None:
    """Register the account e-mails (one job kind per template, made for events that name
    an account), the password-reset requests and the hourly clean-up."""
    for event_type, template in TEMPLATE_OF_EVENT.items():
        kind = f"mail.{template}"
        registry.handle(kind, _mail_handler(template, ctx, transport))
        registry.subscribe(event_type, kind, when=for_an_account)
    registry.handle(RESET_REQUEST_KIND, _reset_request_handler(ctx))
    registry.handle(CLEANUP_KIND, cleanup)
    registry.every(CLEANUP_KIND, timedelta(hours=1))
