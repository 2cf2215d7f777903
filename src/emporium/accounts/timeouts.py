"""When a session ends: revoked, or past its idle or absolute timeout for the roles the
user holds now (a customer promoted to staff gets staff timeouts on the next request)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from emporium.accounts.models import is_staff_roles
from emporium.accounts.protect import AccountsContext


def timeout_kind(roles: Iterable[str]) -> str:
    """``"staff"`` for staff and admins, else ``"customer"`` (selects the timeouts)."""
    return "staff" if is_staff_roles(roles) else "customer"


def session_live(
    ctx: AccountsContext,
    *,
    now: datetime,
    roles: Iterable[str],
    created_at: datetime,
    last_used_at: datetime,
    expires_at: datetime,
    idle_expires_at: datetime,
    revoked_at: datetime | None,
) -> bool:
    """True while the session is neither revoked nor past the timeouts (OWASP ASVS 3.3)."""
    kind = timeout_kind(roles)
    absolute = created_at + timedelta(minutes=ctx.absolute_minutes[kind])
    idle = last_used_at + timedelta(minutes=ctx.idle_minutes[kind])
    return (
        revoked_at is None and now < min(expires_at, absolute) and now < min(idle_expires_at, idle)
    )
