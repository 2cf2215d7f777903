"""Signing in and staying signed in: log in, refresh, log out, list and revoke sessions.

A session is one device's sign-in. It hands out a short-lived JWT access token (RFC 7519,
pinned HS256, ``kid``) and an opaque 256-bit refresh token stored only as a hash. Each
refresh token works once; presenting a used one again means it was stolen or replayed, and
the whole session is revoked (OWASP ASVS 3.5, RFC 9700 section 4.14 refresh token
rotation). Sessions end after an idle and an absolute timeout, shorter for staff.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.exceptions import (
    AccountNotFound,
    SessionEnded,
    SessionNotFound,
    TokenReused,
)
from emporium.accounts.identity import Identity
from emporium.accounts.models import AuthSession, RefreshToken, UserAccount
from emporium.accounts.protect import AccountsContext
from emporium.accounts.schemas import SessionRead, TokenPair, UserSessionRead
from emporium.accounts.timeouts import session_live, timeout_kind
from emporium.accounts.tokens import hash_opaque_token, issue_access_token, new_opaque_token
from emporium.audit.chain import record_audit
from emporium.core.clock import utcnow
from emporium.core.security_events import security_event

REFRESH_PURPOSE = "refresh"


async def _issue(
    session: AsyncSession, ctx: AccountsContext, auth: AuthSession, roles: list[str]
) -> TokenPair:
    """A new refresh token row and access token for ``auth``."""
    refresh = new_opaque_token()
    session.add(
        RefreshToken(
            id=uuid.uuid4(),
            session_id=auth.id,
            token_hash=hash_opaque_token(refresh, purpose=REFRESH_PURPOSE),
            created_at=utcnow(),
        )
    )
    ttl = timedelta(minutes=ctx.access_token_minutes)
    access, _ = issue_access_token(
        keys=ctx.jwt_keys,
        active_kid=ctx.active_jwt_kid,
        subject=str(auth.user_id),
        session_id=str(auth.id),
        roles=roles,
        issuer=ctx.issuer,
        audience=ctx.audience,
        ttl=ttl,
        now=utcnow(),
    )
    await session.flush()
    return TokenPair(
        access_token=access, refresh_token=refresh, expires_in=int(ttl.total_seconds())
    )


async def open_session(
    session: AsyncSession,
    ctx: AccountsContext,
    user: UserAccount,
    *,
    device: str,
    ip: str | None,
    mfa: bool = False,
) -> TokenPair:
    """Start a session for ``user`` (whose credentials were checked) and issue its tokens;
    ``mfa`` records that the sign-in used a second factor (needed for staff operations)."""
    now = utcnow()
    kind = timeout_kind(user.roles)
    auth = AuthSession(
        id=uuid.uuid4(),
        user_id=user.id,
        device=device[:200],
        created_at=now,
        last_used_at=now,
        idle_expires_at=now + timedelta(minutes=ctx.idle_minutes[kind]),
        expires_at=now + timedelta(minutes=ctx.absolute_minutes[kind]),
        mfa_verified=mfa,
    )
    auth.ip_enc = ctx.vault.seal_column(AuthSession.ip_enc, auth.id, ip)
    session.add(auth)
    await session.flush()
    return await _issue(session, ctx, auth, list(user.roles))


def session_is_live(ctx: AccountsContext, auth: AuthSession, roles: list[str]) -> bool:
    """True while the session is neither revoked nor past its timeouts for ``roles``."""
    return session_live(
        ctx,
        now=utcnow(),
        roles=roles,
        created_at=auth.created_at,
        last_used_at=auth.last_used_at,
        expires_at=auth.expires_at,
        idle_expires_at=auth.idle_expires_at,
        revoked_at=auth.revoked_at,
    )


async def refresh(
    session: AsyncSession, ctx: AccountsContext, token: str, *, ip: str | None = None
) -> TokenPair:
    """Exchange a refresh token for a new pair; the presented one dies.

    Raises:
        TokenReused: (401 ``token_reused``) the token was already used; the session is
            revoked and stays revoked (the error keeps the transaction's changes).
        SessionEnded: (401 ``session_ended``) unknown token, or the session is over.
    """
    row = await session.scalar(
        select(RefreshToken).where(
            RefreshToken.token_hash == hash_opaque_token(token, purpose=REFRESH_PURPOSE)
        )
    )
    auth = await session.get(AuthSession, row.session_id) if row else None
    if row is None or auth is None:
        raise SessionEnded("The refresh token is not valid.")
    claimed = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None))
        .values(used_at=utcnow())
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        _revoke(auth, "refresh_token_reused")
        await session.flush()
        security_event(
            "authn_token_reuse", user_id=auth.user_id, client_ip=ip, kind="refresh_token"
        )
        raise TokenReused("This refresh token was already used; the session is revoked.")
    user = await session.get(UserAccount, auth.user_id)
    if user is None or not user.is_active or not session_is_live(ctx, auth, list(user.roles)):
        raise SessionEnded("The session has ended.")
    now = utcnow()
    auth.last_used_at = now
    idle = timedelta(minutes=ctx.idle_minutes[timeout_kind(user.roles)])
    auth.idle_expires_at = min(now + idle, auth.expires_at)
    return await _issue(session, ctx, auth, list(user.roles))


def _revoke(auth: AuthSession, reason: str) -> None:
    if auth.revoked_at is None:
        auth.revoked_at = utcnow()
        auth.revoked_reason = reason


async def logout(session: AsyncSession, identity: Identity) -> None:
    """End the caller's session: its access and refresh tokens stop working everywhere."""
    auth = await session.get(AuthSession, identity.session_id)
    if auth is not None:
        _revoke(auth, "logout")
        await session.flush()


async def revoke_all(
    session: AsyncSession, user_id: uuid.UUID, *, reason: str, keep: uuid.UUID | None = None
) -> None:
    """Revoke every live session of a user (except ``keep``)."""
    stmt = select(AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
    )
    for auth in await session.scalars(stmt):
        if auth.id != keep:
            _revoke(auth, reason)
    await session.flush()


async def list_sessions(
    session: AsyncSession, ctx: AccountsContext, identity: Identity
) -> list[SessionRead]:
    """The caller's live sessions, newest first, with the address each signed in from."""
    stmt = (
        select(AuthSession)
        .where(AuthSession.user_id == identity.user_id, AuthSession.revoked_at.is_(None))
        .order_by(AuthSession.created_at.desc())
    )
    return [
        SessionRead(
            id=a.id,
            device=a.device,
            ip=ctx.vault.open_column(AuthSession.ip_enc, a.id, a.ip_enc),
            created_at=a.created_at,
            last_used_at=a.last_used_at,
            current=a.id == identity.session_id,
        )
        for a in await session.scalars(stmt)
        if session_is_live(ctx, a, list(identity.roles))
    ]


async def revoke_session(session: AsyncSession, identity: Identity, session_id: uuid.UUID) -> None:
    """Revoke one of the caller's own sessions. Another user's session answers 404."""
    auth = await session.get(AuthSession, session_id)
    if auth is None or auth.user_id != identity.user_id or auth.revoked_at is not None:
        raise SessionNotFound("No such session.")
    _revoke(auth, "revoked_by_user")
    await session.flush()


async def _account(session: AsyncSession, user_id: uuid.UUID) -> UserAccount:
    user = await session.get(UserAccount, user_id)
    if user is None:
        raise AccountNotFound("No such user.")
    return user


async def admin_list_sessions(
    session: AsyncSession, ctx: AccountsContext, user_id: uuid.UUID
) -> list[UserSessionRead]:
    """Admin: a user's live sessions, newest first (device, created, last used; no tokens,
    no address). Audited as ``user.sessions_listed`` in the same transaction.
    Raises AccountNotFound (404)."""
    user = await _account(session, user_id)
    stmt = (
        select(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .order_by(AuthSession.created_at.desc())
    )
    live = [
        UserSessionRead(
            id=a.id, device=a.device, created_at=a.created_at, last_used_at=a.last_used_at
        )
        for a in await session.scalars(stmt)
        if session_is_live(ctx, a, list(user.roles))
    ]
    await record_audit(
        session,
        action="user.sessions_listed",
        object_type="user",
        object_id=user_id,
        details={"sessions": [str(s.id) for s in live]},
    )
    return live


async def admin_revoke_session(
    session: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID
) -> None:
    """Admin: end one of a user's sessions (its access and refresh tokens stop working).
    Audited as ``user.session_revoked`` in the same transaction. Raises AccountNotFound
    (404) for no such user and SessionNotFound (404) for no such live session of theirs."""
    await _account(session, user_id)
    auth = await session.get(AuthSession, session_id)
    if auth is None or auth.user_id != user_id or auth.revoked_at is not None:
        raise SessionNotFound("No such session.")
    _revoke(auth, "revoked_by_admin")
    await session.flush()
    await record_audit(
        session,
        action="user.session_revoked",
        object_type="user",
        object_id=user_id,
        details={"session_id": str(session_id)},
    )
