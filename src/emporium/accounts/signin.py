"""Signing in: the password step, the brute-force throttle, and the MFA step.

``POST /auth/login`` checks the password (after the throttle allowed the attempt). Without
MFA it opens a session; with MFA it answers ``{mfa_required: true, mfa_token}`` and the
session opens only at ``POST /auth/login/mfa`` with a TOTP or recovery code. The
``mfa_token`` is 256 random bits, stored hashed, single-use, valid a few minutes, and dies
after a few wrong codes; wrong codes also count against the account's throttle, so the
second factor cannot be brute-forced either. A password reset or an operator setting a
password changes nothing here: MFA is a property of the account, asked at every sign-in.
Time comes from :func:`utcnow` of this module (the clock seam tests move).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts import throttle
from emporium.accounts.exceptions import LoginFailed, MfaCodeRejected, MfaTokenInvalid
from emporium.accounts.mfa import accept_second_factor
from emporium.accounts.models import MfaChallenge, UserAccount
from emporium.accounts.protect import AccountsContext
from emporium.accounts.schemas import LoginIn, LoginMfaIn, MfaChallengeRead, TokenPair
from emporium.accounts.sessions import open_session
from emporium.accounts.tokens import hash_opaque_token, new_opaque_token
from emporium.core.clock import utcnow
from emporium.core.security_events import security_event
from emporium.jobs.outbox import emit_event

CHALLENGE_PURPOSE = "mfa_challenge"
CHALLENGE_MAX_FAILURES = 5
_FAILED = "The e-mail or the password is wrong."


async def _fail(
    session: AsyncSession,
    ctx: AccountsContext,
    keys: list[str],
    *,
    user_id: uuid.UUID | None,
    ip: str | None,
    reason: str,
) -> None:
    """Count a failure, log it (and any lock it caused)."""
    locked = await throttle.record_failure(session, ctx.login_policy, keys)
    account = keys[0][len(throttle.ACCOUNT) :][:16]
    security_event(
        "authn_login_fail", user_id=user_id, client_ip=ip, reason=reason, account=account
    )
    for key in locked:
        kind = "account" if key.startswith(throttle.ACCOUNT) else "client_ip"
        security_event(
            "authn_login_lock", user_id=user_id, client_ip=ip, locked=kind, account=account
        )
        if kind == "account" and user_id is not None:  # tell the owner (e-mail job)
            emit_event(session, "security.account_locked", {"user_id": str(user_id)})


async def login(
    session: AsyncSession, ctx: AccountsContext, data: LoginIn, *, device: str, ip: str | None
) -> TokenPair | MfaChallengeRead:
    """Check e-mail and password; open a session, or an MFA challenge when MFA is on.

    An unknown e-mail pays for a password verification (a dummy hash) and is throttled like
    a real account, so unknown, wrong, inactive, slowed and locked all answer the same, in
    similar time (OWASP ASVS 2.2.1, 3.2; NIST SP 800-63B 5.2.2).

    Raises:
        LoginFailed: (401 ``invalid_credentials``; the failure is counted).
    """
    index = ctx.vault.email_index(data.email)
    keys = [throttle.account_key(index)]
    address = throttle.address_key(ctx.vault.ring, ip)
    keys += [address] if address else []
    refused = await throttle.refusal(session, ctx.login_policy, keys)
    user = await session.scalar(select(UserAccount).where(UserAccount.email_index == index))
    if refused is not None:
        await ctx.hasher.verify(None, data.password)  # same work as a real check
        security_event(
            "authn_login_fail",
            user_id=user.id if user else None,
            client_ip=ip,
            reason=refused,
            account=index[:16],
        )
        raise LoginFailed(_FAILED)
    result = await ctx.hasher.verify(user.password_hash if user else None, data.password)
    if user is None or not result.ok or not user.is_active:
        await _fail(session, ctx, keys, user_id=user.id if user else None, ip=ip, reason="password")
        raise LoginFailed(_FAILED)
    if result.needs_rehash:
        user.password_hash = await ctx.hasher.hash(data.password)
    if user.mfa_enabled:
        return await _challenge(session, ctx, user)
    await throttle.forget_failures(session, keys[0])
    security_event("authn_login_success", user_id=user.id, client_ip=ip, level="info")
    return await open_session(session, ctx, user, device=device, ip=ip)


async def _challenge(
    session: AsyncSession, ctx: AccountsContext, user: UserAccount
) -> MfaChallengeRead:
    token = new_opaque_token("emp_mfa_")
    now = utcnow()
    session.add(
        MfaChallenge(
            id=uuid.uuid4(),
            user_id=user.id,
            token_hash=hash_opaque_token(token, purpose=CHALLENGE_PURPOSE),
            created_at=now,
            expires_at=now + timedelta(minutes=ctx.mfa_challenge_minutes),
            failures=0,
        )
    )
    await session.flush()
    return MfaChallengeRead(mfa_token=token)


async def login_mfa(
    session: AsyncSession, ctx: AccountsContext, data: LoginMfaIn, *, device: str, ip: str | None
) -> TokenPair:
    """The second sign-in step: a live ``mfa_token`` and a TOTP or unused recovery code.

    Raises:
        MfaTokenInvalid: (401 ``invalid_mfa_token``) unknown, expired, used or exhausted.
        MfaCodeRejected: (401 ``invalid_mfa_code``) wrong or replayed code (counted), or
            the account is locked by the throttle (same answer).
    """
    challenge = await session.scalar(
        select(MfaChallenge).where(
            MfaChallenge.token_hash == hash_opaque_token(data.mfa_token, purpose=CHALLENGE_PURPOSE)
        )
    )
    now = utcnow()
    user = await session.get(UserAccount, challenge.user_id) if challenge else None
    if (
        challenge is None
        or user is None
        or not user.is_active
        or not user.mfa_enabled
        or challenge.used_at is not None
        or challenge.expires_at <= now
        or challenge.failures >= CHALLENGE_MAX_FAILURES
    ):
        raise MfaTokenInvalid("The MFA token is not valid; sign in again.")
    keys = [throttle.account_key(user.email_index)]
    if await throttle.refusal(session, ctx.login_policy, keys) == "locked":
        security_event("authn_login_fail", user_id=user.id, client_ip=ip, reason="locked")
        raise MfaCodeRejected("The code is wrong or expired.")
    method = await accept_second_factor(session, ctx, user, data.code)
    if method is None:
        challenge.failures += 1
        await _fail(session, ctx, keys, user_id=user.id, ip=ip, reason="mfa_code")
        raise MfaCodeRejected("The code is wrong or expired.")
    claimed = await session.execute(
        update(MfaChallenge)
        .where(MfaChallenge.id == challenge.id, MfaChallenge.used_at.is_(None))
        .values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise MfaTokenInvalid("The MFA token is not valid; sign in again.")
    await throttle.forget_failures(session, keys[0])
    security_event(
        "authn_login_success", user_id=user.id, client_ip=ip, level="info", method=method
    )
    return await open_session(session, ctx, user, device=device, ip=ip, mfa=True)
