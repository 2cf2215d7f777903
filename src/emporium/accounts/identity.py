"""Who is calling, checked on every request, and the role guards of every route.

``Authorization: Bearer <access token>`` is verified (signature, algorithm, issuer,
audience, expiry: ``accounts.tokens``), then the session it names is looked up: a logged-out,
revoked or timed-out session, or a deactivated user, is refused at once on every node,
because the check reads the shared database rather than anything a node remembers. Roles
come from the database too, so a role change applies to the next request.

Staff and admin operations also need MFA: the account has it on and the session was opened
with a second factor (or confirmed the enrolment); otherwise ``403 mfa_required``. Staff
routes, and routes guarded by ``signed_in_or_key``, also accept an API key (``X-API-Key``)
that holds the route's scope (``accounts.api_keys``); their handlers take the caller as a
``Caller`` (``provide_caller``). Admin routes never accept a key. Every refusal is logged
as ``authz_fail``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from msgspec import Struct
from sqlalchemy import bindparam, select

from emporium.accounts import api_keys
from emporium.accounts.exceptions import MfaRequired, RoleRequired, ScopeRequired, SessionEnded
from emporium.accounts.models import STAFF_ROLES, AuthSession, UserAccount, is_staff_roles
from emporium.accounts.timeouts import session_live
from emporium.accounts.tokens import decode_access_token
from emporium.core.actor import ActorType, identify_actor
from emporium.core.clock import utcnow
from emporium.core.db.base import read_connection
from emporium.core.errors import DomainError, Unauthorized
from emporium.core.http.clientip import client_ip as resolved_client_ip
from emporium.core.http.openapi import accepts_api_key
from emporium.core.resources import resources_of
from emporium.core.security_events import security_event

_S = AuthSession.__table__.c
_U = UserAccount.__table__.c
_LIVE_SESSION = (
    select(
        _S.user_id,
        _S.revoked_at,
        _S.created_at,
        _S.last_used_at,
        _S.expires_at,
        _S.idle_expires_at,
        _S.mfa_verified,
        _U.is_active,
        _U.roles,
        _U.mfa_enabled,
    )
    .select_from(AuthSession.__table__.join(UserAccount.__table__, _S.user_id == _U.id))
    .where(_S.id == bindparam("sid", type_=_S.id.type))
)


class Identity(Struct, frozen=True, tag=True):
    """A signed-in caller: the user, the session and the user's current roles; ``mfa`` is
    true when the account has MFA on and this session was opened with it. (Tagged, like
    ``ApiKeyPrincipal``, so that Litestar can take the union ``Caller`` as a dependency.)"""

    user_id: uuid.UUID
    session_id: uuid.UUID
    roles: tuple[str, ...]
    mfa: bool = False

    @property
    def is_staff(self) -> bool:
        """Staff or admin acting with staff powers: the role and an MFA session. Without MFA
        a staff account is treated as an ordinary person (it sees only its own objects)."""
        return is_staff_roles(self.roles) and self.mfa

    @property
    def is_admin(self) -> bool:
        """Admin acting with admin powers (the role and an MFA session)."""
        return "admin" in self.roles and self.mfa

    @property
    def actor_id(self) -> uuid.UUID:
        """The id recorded as the author of a change: the person's."""
        return self.user_id

    @property
    def actor_role(self) -> str:
        """The role recorded with a change: ``staff`` or ``customer``."""
        return "staff" if self.is_staff else "customer"


Caller = Identity | api_keys.ApiKeyPrincipal
"""Who calls a route open to people and API keys: both have ``is_staff``, ``user_id``
(None for a key), ``actor_id`` and ``actor_role``."""


Connection = ASGIConnection[Any, Any, Any, Any]


def client_ip(connection: Connection) -> str | None:
    """The client's address: the direct peer, or behind a trusted proxy the address it
    forwarded (``core.http.clientip``, resolved once per request by the middleware)."""
    return resolved_client_ip(connection)


def _bearer(connection: Connection) -> str | None:
    header = connection.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Use 'Authorization: Bearer <access token>'.")
    return token.strip()


async def identify(connection: Connection) -> Identity | None:
    """The caller, or None when no credentials were sent (computed once per request).

    Raises:
        InvalidToken: (401) the access token is malformed, forged, expired or not for us.
        SessionEnded: (401 ``session_ended``) its session is over or the user deactivated.
    """
    state = connection.scope.setdefault("state", {})
    if "identity" in state:
        cached: Identity | None = state["identity"]
        return cached
    token = _bearer(connection)
    identity = None if token is None else await _verify(connection, token)
    state["identity"] = identity
    if identity is not None:
        _note_actor(connection, "user", identity.user_id)
    return identity


IP_PSEUDONYM_PURPOSE = "audit_event.ip"


def _note_actor(connection: Connection, actor_type: ActorType, actor_id: uuid.UUID) -> None:
    """Tell the audit trail who calls (``core.actor``), with the client address as a keyed
    pseudonym (HMAC-SHA256 under the deployment's index key): an address is personal data."""
    ip = client_ip(connection)
    vault = connection.app.state.accounts.vault
    pseudonym = None if ip is None else vault.pseudonym(ip, purpose=IP_PSEUDONYM_PURPOSE)
    identify_actor(actor_type, str(actor_id), ip=pseudonym)


async def _verify(connection: Connection, token: str) -> Identity:
    ctx = connection.app.state.accounts
    claims = decode_access_token(
        token, keys=ctx.jwt_keys, issuer=ctx.issuer, audience=ctx.audience, now=utcnow()
    )
    session_id = uuid.UUID(claims.sid)
    async with read_connection(resources_of(connection.app.state).read_engine) as reader:
        row = (await reader.execute(_LIVE_SESSION, {"sid": session_id})).first()
    if (
        row is None
        or not row.is_active
        or str(row.user_id) != claims.sub
        or not session_live(
            ctx,
            now=utcnow(),
            roles=row.roles,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            expires_at=row.expires_at,
            idle_expires_at=row.idle_expires_at,
            revoked_at=row.revoked_at,
        )
    ):
        raise SessionEnded("The session has ended; sign in again.")
    return Identity(
        user_id=uuid.UUID(claims.sub),
        session_id=session_id,
        roles=tuple(row.roles),
        mfa=bool(row.mfa_enabled and row.mfa_verified),
    )


async def require_identity(connection: Connection) -> Identity:
    """The signed-in caller. Raises Unauthorized (401) for anonymous callers."""
    identity = await identify(connection)
    if identity is None:
        raise Unauthorized("Sign in first.")
    return identity


async def signed_in(connection: Connection, _: BaseRouteHandler) -> None:
    """Route guard: any signed-in user."""
    await require_identity(connection)


async def customer(connection: Connection, _: BaseRouteHandler) -> None:
    """Route guard: a signed-in person with the customer role (cart, checkout, reviews).

    Raises Unauthorized (401) when anonymous, RoleRequired (403 ``forbidden``) otherwise.
    """
    identity = await require_identity(connection)
    if "customer" not in identity.roles:
        _authz_fail(connection, identity.user_id, RoleRequired.code)
        raise RoleRequired("This operation needs the customer role.")


async def signed_in_or_key(connection: Connection, handler: BaseRouteHandler) -> None:
    """Route guard: any signed-in person, or an API key holding the route's scope (for
    routes whose service decides what each caller sees, like ``GET /orders``).

    Raises Unauthorized (401) when anonymous, InvalidApiKey (401), ScopeRequired (403
    ``insufficient_scope``).
    """
    if _uses_api_key(connection):
        await _key_allowed(connection, handler, "staff")
        return
    await require_identity(connection)


async def provide_caller(request: Request[Any, Any, Any]) -> Caller:
    """Dependency: the API key a guard accepted, else the signed-in person (guard the route
    with ``role("staff")`` or ``signed_in_or_key`` first)."""
    key: api_keys.ApiKeyPrincipal | None = request.scope.get("state", {}).get("api_key")
    if key is not None:
        return key
    return await require_identity(request)


def _uses_api_key(connection: Connection) -> bool:
    """An API key is the credential when ``X-API-Key`` comes without ``Authorization``."""
    return "authorization" not in connection.headers and api_keys.HEADER in connection.headers


async def provide_identity(request: Request[Any, Any, Any]) -> Identity:
    """Dependency: the signed-in caller (put a guard on the route too, so that an anonymous
    caller is refused before other dependencies, such as a database connection, are made)."""
    return await require_identity(request)


Guard = Callable[[Connection, BaseRouteHandler], Coroutine[Any, Any, None]]


def role(name: str) -> Guard:
    """Route guard: the caller has role ``name`` (admins pass every staff check) and MFA;
    or, on staff routes, an API key with the route's scope.

    Raises Unauthorized (401) when anonymous, InvalidApiKey (401), RoleRequired (403
    ``forbidden``), MfaRequired (403 ``mfa_required``), ScopeRequired (403
    ``insufficient_scope``).
    """
    allowed = {"staff": STAFF_ROLES, "admin": frozenset({"admin"})}[name]

    async def guard(connection: Connection, handler: BaseRouteHandler) -> None:
        if _uses_api_key(connection):
            await _key_allowed(connection, handler, name)
            return
        identity = await require_identity(connection)
        refusal: DomainError | None = None
        if allowed.isdisjoint(identity.roles):
            refusal = RoleRequired(f"This operation needs the {name} role.")
        elif not identity.mfa:
            refusal = MfaRequired("Enable MFA (POST /auth/mfa/totp) and sign in with it.")
        if refusal is not None:
            _authz_fail(connection, identity.user_id, refusal.code)
            raise refusal

    # Staff routes also accept an API key: the OpenAPI document says so (with the scope).
    return accepts_api_key(guard, api_keys.required_scope) if name == "staff" else guard


async def _key_allowed(connection: Connection, handler: BaseRouteHandler, role_name: str) -> None:
    ip = client_ip(connection)
    key = await api_keys.authenticate(connection, ip=ip)
    scope = api_keys.required_scope(handler, str(connection.scope.get("method", "GET")))
    if role_name != "staff" or scope not in key.scopes:
        _authz_fail(connection, None, "insufficient_scope", api_key_id=str(key.id))
        raise ScopeRequired(
            "API keys cannot be used for admin operations."
            if role_name != "staff"
            else f"This operation needs an API key with the scope {scope}."
        )
    connection.scope.setdefault("state", {})["api_key"] = key
    _note_actor(connection, "api_key", key.id)


def _authz_fail(
    connection: Connection, user_id: object, reason: str, *, api_key_id: str | None = None
) -> None:
    security_event(
        "authz_fail",
        user_id=user_id,
        client_ip=client_ip(connection),
        reason=reason,
        method=str(connection.scope.get("method", "GET")),
        path=connection.scope["path"],
        api_key_id=api_key_id,
    )


async def is_staff(connection: Connection) -> bool:
    """True when the caller is signed in as staff or admin with MFA (for visibility, not
    guarding)."""
    identity = await identify(connection)
    return identity is not None and identity.is_staff and identity.mfa
