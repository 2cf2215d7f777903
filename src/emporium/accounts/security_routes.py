"""HTTP routes of the second factor (TOTP enrolment, the MFA sign-in step) and API keys.

Mounted by ``accounts.routes`` on the accounts router (same dependencies, ``no-store``).
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from emporium.accounts import api_keys, mfa, signin
from emporium.accounts.audiences import ADMIN, PUBLIC, SIGNED_IN
from emporium.accounts.identity import Identity, client_ip
from emporium.accounts.protect import AccountsContext
from emporium.accounts.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPage,
    LoginMfaIn,
    MfaDisableIn,
    RecoveryCodes,
    TokenPair,
    TotpCodeIn,
    TotpEnrolment,
)
from emporium.core.db.pagination import DEFAULT_LIMIT, Cursor, Limit
from emporium.core.db.uow import DbSession
from emporium.core.errors import problem_responses
from emporium.core.http.ratelimit import rate_limit
from emporium.core.http.routing import audience_router

Ctx = NamedDependency[AccountsContext]
Me = NamedDependency[Identity]
AnyRequest = Request[Any, Any, Any]


def _device(request: AnyRequest) -> str:
    return request.headers.get("user-agent", "")[:200]


@post(
    "/auth/login/mfa",
    status_code=200,
    guards=[rate_limit("mfa")],
    responses=problem_responses(401, 429),
)
async def login_mfa(
    request: AnyRequest, session: DbSession, accounts: Ctx, data: JSONBody[LoginMfaIn]
) -> TokenPair:
    """Second sign-in step: ``mfa_token`` from ``POST /auth/login`` and a TOTP or recovery
    code (401 ``invalid_mfa_token``, 401 ``invalid_mfa_code``)."""
    return await signin.login_mfa(
        session, accounts, data, device=_device(request), ip=client_ip(request)
    )


@post("/auth/mfa/totp", status_code=200)
async def start_totp(session: DbSession, accounts: Ctx, identity: Me) -> TotpEnrolment:
    """Start TOTP enrolment: the secret and its ``otpauth://`` URI (409 when MFA is on)."""
    return await mfa.start_enrolment(session, accounts, identity)


@post("/auth/mfa/totp/confirm", status_code=200, guards=[rate_limit("mfa")])
async def confirm_totp(
    request: AnyRequest, session: DbSession, accounts: Ctx, identity: Me, data: JSONBody[TotpCodeIn]
) -> RecoveryCodes:
    """Turn MFA on with a first code; returns 10 single-use recovery codes, shown once
    (422 ``invalid_mfa_code``)."""
    return await mfa.confirm_enrolment(
        session, accounts, identity, data.code, ip=client_ip(request)
    )


@delete("/auth/mfa/totp", guards=[rate_limit("mfa")])
async def disable_totp(
    request: AnyRequest,
    session: DbSession,
    accounts: Ctx,
    identity: Me,
    data: JSONBody[MfaDisableIn],
) -> None:
    """Turn MFA off with ``{code}`` or ``{password}``; other sessions are revoked."""
    await mfa.disable(session, accounts, identity, data, ip=client_ip(request))


@post("/api-keys")
async def create_api_key(
    request: AnyRequest, session: DbSession, identity: Me, data: JSONBody[ApiKeyCreate]
) -> ApiKeyCreated:
    """Admin: issue an API key; ``key`` is in this answer only. Scopes: ``catalog:write``,
    ``inventory:read``, ``inventory:write``, ``orders:read``, ``orders:write``."""
    return await api_keys.create_key(
        session, data, created_by=identity.user_id, ip=client_ip(request)
    )


@get("/api-keys")
async def list_api_keys(
    session: DbSession,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ApiKeyPage:
    """Admin: every API key, without secrets."""
    return await api_keys.list_keys(session, limit=limit, cursor=cursor)


@delete("/api-keys/{key_id:uuid}")
async def revoke_api_key(
    request: AnyRequest, session: DbSession, identity: Me, key_id: FromPath[uuid.UUID]
) -> None:
    """Admin: revoke an API key; refused from the next request on, on every node."""
    await api_keys.revoke_key(session, key_id, by=identity.user_id, ip=client_ip(request))


SECURITY_ROUTERS = [
    audience_router(PUBLIC, tags=["accounts"], route_handlers=[login_mfa]),
    audience_router(
        SIGNED_IN,
        tags=["accounts"],
        refusals=(409,),
        route_handlers=[start_totp, confirm_totp, disable_totp],
    ),
    audience_router(
        ADMIN,
        tags=["admin"],
        refusals=(404,),
        route_handlers=[create_api_key, list_api_keys, revoke_api_key],
    ),
]
"""The routers of this module, mounted by ``accounts.routes`` after its own."""
