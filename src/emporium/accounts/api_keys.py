"""API keys: machine credentials issued by admins (OWASP ASVS 2.10, API2:2023).

A key is ``emp_key_`` followed by 256 random bits (base64url), so secret scanners can
recognise a leaked one; it is shown once, and only its SHA-256 is stored. Each key has
scopes, an optional expiry and can be revoked; the time it was last used is recorded (to the
minute, so a busy key does not write on every request). Keys are accepted only in the
``X-API-Key`` header, never in a URL, and act as a machine with exactly their scopes: they
never act as a person and never pass admin guards.

Scopes are ``<room>:read`` or ``<room>:write``; a staff route needs the scope named by its
handler's ``opt["api_scope"]``, or else the one of its room and method (GET and HEAD read).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, get_args

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from msgspec import Struct
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.exceptions import ApiKeyNotFound, InvalidApiKey
from emporium.accounts.models import ApiKey
from emporium.accounts.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPage, ApiKeyRead, ApiScope
from emporium.accounts.tokens import hash_opaque_token, new_opaque_token
from emporium.audit.chain import record_audit
from emporium.core.clock import utcnow
from emporium.core.db.base import read_connection
from emporium.core.db.pagination import by_created_at, created_at_cursor
from emporium.core.errors import InvalidInput
from emporium.core.resources import resources_of
from emporium.core.security_events import security_event

KEY_PREFIX = "emp_key_"
KEY_PURPOSE = "api_key"
SCOPES: tuple[str, ...] = get_args(ApiScope)
LAST_USED_RESOLUTION = timedelta(minutes=1)
HEADER = "x-api-key"

_K = ApiKey.__table__.c
_LOOKUP = select(_K.id, _K.scopes, _K.expires_at, _K.revoked_at, _K.last_used_at).where(
    _K.key_hash == bindparam("key_hash", type_=_K.key_hash.type)
)


class ApiKeyPrincipal(Struct, frozen=True, tag=True):
    """A caller authenticated by an API key: the key's id and scopes. Past the scope check
    of a route it acts with staff powers (``is_staff``) but is no person (``user_id`` is
    None); what it does is recorded under its own id (``actor_id``, ``actor_role``)."""

    id: uuid.UUID
    scopes: frozenset[str]

    @property
    def is_staff(self) -> bool:
        """Always true: a key reaches only staff routes whose scope it holds."""
        return True

    @property
    def user_id(self) -> None:
        """No person stands behind a key."""
        return None

    @property
    def actor_id(self) -> uuid.UUID:
        """The id recorded as the author of a change: the key's."""
        return self.id

    @property
    def actor_role(self) -> str:
        """The role recorded with a change: ``api_key``."""
        return "api_key"


def _read(key: ApiKey) -> ApiKeyRead:
    return ApiKeyRead(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        scopes=list(key.scopes),
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
    )


async def create_key(
    session: AsyncSession, data: ApiKeyCreate, *, created_by: uuid.UUID, ip: str | None
) -> ApiKeyCreated:
    """Issue a key (the clear key is in the answer only). Raises InvalidInput (422) for an
    expiry in the past."""
    now = utcnow()
    if data.expires_at is not None and data.expires_at <= now:
        raise InvalidInput(
            "The expiry must be in the future.",
            errors=[{"loc": ["body", "expires_at"], "msg": "must be in the future"}],
        )
    secret = new_opaque_token(KEY_PREFIX)
    key = ApiKey(
        id=uuid.uuid4(),
        name=data.name,
        prefix=secret[:16],
        scopes=sorted(set(data.scopes)),
        key_hash=hash_opaque_token(secret, purpose=KEY_PURPOSE),
        created_by=created_by,
        created_at=now,
        expires_at=data.expires_at,
    )
    session.add(key)
    await session.flush()
    security_event(
        "authn_token_created", user_id=created_by, client_ip=ip, level="info", api_key_id=key.id
    )
    await record_audit(
        session,
        action="api_key.created",
        object_type="api_key",
        object_id=key.id,
        details={"scopes": list(key.scopes), "expires_at": key.expires_at},
    )
    return ApiKeyCreated(
        id=key.id,
        key=secret,
        prefix=key.prefix,
        scopes=key.scopes,
        name=key.name,
        expires_at=key.expires_at,
    )


async def list_keys(session: AsyncSession, *, limit: int, cursor: str | None) -> ApiKeyPage:
    """Every key (revoked and expired ones too), oldest first, as a keyset page."""
    stmt = by_created_at(select(ApiKey), "created_at", ApiKey.created_at, ApiKey.id, cursor)
    keys = list(await session.scalars(stmt.limit(limit + 1)))
    items = [_read(k) for k in keys[:limit]]
    return ApiKeyPage(
        items=items, next_cursor=created_at_cursor(items, len(keys) > limit, "created_at")
    )


async def revoke_key(
    session: AsyncSession, key_id: uuid.UUID, *, by: uuid.UUID, ip: str | None
) -> None:
    """Revoke a key at once, on every node. Raises ApiKeyNotFound (404)."""
    key = await session.get(ApiKey, key_id)
    if key is None:
        raise ApiKeyNotFound("No such API key.")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
        security_event("authn_token_revoked", user_id=by, client_ip=ip, api_key_id=key.id)
        await record_audit(
            session, action="api_key.revoked", object_type="api_key", object_id=key.id
        )


Connection = ASGIConnection[Any, Any, Any, Any]


async def authenticate(connection: Connection, *, ip: str | None) -> ApiKeyPrincipal:
    """The key in ``X-API-Key``, checked against the database (so a revocation applies to
    the next request on every node). Raises InvalidApiKey (401) for an unknown, revoked or
    expired key."""
    secret = connection.headers.get(HEADER, "")
    resources = resources_of(connection.app.state)
    async with read_connection(resources.read_engine) as reader:
        found = await reader.execute(
            _LOOKUP, {"key_hash": hash_opaque_token(secret, purpose=KEY_PURPOSE)}
        )
        row = found.first()
    now = utcnow()
    if row is None or row.revoked_at is not None or (row.expires_at and row.expires_at <= now):
        reason = "unknown" if row is None else "revoked_or_expired"
        security_event("authn_login_fail", client_ip=ip, reason=f"api_key_{reason}")
        raise InvalidApiKey("The API key is not valid.")
    if row.last_used_at is None or row.last_used_at <= now - LAST_USED_RESOLUTION:
        async with resources.engine.begin() as conn:
            await conn.execute(update(ApiKey).where(_K.id == row.id).values(last_used_at=now))
    return ApiKeyPrincipal(id=row.id, scopes=frozenset(row.scopes))


def required_scope(handler: BaseRouteHandler, method: str) -> str:
    """The scope a key needs for ``handler``: ``opt["api_scope"]``, or ``<room>:read`` for
    GET and HEAD and ``<room>:write`` otherwise (room: the handler's package)."""
    explicit = handler.opt.get("api_scope")
    if isinstance(explicit, str):
        return explicit
    room = handler.fn.__module__.split(".")[1]
    return f"{room}:{'read' if method in ('GET', 'HEAD') else 'write'}"
