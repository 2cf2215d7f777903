"""Account verbs: register, profiles, password changes, erasure, and admin management.

Personal data passes through ``Vault`` on its way in and out; the database only ever sees
ciphertext and the e-mail's blind index.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from emporium.accounts.exceptions import (
    AccountNotFound,
    EmailTaken,
    InvalidCredentials,
    WeakPassword,
)
from emporium.accounts.identity import Identity
from emporium.accounts.masking import PERSONAL_FIELDS, masked, present_fields
from emporium.accounts.models import Address, AuthSession, MfaChallenge, RecoveryCode, UserAccount
from emporium.accounts.passwords import password_problems
from emporium.accounts.protect import AccountsContext, Vault
from emporium.accounts.schemas import (
    PasswordChangeIn,
    ProfileUpdate,
    RegisterIn,
    UserAdminUpdate,
    UserCreate,
    UserPage,
    UserRead,
)
from emporium.accounts.sessions import revoke_all
from emporium.audit.chain import record_audit
from emporium.core.clock import utcnow
from emporium.core.db.pagination import by_created_at, created_at_cursor
from emporium.jobs.outbox import emit_event

_PERSONAL = ("first_name", "last_name", "phone")
USER_CREATED_EVENT = "user.created"
PASSWORD_CHANGED_EVENT = "security.password_changed"  # noqa: S105 - an event name


def _column(name: str) -> InstrumentedAttribute[str | None]:
    """The sealed ``UserAccount`` column holding ``name`` (``email``, ``phone``...)."""
    column: InstrumentedAttribute[str | None] = getattr(UserAccount, f"{name}_enc")
    return column


def _user_created(session: AsyncSession, user: UserAccount) -> None:
    """Emit ``user.created`` (ids and roles only: no personal data in events)."""
    data = {"user_id": str(user.id), "roles": list(user.roles)}
    emit_event(session, USER_CREATED_EVENT, {**data, "created_at": user.created_at.isoformat()})


def user_read(vault: Vault, user: UserAccount) -> UserRead:
    """The API shape of a user, decrypted."""

    def field(column: str) -> str | None:
        return vault.open_column(_column(column), user.id, getattr(user, f"{column}_enc"))

    return UserRead(
        id=user.id,
        email=field("email") or "",
        first_name=field("first_name"),
        last_name=field("last_name"),
        phone=field("phone"),
        roles=list(user.roles),
        is_active=user.is_active,
        mfa_enabled=user.mfa_enabled,
        email_verified=user.email_verified,
        created_at=user.created_at,
    )


async def check_password(password: str, *, email: str, names: tuple[str | None, ...] = ()) -> None:
    """Apply the password policy (in a thread: rating a long password takes up to ~0.1 s).

    Raises WeakPassword (422 ``weak_password``).
    """
    inputs = [email, *(n for n in names if n)]
    problems = await asyncio.to_thread(password_problems, password, user_inputs=inputs)
    if problems:
        raise WeakPassword(
            "The password is too weak.",
            errors=[{"loc": ["body", "password"], "msg": p} for p in problems],
        )


async def create_account(
    session: AsyncSession,
    ctx: AccountsContext,
    *,
    email: str,
    roles: Sequence[str],
    password_hash: str | None = None,
    names: Mapping[str, str | None] | None = None,
    external_ref: str | None = None,
) -> UserAccount:
    """Store a new account (personal data sealed). Raises EmailTaken (409)."""
    names = dict(names or {})
    index = ctx.vault.email_index(email)
    if await session.scalar(select(UserAccount.id).where(UserAccount.email_index == index)):
        raise EmailTaken("An account with this e-mail exists.")
    user = UserAccount(
        id=uuid.uuid4(),
        email_index=index,
        password_hash=password_hash,
        roles=roles,
        is_active=True,
        email_verified=False,
        mfa_enabled=False,
        external_ref=external_ref,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    user.email_enc = ctx.vault.seal_column(UserAccount.email_enc, user.id, email.strip()) or ""
    for column in _PERSONAL:
        setattr(
            user,
            f"{column}_enc",
            ctx.vault.seal_column(_column(column), user.id, names.get(column)),
        )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent registration with the same e-mail
        raise EmailTaken("An account with this e-mail exists.") from exc
    return user


async def register(session: AsyncSession, ctx: AccountsContext, data: RegisterIn) -> UserRead:
    """Create a customer account. Raises EmailTaken (409), WeakPassword (422)."""
    await check_password(data.password, email=data.email, names=(data.first_name, data.last_name))
    user = await create_account(
        session,
        ctx,
        email=data.email,
        roles=["customer"],
        password_hash=await ctx.hasher.hash(data.password),
        names={"first_name": data.first_name, "last_name": data.last_name, "phone": data.phone},
    )
    _user_created(session, user)
    return user_read(ctx.vault, user)


async def create_user(session: AsyncSession, ctx: AccountsContext, data: UserCreate) -> UserRead:
    """Admin: create a staff or admin account. Raises EmailTaken (409), WeakPassword (422)."""
    await check_password(data.password, email=data.email, names=(data.first_name, data.last_name))
    user = await create_account(
        session,
        ctx,
        email=data.email,
        roles=sorted(set(data.roles)),
        password_hash=await ctx.hasher.hash(data.password),
        names={"first_name": data.first_name, "last_name": data.last_name},
    )
    _user_created(session, user)
    await record_audit(
        session,
        action="user.created",
        object_type="user",
        object_id=user.id,
        details={"roles": list(user.roles)},
    )
    return user_read(ctx.vault, user)


async def _user(session: AsyncSession, user_id: uuid.UUID) -> UserAccount:
    user = await session.get(UserAccount, user_id)
    if user is None:
        raise AccountNotFound("No such user.")
    return user


async def get_profile(session: AsyncSession, ctx: AccountsContext, identity: Identity) -> UserRead:
    """The caller's own profile."""
    return user_read(ctx.vault, await _user(session, identity.user_id))


async def update_profile(
    session: AsyncSession, ctx: AccountsContext, identity: Identity, data: ProfileUpdate
) -> UserRead:
    """Change the caller's names or phone; nothing else can be set here."""
    user = await _user(session, identity.user_id)
    for column, value in msgspec.structs.asdict(data).items():
        if value is not msgspec.UNSET:
            setattr(user, f"{column}_enc", ctx.vault.seal_column(_column(column), user.id, value))
    user.updated_at = utcnow()
    await session.flush()
    return user_read(ctx.vault, user)


async def verify_own_password(
    session: AsyncSession, ctx: AccountsContext, identity: Identity, password: str
) -> UserAccount:
    """The caller's account, once ``password`` is confirmed. Raises InvalidCredentials."""
    user = await _user(session, identity.user_id)
    if not (await ctx.hasher.verify(user.password_hash, password)).ok:
        raise InvalidCredentials("The password is wrong.")
    return user


async def change_password(
    session: AsyncSession, ctx: AccountsContext, identity: Identity, data: PasswordChangeIn
) -> None:
    """Set a new password and revoke every other session (OWASP ASVS 3.3.3)."""
    user = await verify_own_password(session, ctx, identity, data.current_password)
    profile = user_read(ctx.vault, user)
    await check_password(
        data.new_password, email=profile.email, names=(profile.first_name, profile.last_name)
    )
    user.password_hash = await ctx.hasher.hash(data.new_password)
    user.updated_at = utcnow()
    await revoke_all(session, user.id, reason="password_changed", keep=identity.session_id)
    emit_event(session, PASSWORD_CHANGED_EVENT, {"user_id": str(user.id)})


async def set_password(
    session: AsyncSession, ctx: AccountsContext, email: str, password: str
) -> None:
    """Operator: set a user's password (imported accounts); revokes every session."""
    user = await session.scalar(
        select(UserAccount).where(UserAccount.email_index == ctx.vault.email_index(email))
    )
    if user is None:
        raise AccountNotFound("No account with that e-mail.")
    profile = user_read(ctx.vault, user)
    await check_password(password, email=email, names=(profile.first_name, profile.last_name))
    user.password_hash = await ctx.hasher.hash(password)
    await revoke_all(session, user.id, reason="password_set")
    emit_event(session, PASSWORD_CHANGED_EVENT, {"user_id": str(user.id)})


async def erase_me(
    session: AsyncSession, ctx: AccountsContext, identity: Identity, password: str
) -> None:
    """Erase the caller's personal data (GDPR art. 17): the account row is anonymised (kept
    for orders and reviews), addresses are deleted, every session is revoked, and each of
    ``ctx.erasure_steps`` runs in the same transaction (reviews lose the author's name, stored
    idempotent answers are deleted)."""
    user = await verify_own_password(session, ctx, identity, password)
    erased = f"erased-{user.id}@invalid"
    user.email_index = ctx.vault.email_index(erased)
    user.email_enc = ctx.vault.seal_column(UserAccount.email_enc, user.id, erased) or ""
    user.first_name_enc = user.last_name_enc = user.phone_enc = None
    user.totp_secret_enc, user.totp_last_step, user.mfa_enabled = None, None, False
    user.password_hash = None
    user.is_active = False
    user.updated_at = utcnow()
    for model in (Address, RecoveryCode, MfaChallenge):
        await session.execute(delete(model).where(model.user_id == user.id))
    # Sessions hold the sign-in IP address and the device: delete them, which also ends them.
    for auth in await session.scalars(select(AuthSession).where(AuthSession.user_id == user.id)):
        await session.delete(auth)
    for step in ctx.erasure_steps:
        await step(session, user.id)
    await session.flush()
    await record_audit(session, action="user.erased", object_type="user", object_id=user.id)


async def admin_update(
    session: AsyncSession, ctx: AccountsContext, user_id: uuid.UUID, data: UserAdminUpdate
) -> UserRead:
    """Admin: change roles or deactivate; deactivation revokes every session at once."""
    user = await _user(session, user_id)
    before = {"roles": list(user.roles), "is_active": user.is_active}
    if data.roles is not msgspec.UNSET:
        user.roles = sorted(set(data.roles))
    if data.is_active is not msgspec.UNSET:
        user.is_active = data.is_active
        if not data.is_active:
            await revoke_all(session, user.id, reason="deactivated")
    user.updated_at = utcnow()
    await session.flush()
    after = {"roles": list(user.roles), "is_active": user.is_active}
    changed = sorted(name for name in after if after[name] != before[name])
    await record_audit(
        session,
        action="user.updated",
        object_type="user",
        object_id=user.id,
        details={"changed": changed, "before": before, "after": after},
    )
    return masked(user_read(ctx.vault, user))


async def admin_get(
    session: AsyncSession, ctx: AccountsContext, user_id: uuid.UUID, *, reveal: bool = False
) -> UserRead:
    """Admin: one account, its personal fields masked (``accounts.masking``) unless
    ``reveal``. Either read is audited once: ``user.viewed`` (masked) or
    ``user.personal_data_revealed``, naming the non-empty fields shown, never their values.
    Raises AccountNotFound (404)."""
    profile = user_read(ctx.vault, await _user(session, user_id))
    fields = present_fields(profile)
    action = "user.personal_data_revealed" if reveal else "user.viewed"
    details: dict[str, object] = (
        {"fields": fields} if reveal else {"fields": fields, "masked": True}
    )
    await record_audit(
        session, action=action, object_type="user", object_id=user_id, details=details
    )
    return profile if reveal else masked(profile)


async def admin_list(
    session: AsyncSession, ctx: AccountsContext, *, limit: int, cursor: str | None
) -> UserPage:
    """Admin: accounts, oldest first, as a keyset page, personal fields masked
    (``accounts.masking``); the listing is audited once (``user.listed``, with the ids)."""
    stmt = by_created_at(
        select(UserAccount), "created_at", UserAccount.created_at, UserAccount.id, cursor
    )
    users = list(await session.scalars(stmt.limit(limit + 1)))
    items = [masked(user_read(ctx.vault, u)) for u in users[:limit]]
    more = len(users) > limit
    await record_audit(
        session,
        action="user.listed",
        object_type="user",
        details={
            "user_ids": [str(u.id) for u in items],
            "fields": list(PERSONAL_FIELDS),
            "masked": True,
        },
    )
    return UserPage(items=items, next_cursor=created_at_cursor(items, more, "created_at"))
