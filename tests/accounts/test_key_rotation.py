"""Key rotation: every protected value moves to the new key, resumably, and stays readable."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from accounts.support import PASSWORD, Client, bearer, enable_mfa, login, new_email, register
from emporium.accounts.models import Address, AuthSession, UserAccount
from emporium.accounts.rotation import reencrypt_all
from emporium.app import create_app
from emporium.cli import main, protected_columns
from emporium.core.config import Settings
from emporium.core.crypto.keys import add_data_key, load_key_file, write_key_file
from emporium.core.crypto.sealing import key_id_of
from emporium.core.db.base import create_engine, create_sessionmaker


async def _kids(settings: Settings) -> set[str]:
    """The key ids of every protected value (every ``*_enc`` column) in the database."""
    engine = create_engine(settings)
    kids: set[str] = set()
    try:
        async with create_sessionmaker(engine)() as session:
            for model, sealed in protected_columns():
                columns = list(sealed)
                for row in await session.scalars(select(model)):
                    kids.update(key_id_of(v) for a in columns if (v := getattr(row, a)))
    finally:
        await engine.dispose()
    return kids


async def _shop_with_people(client: Client) -> list[tuple[str, str]]:
    people = []
    for _ in range(3):
        email = new_email("rotation")
        await register(client, email, phone="+1 555 0100", first_name="Ada")
        tokens = await login(client, email)
        address = {
            "name": "Ada",
            "line1": "1 Key Street",
            "city": "Lisbon",
            "postal_code": "1000-001",
            "country": "PT",
        }
        response = await client.post(
            "/api/v1/users/me/addresses",
            json=address,
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
        assert response.status_code == 201
        people.append((email, tokens["access_token"]))
    return people


@pytest.mark.slow
async def test_rotate_reencrypts_everything_and_keeps_it_readable(
    settings: Settings, tmp_path: Path
) -> None:
    """After `emporium keys rotate`, no value uses the old key, and a server started with
    the new key file still shows every profile and address and checks TOTP codes."""
    key_file = tmp_path / "keys.json"
    shutil.copy(settings.key_file, key_file)
    key_file.chmod(0o600)
    settings = settings.model_copy(update={"key_file": key_file})
    async with AsyncTestClient(app=create_app(settings)) as client:
        people = await _shop_with_people(client)
        mfa = await enable_mfa(client, bearer(people[0][1]))
    old_kid = load_key_file(key_file).active_data_kid
    assert await _kids(settings) == {old_kid}

    env = {"EMPORIUM_DATABASE_URL": settings.database_url, "EMPORIUM_KEY_FILE": str(key_file)}
    result = await asyncio.to_thread(CliRunner().invoke, main, ["keys", "rotate"], env=env)
    assert result.exit_code == 0, result.output
    new_kid = load_key_file(key_file).active_data_kid
    assert new_kid != old_kid
    assert await _kids(settings) == {new_kid}

    async with AsyncTestClient(app=create_app(settings)) as client:
        challenge = await login(client, people[0][0], PASSWORD)
        code = mfa.code(at=time.time() + 30)  # the TOTP secret still decrypts
        step = {"mfa_token": challenge["mfa_token"], "code": code}
        response = await client.post("/api/v1/auth/login/mfa", json=step)
        assert response.status_code == 200, response.text
        await client.request(
            "DELETE",
            "/api/v1/auth/mfa/totp",
            json={"password": PASSWORD},
            headers=bearer(response.json()["access_token"]),
        )
        for email, _ in people:
            tokens = await login(client, email, PASSWORD)
            headers = {"Authorization": f"Bearer {tokens['access_token']}"}
            profile = (await client.get("/api/v1/users/me", headers=headers)).json()
            assert profile["email"] == email
            assert profile["phone"] == "+1 555 0100"
            addresses = (await client.get("/api/v1/users/me/addresses", headers=headers)).json()
            assert addresses[0]["line1"] == "1 Key Street"


async def test_an_interrupted_rotation_resumes_where_it_stopped(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """A rotation that dies after its first batch finishes on the next run, and values
    already moved are not touched again."""
    await _shop_with_people(client)
    ring = add_data_key(load_key_file(settings.key_file))
    write_key_file(tmp_path / "new.json", ring)
    sessionmaker = create_sessionmaker(engine := create_engine(settings))
    batches = 0

    def stop_after_first_batch(_: int) -> None:
        nonlocal batches
        batches += 1
        if batches == 1:
            raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            await reencrypt_all(sessionmaker, ring, batch_size=1, progress=stop_after_first_batch)
        kids = await _kids(settings)
        assert ring.active_data_kid in kids
        assert len(kids) == 2  # half done: old and new keys side by side
        moved = await reencrypt_all(sessionmaker, ring, batch_size=2)
        assert await _kids(settings) == {ring.active_data_kid}
        assert await reencrypt_all(sessionmaker, ring) == 0  # nothing left to move
        async with sessionmaker() as session:
            users = (await session.scalars(select(UserAccount))).all()
            sessions_ = (await session.scalars(select(AuthSession))).all()
            addresses = (await session.scalars(select(Address))).all()
        total = (
            sum(
                bool(getattr(u, a))
                for u in users
                for a in ("email_enc", "first_name_enc", "last_name_enc", "phone_enc")
            )
            + sum(bool(s.ip_enc) for s in sessions_)
            + len(addresses)
        )
        assert 0 < moved < total  # the first run's batch was not redone
    finally:
        await engine.dispose()
