"""Brute-force protection of sign-in: failed attempts counted per account and per client
address, a progressive delay, then a temporary lock (OWASP ASVS 2.2.1, NIST SP 800-63B
5.2.2: at most 100 failed attempts per account, never a permanent lock).

An account is keyed by the blind index of the e-mail that was tried, whether or not such an
account exists, so an unknown e-mail is slowed and locked exactly like a real one and the
answers reveal nothing. A client address is keyed by a keyed hash (addresses are personal
data). While a key is slowed or locked, attempts are refused with the same
``invalid_credentials`` answer, after the same password-hashing work, without looking at the
password; refused attempts are not counted, so a flood does not lengthen a lock.

Counters live in the database (``login_throttle``), so every server node sees them.
Time comes from :func:`utcnow` of this module (the clock seam tests move).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.models import LoginThrottle
from emporium.core.clock import utcnow
from emporium.core.config import Settings
from emporium.core.crypto.keys import KeyRing
from emporium.core.crypto.sealing import blind_index

ACCOUNT = "acct:"
ADDRESS = "ip:"
IP_INDEX_PURPOSE = "login_throttle.ip"


@dataclass(frozen=True)
class LoginPolicy:
    """Thresholds of the throttle (settings ``EMPORIUM_LOGIN_*``)."""

    delay_after: int = 3
    delay_seconds: float = 1.0
    delay_max_seconds: float = 30.0
    lock_after: int = 10
    lock_minutes: int = 15
    window_minutes: int = 60
    ip_lock_after: int = 100

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginPolicy:
        """The policy configured by ``settings``."""
        return cls(
            delay_after=settings.login_delay_after_failures,
            delay_seconds=settings.login_delay_seconds,
            delay_max_seconds=settings.login_delay_max_seconds,
            lock_after=settings.login_lock_after_failures,
            lock_minutes=settings.login_lock_minutes,
            window_minutes=settings.login_failure_window_minutes,
            ip_lock_after=settings.login_ip_lock_after_failures,
        )

    def delay(self, failures: int) -> timedelta:
        """How long after the last failure the next attempt waits: nothing below
        ``delay_after`` failures, then ``delay_seconds`` doubling per failure, capped."""
        if failures < self.delay_after:
            return timedelta()
        seconds = self.delay_seconds * 2 ** min(failures - self.delay_after, 30)
        return timedelta(seconds=min(seconds, self.delay_max_seconds))


def account_key(email_index: str) -> str:
    """The throttle key of an account (the blind index of its normalised e-mail)."""
    return ACCOUNT + email_index


def address_key(ring: KeyRing, ip: str | None) -> str | None:
    """The throttle key of a client address, or None when the address is unknown."""
    return None if not ip else ADDRESS + blind_index(ring, ip, purpose=IP_INDEX_PURPOSE)


def _blocked(policy: LoginPolicy, row: LoginThrottle, now: datetime) -> str | None:
    if row.last_failure_at < now - timedelta(minutes=policy.window_minutes):
        return None  # the failures are old: forgotten
    if row.locked_until is not None and row.locked_until > now:
        return "locked"
    if row.key.startswith(ACCOUNT) and now < row.last_failure_at + policy.delay(row.failures):
        return "slowed"
    return None


async def refusal(session: AsyncSession, policy: LoginPolicy, keys: list[str]) -> str | None:
    """``"locked"`` or ``"slowed"`` when an attempt for ``keys`` must be refused now, else
    None (the attempt may be checked)."""
    now = utcnow()
    rows = await session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys)))
    reasons = {_blocked(policy, row, now) for row in rows} - {None}
    return "locked" if "locked" in reasons else next(iter(reasons), None)


async def record_failure(session: AsyncSession, policy: LoginPolicy, keys: list[str]) -> list[str]:
    """Count one failed attempt against each of ``keys``; returns the keys this failure
    locked (so the caller can log ``authn_login_lock``)."""
    now = utcnow()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    newly_locked = []
    for key in keys:
        await session.execute(
            insert(LoginThrottle)
            .values(key=key, failures=0, first_failure_at=now, last_failure_at=now)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        row = await session.scalar(
            select(LoginThrottle)
            .where(LoginThrottle.key == key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert row is not None  # inserted just above
        if row.last_failure_at < now - timedelta(minutes=policy.window_minutes):
            row.failures, row.first_failure_at = 0, now
        row.failures += 1
        row.last_failure_at = now
        limit = policy.lock_after if key.startswith(ACCOUNT) else policy.ip_lock_after
        still_locked = row.locked_until is not None and row.locked_until > now
        if row.failures >= limit and not still_locked:
            row.locked_until = now + timedelta(minutes=policy.lock_minutes)
            newly_locked.append(key)
    await session.flush()
    return newly_locked


async def forget_failures(session: AsyncSession, key: str) -> None:
    """A successful sign-in of an account clears its counter (not its address's)."""
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
