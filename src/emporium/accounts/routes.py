"""HTTP routes of accounts: authentication, the caller's own data, and admin management.

Every answer carries ``Cache-Control: no-store`` (personal data, OWASP ASVS 8.2.1).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Request, Router, delete, get, patch, post
from litestar.connection import ASGIConnection
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, QueryParameter

from emporium.accounts import addresses, recovery, service, sessions, signin
from emporium.accounts.audiences import ADMIN, PUBLIC, SIGNED_IN
from emporium.accounts.identity import Identity, client_ip, provide_identity
from emporium.accounts.protect import AccountsContext, provide_accounts
from emporium.accounts.schemas import (
    AddressIn,
    AddressRead,
    AddressUpdate,
    ForgotPasswordIn,
    LoginIn,
    MfaChallengeRead,
    PasswordChangeIn,
    PasswordIn,
    PersonalDataExport,
    ProfileUpdate,
    RefreshIn,
    RegisterIn,
    ResetPasswordIn,
    SessionRead,
    TokenPair,
    UserAdminUpdate,
    UserCreate,
    UserPage,
    UserRead,
    UserSessionRead,
    VerifyEmailIn,
)
from emporium.accounts.security_routes import SECURITY_ROUTERS
from emporium.core.config import SettingsDep
from emporium.core.db.pagination import DEFAULT_LIMIT, Cursor, Limit
from emporium.core.db.uow import DbSession
from emporium.core.errors import problem_responses
from emporium.core.http.ratelimit import rate_limit
from emporium.core.http.routing import audience_router

Ctx = NamedDependency[AccountsContext]
Me = NamedDependency[Identity]
NOT_FOUND = problem_responses(404)


def _device(request: Request[Any, Any, Any]) -> str:
    return request.headers.get("user-agent", "")[:200]


async def _login_account(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The counted subject of ``login_account``: the blind index of the e-mail tried (so
    guessing one account's password from many addresses is throttled too, and no e-mail
    is written to the counter store)."""
    if not isinstance(connection, Request):
        return None
    try:
        email = msgspec.json.decode(await connection.body()).get("email")
    except (msgspec.DecodeError, AttributeError):
        return None
    if not isinstance(email, str) or not email:
        return None
    accounts: AccountsContext = connection.app.state.accounts
    return "email:" + accounts.vault.email_index(email)


@post("/auth/register", guards=[rate_limit("register")], responses=problem_responses(409, 429))
async def register(
    session: DbSession, accounts: Ctx, settings: SettingsDep, data: JSONBody[RegisterIn]
) -> UserRead:
    """Create a customer account and e-mail a verification link (409 ``email_taken``, 422
    ``weak_password``)."""
    minutes = settings.account_token_minutes
    return await recovery.register_customer(session, accounts, data, minutes=minutes)


@post(
    "/auth/password/forgot",
    status_code=202,
    guards=[rate_limit("password_reset")],
    responses=problem_responses(429),
)
async def forgot_password(
    session: DbSession, accounts: Ctx, data: JSONBody[ForgotPasswordIn]
) -> None:
    """E-mail a single-use reset link; the answer, and the work behind it, are the same
    whether or not the e-mail belongs to an account."""
    await recovery.forgot_password(session, accounts, data.email)


@post(
    "/auth/password/reset",
    status_code=204,
    guards=[rate_limit("password_reset")],
    responses=problem_responses(400, 429),
)
async def reset_password(
    session: DbSession, accounts: Ctx, data: JSONBody[ResetPasswordIn]
) -> None:
    """Set a new password with a reset token; every session ends (400
    ``invalid_or_expired_token``, 422 ``weak_password``)."""
    await recovery.reset_password(session, accounts, data.token, data.new_password)


@post("/auth/email/verify", status_code=204, responses=problem_responses(400))
async def verify_email(session: DbSession, accounts: Ctx, data: JSONBody[VerifyEmailIn]) -> None:
    """Confirm the account's e-mail address (400 ``invalid_or_expired_token``)."""
    await recovery.verify_email(session, accounts, data.token)


@post(
    "/auth/login",
    status_code=200,
    guards=[rate_limit("login"), rate_limit("login_account", key=_login_account)],
    responses=problem_responses(401, 429),
)
async def login(
    request: Request[Any, Any, Any], session: DbSession, accounts: Ctx, data: JSONBody[LoginIn]
) -> TokenPair | MfaChallengeRead:
    """Sign in: tokens, or ``{mfa_required: true, mfa_token}`` when MFA is on (then
    ``POST /auth/login/mfa``). 401 ``invalid_credentials``, the same answer for an unknown
    e-mail, a wrong password, and an account slowed or locked after failed attempts;
    429 ``rate_limited`` per client address and per e-mail."""
    ip = client_ip(request)
    return await signin.login(session, accounts, data, device=_device(request), ip=ip)


@post("/auth/refresh", status_code=200, responses=problem_responses(401))
async def refresh(
    request: Request[Any, Any, Any], session: DbSession, accounts: Ctx, data: JSONBody[RefreshIn]
) -> TokenPair:
    """Rotate the refresh token (401 ``token_reused`` revokes the session)."""
    return await sessions.refresh(session, accounts, data.refresh_token, ip=client_ip(request))


@post("/auth/logout", status_code=204)
async def logout(session: DbSession, identity: Me) -> None:
    """End this session on every server node."""
    await sessions.logout(session, identity)


@get("/auth/sessions")
async def list_sessions(session: DbSession, accounts: Ctx, identity: Me) -> list[SessionRead]:
    """The caller's live sessions."""
    return await sessions.list_sessions(session, accounts, identity)


@delete("/auth/sessions/{session_id:uuid}", responses=NOT_FOUND)
async def revoke_session(session: DbSession, identity: Me, session_id: FromPath[uuid.UUID]) -> None:
    """Revoke one of the caller's sessions (another user's answers 404)."""
    await sessions.revoke_session(session, identity, session_id)


@post("/auth/password", status_code=204)
async def change_password(
    session: DbSession, accounts: Ctx, identity: Me, data: JSONBody[PasswordChangeIn]
) -> None:
    """Change the password; every other session is revoked."""
    await service.change_password(session, accounts, identity, data)


@get("/users/me")
async def me(session: DbSession, accounts: Ctx, identity: Me) -> UserRead:
    """The caller's profile."""
    return await service.get_profile(session, accounts, identity)


@patch("/users/me")
async def update_me(
    session: DbSession, accounts: Ctx, identity: Me, data: JSONBody[ProfileUpdate]
) -> UserRead:
    """Change names or phone; roles and flags cannot be set here (422)."""
    return await service.update_profile(session, accounts, identity, data)


@get("/users/me/export")
async def export_me(session: DbSession, accounts: Ctx, identity: Me) -> PersonalDataExport:
    """Every piece of personal data held on the caller."""
    return await addresses.export_personal_data(session, accounts, identity)


@delete("/users/me")
async def erase_me(
    session: DbSession, accounts: Ctx, identity: Me, data: JSONBody[PasswordIn]
) -> None:
    """Erase the caller's personal data (the account is anonymised, orders kept)."""
    await service.erase_me(session, accounts, identity, data.password)


@get("/users/me/addresses")
async def list_addresses(session: DbSession, accounts: Ctx, identity: Me) -> list[AddressRead]:
    """The caller's addresses."""
    return await addresses.list_addresses(session, accounts, identity)


@post("/users/me/addresses", responses=problem_responses(409))
async def add_address(
    session: DbSession, accounts: Ctx, identity: Me, data: JSONBody[AddressIn]
) -> AddressRead:
    """Store an address (409 ``too_many_addresses`` beyond the per-account limit)."""
    return await addresses.add_address(session, accounts, identity, data)


@patch("/users/me/addresses/{address_id:uuid}", responses=NOT_FOUND)
async def update_address(
    session: DbSession,
    accounts: Ctx,
    identity: Me,
    address_id: FromPath[uuid.UUID],
    data: JSONBody[AddressUpdate],
) -> AddressRead:
    """Change one of the caller's addresses (404 for anyone else's)."""
    return await addresses.update_address(session, accounts, identity, address_id, data)


@delete("/users/me/addresses/{address_id:uuid}", responses=NOT_FOUND)
async def delete_address(session: DbSession, identity: Me, address_id: FromPath[uuid.UUID]) -> None:
    """Delete one of the caller's addresses (404 for anyone else's)."""
    await addresses.delete_address(session, identity, address_id)


@get("/users")
async def list_users(
    session: DbSession,
    accounts: Ctx,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> UserPage:
    """Admin: all accounts, e-mail, names and phone masked (``j***@example.com``,
    ``J***``, ``+44*******12``); the listing is recorded in the audit trail."""
    return await service.admin_list(session, accounts, limit=limit, cursor=cursor)


@get("/users/{user_id:uuid}")
async def get_user(
    session: DbSession,
    accounts: Ctx,
    user_id: FromPath[uuid.UUID],
    reveal: Annotated[
        bool,
        QueryParameter(
            description="true: personal fields in clear (audited as "
            "user.personal_data_revealed); otherwise masked"
        ),
    ] = False,
) -> UserRead:
    """Admin: one account, e-mail, names and phone masked (``j***@example.com``) unless
    ``?reveal=true``; each read is recorded in the audit trail with the fields shown."""
    return await service.admin_get(session, accounts, user_id, reveal=reveal)


@post("/users")
async def create_user(session: DbSession, accounts: Ctx, data: JSONBody[UserCreate]) -> UserRead:
    """Admin: create a staff or admin account."""
    return await service.create_user(session, accounts, data)


@patch("/users/{user_id:uuid}")
async def update_user(
    session: DbSession, accounts: Ctx, user_id: FromPath[uuid.UUID], data: JSONBody[UserAdminUpdate]
) -> UserRead:
    """Admin: roles and ``is_active`` (audited); deactivation ends every session at once.
    The answer's personal fields are masked."""
    return await service.admin_update(session, accounts, user_id, data)


@get("/users/{user_id:uuid}/sessions", summary="A user's sessions")
async def list_user_sessions(
    session: DbSession, accounts: Ctx, user_id: FromPath[uuid.UUID]
) -> list[UserSessionRead]:
    """Admin: the user's live sessions (device, created, last used; no tokens); audited
    (``user.sessions_listed``)."""
    return await sessions.admin_list_sessions(session, accounts, user_id)


@delete("/users/{user_id:uuid}/sessions/{session_id:uuid}", summary="End a user's session")
async def revoke_user_session(
    session: DbSession, user_id: FromPath[uuid.UUID], session_id: FromPath[uuid.UUID]
) -> None:
    """Admin: end one of the user's sessions at once; audited (``user.session_revoked``);
    404 ``session_not_found`` for a session that is not theirs or already ended."""
    await sessions.admin_revoke_session(session, user_id, session_id)


accounts_router = Router(
    path="/",
    route_handlers=[
        audience_router(
            PUBLIC,
            tags=["accounts"],
            route_handlers=[
                register,
                forgot_password,
                reset_password,
                verify_email,
                login,
                refresh,
            ],
        ),
        audience_router(
            SIGNED_IN,
            tags=["accounts"],
            route_handlers=[
                logout,
                list_sessions,
                revoke_session,
                change_password,
                me,
                update_me,
                export_me,
                erase_me,
                list_addresses,
                add_address,
                update_address,
                delete_address,
            ],
        ),
        audience_router(
            ADMIN,
            tags=["admin"],
            refusals=(404, 409),
            route_handlers=[
                list_users,
                get_user,
                create_user,
                update_user,
                list_user_sessions,
                revoke_user_session,
            ],
        ),
        *SECURITY_ROUTERS,
    ],
    dependencies={
        "accounts": Provide(provide_accounts, sync_to_thread=False),
        "identity": Provide(provide_identity),
    },
    cache_control=CacheControlHeader(no_store=True),
)
