"""A password hash made with older (weaker) Argon2id parameters is replaced by one with the
current parameters at the next successful sign-in (OWASP Password Storage Cheat Sheet:
upgrade hashes as users log in); a failed sign-in changes nothing."""

from __future__ import annotations

import uuid

import argon2
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.support import API, PASSWORD, Client, assert_problem, login, sign_up
from emporium.accounts.models import UserAccount
from emporium.accounts.passwords import PasswordHasher
from emporium.core.config import Settings
from emporium.core.crypto.keys import load_key_file

CURRENT = argon2.Parameters(
    type=argon2.Type.ID,
    version=19,
    salt_len=16,
    hash_len=32,
    time_cost=2,
    memory_cost=19456,
    parallelism=1,
)
"""What the application hashes with (``PasswordHasher``'s defaults)."""


async def _stored_hash(session: AsyncSession, user_id: str) -> str:
    stored = await session.scalar(
        select(UserAccount.password_hash).where(UserAccount.id == uuid.UUID(user_id))
    )
    await session.rollback()
    assert stored is not None
    return stored


async def test_an_old_hash_is_upgraded_at_the_next_successful_login(
    client: Client, settings: Settings, session: AsyncSession
) -> None:
    """The stored hash is replaced by an old-parameter hash of the same password (t=1,
    m=8 MiB, as an older release made it): a wrong password leaves it as it is; the right
    one signs in and leaves a hash with the current parameters, which keeps working."""
    account = await sign_up(client)
    assert argon2.extract_parameters(await _stored_hash(session, account.id)) == CURRENT
    pepper = load_key_file(settings.key_file).pepper
    old_hasher = PasswordHasher(pepper=pepper, time_cost=1, memory_cost=8192, parallelism=1)
    old_hash = await old_hasher.hash(PASSWORD)
    row = await session.get(UserAccount, uuid.UUID(account.id))
    assert row is not None
    row.password_hash = old_hash
    await session.commit()

    wrong = await client.post(
        f"{API}/auth/login", json={"email": account.email, "password": PASSWORD + " no"}
    )
    assert_problem(wrong, 401, "invalid_credentials")
    assert await _stored_hash(session, account.id) == old_hash

    await login(client, account.email)
    upgraded = await _stored_hash(session, account.id)
    assert upgraded != old_hash
    assert argon2.extract_parameters(upgraded) == CURRENT
    await login(client, account.email)
    assert await _stored_hash(session, account.id) == upgraded, "rehashed again needlessly"
