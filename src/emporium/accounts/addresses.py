"""A user's postal addresses and the export of everything held on a user.

Each address is one encrypted JSON document bound to its row; another user's address
answers 404 exactly like a missing one (OWASP API1:2023, broken object level authorization).
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.exceptions import AddressNotFound, TooManyAddresses
from emporium.accounts.identity import Identity
from emporium.accounts.models import Address
from emporium.accounts.protect import AccountsContext
from emporium.accounts.schemas import (
    AddressIn,
    AddressRead,
    AddressUpdate,
    PersonalDataExport,
)
from emporium.accounts.service import get_profile
from emporium.accounts.sessions import list_sessions
from emporium.audit.chain import record_audit
from emporium.audit.service import events_about
from emporium.core.clock import utcnow

MAX_ADDRESSES = 20
"""Addresses one account may keep: a bound on what one caller can make the shop store
(OWASP API4:2023, unrestricted resource consumption)."""


def _read(ctx: AccountsContext, address: Address) -> AddressRead:
    document = ctx.vault.open_column(Address.data_enc, address.id, address.data_enc) or "{}"
    fields = msgspec.json.decode(document)
    return AddressRead(id=address.id, **fields)


def _seal(ctx: AccountsContext, address_id: uuid.UUID, fields: dict[str, object]) -> str:
    document = msgspec.json.encode(fields).decode()
    return ctx.vault.seal_column(Address.data_enc, address_id, document) or ""


async def list_addresses(
    session: AsyncSession, ctx: AccountsContext, identity: Identity
) -> list[AddressRead]:
    """The caller's addresses, oldest first."""
    stmt = (
        select(Address)
        .where(Address.user_id == identity.user_id)
        .order_by(Address.created_at, Address.id)
    )
    return [_read(ctx, a) for a in await session.scalars(stmt)]


def store_address(
    session: AsyncSession, ctx: AccountsContext, user_id: uuid.UUID, fields: dict[str, object]
) -> Address:
    """Add a sealed address row for ``user_id`` (``fields`` as in ``AddressIn``)."""
    address = Address(id=uuid.uuid4(), user_id=user_id, created_at=utcnow())
    address.updated_at = address.created_at
    address.data_enc = _seal(ctx, address.id, fields)
    session.add(address)
    return address


async def add_address(
    session: AsyncSession, ctx: AccountsContext, identity: Identity, data: AddressIn
) -> AddressRead:
    """Store a new address for the caller. Raises TooManyAddresses (409) at the limit."""
    held = await session.scalar(
        select(func.count()).select_from(Address).where(Address.user_id == identity.user_id)
    )
    if (held or 0) >= MAX_ADDRESSES:
        raise TooManyAddresses(f"An account keeps at most {MAX_ADDRESSES} addresses.")
    address = store_address(session, ctx, identity.user_id, msgspec.structs.asdict(data))
    await session.flush()
    return _read(ctx, address)


async def _own(session: AsyncSession, identity: Identity, address_id: uuid.UUID) -> Address:
    address = await session.get(Address, address_id)
    if address is None or address.user_id != identity.user_id:
        raise AddressNotFound("No such address.")
    return address


async def update_address(
    session: AsyncSession,
    ctx: AccountsContext,
    identity: Identity,
    address_id: uuid.UUID,
    data: AddressUpdate,
) -> AddressRead:
    """Change one of the caller's addresses. Raises AddressNotFound (404)."""
    address = await _own(session, identity, address_id)
    current = msgspec.structs.asdict(_read(ctx, address))
    current.pop("id")
    current.update(
        {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    )
    address.data_enc = _seal(ctx, address.id, current)
    address.updated_at = utcnow()
    await session.flush()
    return _read(ctx, address)


async def delete_address(session: AsyncSession, identity: Identity, address_id: uuid.UUID) -> None:
    """Delete one of the caller's addresses. Raises AddressNotFound (404)."""
    await session.delete(await _own(session, identity, address_id))
    await session.flush()


async def export_personal_data(
    session: AsyncSession, ctx: AccountsContext, identity: Identity
) -> PersonalDataExport:
    """Everything personal held on the caller, decrypted (GDPR art. 15 and 20); the export
    is recorded in the audit trail (``user.exported``)."""
    sections: dict[str, list[Any]] = {}
    for section in ctx.export_sections:
        sections.update(await section(session, ctx.vault, identity.user_id))
    await record_audit(
        session, action="user.exported", object_type="user", object_id=identity.user_id
    )
    order_ids = [str(order["id"]) for order in sections.get("orders", [])]
    events = await events_about(session, str(identity.user_id), order_ids)
    return PersonalDataExport(
        profile=await get_profile(session, ctx, identity),
        addresses=await list_addresses(session, ctx, identity),
        sessions=await list_sessions(session, ctx, identity),
        exported_at=utcnow(),
        audit_events=[msgspec.to_builtins(event) for event in events],
        **sections,
    )


async def own_address_fields(
    session: AsyncSession, ctx: AccountsContext, user_id: uuid.UUID, address_id: uuid.UUID
) -> dict[str, object]:
    """The fields of one of ``user_id``'s addresses, decrypted (for an order's snapshot).

    Raises AddressNotFound (404) for a missing address or another user's.
    """
    address = await session.get(Address, address_id)
    if address is None or address.user_id != user_id:
        raise AddressNotFound("No such address.")
    fields = msgspec.structs.asdict(_read(ctx, address))
    fields.pop("id")
    return fields
