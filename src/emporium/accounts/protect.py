"""Personal data in and out of the account tables: encryption bound to table, column and
row, and the e-mail blind index. The one place that knows which columns are protected."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from emporium.accounts.passwords import PasswordHasher
from emporium.accounts.throttle import LoginPolicy
from emporium.core.config import Settings
from emporium.core.crypto.keys import KeyRing
from emporium.core.crypto.sealing import blind_index, decrypt_field, encrypt_field, normalize_email
from emporium.core.db.base import SEALED

EMAIL_INDEX_PURPOSE = "user_account.email"

ErasureStep = Callable[[AsyncSession, uuid.UUID], Awaitable[None]]
"""What a room above accounts does when an account is erased: ``step(session, user_id)``
runs in the erasure's transaction (the accounts room may not import those rooms: reviews
drop the author's name, orders forget stored idempotent answers)."""

ExportSection = Callable[[AsyncSession, "Vault", uuid.UUID], Awaitable[dict[str, list[Any]]]]
"""What a room above accounts holds on a person, for their export (``GET /users/me/export``):
``section(session, vault, user_id)`` answers ``{field of PersonalDataExport: [plain JSON
objects]}`` (orders with their addresses, payments, returns, reviews). Registered by
``create_app`` beside the erasure steps, so each room that erases a person's data also says
what it holds; accounts imports none of them."""


def plain_row(row: Any) -> dict[str, Any]:
    """A table row (``Row`` or mapping) as plain JSON data for an export, without its sealed
    ``*_enc`` columns (ciphertext means nothing to the person; their clear values are in the
    sections that open them)."""
    mapping = row._mapping if hasattr(row, "_mapping") else row
    data = {k: v for k, v in mapping.items() if not str(k).endswith("_enc")}
    return dict(msgspec.to_builtins(data))


def _sealed_binding(column: InstrumentedAttribute[Any]) -> tuple[str, str]:
    """The table name and declared name a sealed column binds into its ciphertexts."""
    mapped = column.property.columns[0]
    if SEALED not in mapped.info:
        raise TypeError(f"{column} is not declared with core.db.base.sealed")
    return str(mapped.table.name), str(mapped.info[SEALED])


@dataclass(frozen=True)
class Vault:
    """Encrypts and decrypts personal data with the deployment's key ring."""

    ring: KeyRing

    def seal(self, table: str, column: str, row_id: uuid.UUID, value: str | None) -> str | None:
        """``value`` encrypted for exactly this table, column and row (None stays None)."""
        if value is None:
            return None
        return encrypt_field(self.ring, value, table=table, column=column, row_id=str(row_id))

    def open(self, table: str, column: str, row_id: uuid.UUID, token: str | None) -> str | None:
        """The clear text of a sealed value. Raises DecryptionError if it was tampered with
        or moved from another row."""
        if token is None:
            return None
        return decrypt_field(self.ring, token, table=table, column=column, row_id=str(row_id))

    def seal_column(
        self, column: InstrumentedAttribute[Any], row_id: uuid.UUID, value: str | None
    ) -> str | None:
        """``value`` sealed for the model's sealed ``column`` (``core.db.base.sealed``: its
        table and declared name) and this row. Raises TypeError for a column not declared sealed."""
        table, name = _sealed_binding(column)
        return self.seal(table, name, row_id, value)

    def open_column(
        self, column: InstrumentedAttribute[Any], row_id: uuid.UUID, token: str | None
    ) -> str | None:
        """The clear text of the sealed ``column`` of this row (see :meth:`seal_column`)."""
        table, name = _sealed_binding(column)
        return self.open(table, name, row_id, token)

    def pseudonym(self, value: str, *, purpose: str) -> str:
        """A keyed pseudonym of ``value`` for ``purpose`` (a blind index: 64 hex characters;
        the same value gives the same pseudonym, which only the key's holder can compute)."""
        return blind_index(self.ring, value, purpose=purpose)

    def email_index(self, email: str) -> str:
        """The keyed blind index of an e-mail (normalised), for lookups and uniqueness."""
        return blind_index(self.ring, normalize_email(email), purpose=EMAIL_INDEX_PURPOSE)


@dataclass(frozen=True)
class AccountsContext:
    """What account services need besides the session: keys, the hasher and the timeouts."""

    vault: Vault
    hasher: PasswordHasher
    jwt_keys: Mapping[str, bytes]
    active_jwt_kid: str
    issuer: str
    audience: str
    access_token_minutes: int
    idle_minutes: dict[str, int]
    absolute_minutes: dict[str, int]
    login_policy: LoginPolicy = field(default_factory=LoginPolicy)
    mfa_issuer: str = "Emporium"
    mfa_challenge_minutes: int = 5
    erasure_steps: tuple[ErasureStep, ...] = ()
    export_sections: tuple[ExportSection, ...] = ()


def build_context(
    settings: Settings,
    ring: KeyRing,
    *,
    hasher: PasswordHasher | None = None,
    erasure_steps: Sequence[ErasureStep] = (),
    export_sections: Sequence[ExportSection] = (),
) -> AccountsContext:
    """The accounts context of an app: keys from ``ring``, timeouts from ``settings``, and
    the ``erasure_steps`` and ``export_sections`` of the rooms that keep personal data about
    an account."""
    return AccountsContext(
        vault=Vault(ring),
        hasher=hasher
        or PasswordHasher(pepper=ring.pepper, max_concurrent=settings.password_hash_concurrency),
        jwt_keys=ring.jwt_keys,
        active_jwt_kid=ring.active_jwt_kid,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_token_minutes=settings.access_token_minutes,
        idle_minutes={
            "customer": settings.customer_idle_timeout_minutes,
            "staff": settings.staff_idle_timeout_minutes,
        },
        absolute_minutes={
            "customer": settings.customer_absolute_timeout_minutes,
            "staff": settings.staff_absolute_timeout_minutes,
        },
        login_policy=LoginPolicy.from_settings(settings),
        mfa_issuer=settings.mfa_issuer,
        mfa_challenge_minutes=settings.mfa_challenge_minutes,
        erasure_steps=tuple(erasure_steps),
        export_sections=tuple(export_sections),
    )


def provide_accounts(state: State) -> AccountsContext:
    """Dependency: the application's accounts context (``app.state.accounts``)."""
    context: AccountsContext = state.accounts
    return context
