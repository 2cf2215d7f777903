"""Import DummyJSON's ``dummyjson-users.json`` as accounts, with their address and phone.

Roles: ``admin`` becomes admin and staff, ``moderator`` staff, ``user`` customer. Only what a
shop needs is kept (e-mail, names, phone, postal address), and all of it is sealed by the
accounts room. Card numbers, IBANs, SSNs, crypto wallets, IP and MAC addresses, user agents
and the plain-text passwords of that file are never read into an account: imported people
set a password through the reset flow (until e-mail exists: ``emporium users set-password``).
Accounts are matched on ``dummyjson-user:<id>``, so a second run changes nothing.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pycountry
from msgspec import Struct
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.addresses import store_address
from emporium.accounts.models import UserAccount
from emporium.accounts.protect import AccountsContext
from emporium.accounts.service import create_account
from emporium.importers.common import (
    ImportReport,
    Problem,
    parse_records,
    read_json_records,
)

USERS_FILE = "dummyjson-users.json"
ROLES = {"admin": ["admin", "staff"], "moderator": ["staff"], "user": ["customer"]}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ImportUser(Struct):
    """The part of a DummyJSON person a shop keeps."""

    external_ref: str
    email: str
    roles: list[str]
    first_name: str | None
    last_name: str | None
    phone: str | None
    address: dict[str, str | None] | None


def _country(name: Any) -> str:
    try:
        return str(pycountry.countries.lookup(str(name)).alpha_2)
    except LookupError as exc:
        raise ValueError(f"unknown country {name!r}") from exc


def _address(raw: Any, name: str) -> dict[str, str | None] | None:
    if not isinstance(raw, dict) or not raw.get("address"):
        return None
    return {
        "name": name,
        "line1": str(raw["address"])[:200],
        "line2": None,
        "city": str(raw.get("city") or "")[:200],
        "region": raw.get("stateCode") or None,
        "postal_code": str(raw.get("postalCode") or "")[:20],
        "country": _country(raw.get("country")),
        "phone": None,
    }


def _user(raw: Any) -> ImportUser:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), int):
        raise ValueError("must be an object with an integer id")
    email = str(raw.get("email") or "").strip()
    if not _EMAIL.match(email) or len(email) > 254:
        raise ValueError("email is not an e-mail address")
    if raw.get("role") not in ROLES:
        raise ValueError(f"unknown role {raw.get('role')!r}")
    first, last = raw.get("firstName"), raw.get("lastName")
    name = " ".join(str(p) for p in (first, last) if p) or email
    return ImportUser(
        external_ref=f"dummyjson-user:{raw['id']}",
        email=email,
        roles=ROLES[raw["role"]],
        first_name=str(first)[:100] if first else None,
        last_name=str(last)[:100] if last else None,
        phone=str(raw["phone"])[:32] if raw.get("phone") else None,
        address=_address(raw.get("address"), name[:200]),
    )


def parse(directory: Path, *, skip_invalid: bool = False) -> tuple[list[ImportUser], list[Problem]]:
    """Read and validate ``DIR/dummyjson-users.json``; a missing file means no users.

    Raises ImportFailed for an unreadable file, or for any invalid person unless
    ``skip_invalid``.
    """
    path = directory / USERS_FILE
    if not path.is_file():
        return [], []
    records = read_json_records(path, "users")
    return parse_records(path, records, lambda raw, _: _user(raw), skip_invalid=skip_invalid)


async def write_users(
    session: AsyncSession, ctx: AccountsContext, users: list[ImportUser], report: ImportReport
) -> dict[str, uuid.UUID]:
    """Create the accounts not imported yet (matched on external reference); returns the
    account id of every imported person by e-mail blind index, to link their reviews."""
    by_index: dict[str, uuid.UUID] = {}
    for item in users:
        account = await session.scalar(
            select(UserAccount).where(UserAccount.external_ref == item.external_ref)
        )
        if account is None:
            account = await create_account(
                session,
                ctx,
                email=item.email,
                roles=item.roles,
                external_ref=item.external_ref,
                names={
                    "first_name": item.first_name,
                    "last_name": item.last_name,
                    "phone": item.phone,
                },
            )
            if item.address:
                store_address(session, ctx, account.id, dict(item.address))
            report.add("users", "created")
        else:
            report.add("users", "unchanged")
        by_index[account.email_index] = account.id
    await session.flush()
    return by_index
