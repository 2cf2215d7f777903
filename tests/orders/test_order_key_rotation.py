"""``emporium keys rotate`` re-encrypts the rooms above accounts too: order shipping
addresses (and webhook secrets) move to the new data key and still open."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import SignIn
from emporium.accounts.protect import Vault
from emporium.accounts.rotation import reencrypt_all
from emporium.app import create_app
from emporium.cli import protected_columns
from emporium.core.config import Settings
from emporium.core.crypto.keys import add_data_key, load_key_file, write_key_file
from emporium.core.crypto.sealing import needs_reencryption
from emporium.core.db.base import create_engine, create_sessionmaker
from emporium.orders.models import Order
from emporium.orders.queries import open_address
from factories import Client
from orders.support import ADDRESS, order, stocked_variants


async def test_rotation_moves_shipping_addresses_to_the_new_key(
    client: Client,
    admin_headers: dict[str, str],
    sign_in: SignIn,
    settings: Settings,
    session: AsyncSession,
) -> None:
    """After a rotation no shipping address is under the old key, and each still opens."""
    (variant,) = await stocked_variants(client, admin_headers, 5)
    placed = (await order(client, await sign_in(), [(variant["id"], 1)])).json()
    ring = add_data_key(load_key_file(settings.key_file))
    token = await session.scalar(select(Order.shipping_address_enc))
    await session.rollback()
    assert token is not None
    assert needs_reencryption(ring, token)

    engine = create_engine(settings)
    try:
        changed = await reencrypt_all(
            create_sessionmaker(engine), ring, protected=protected_columns()
        )
    finally:
        await engine.dispose()

    assert changed >= 1
    rotated = await session.scalar(select(Order.shipping_address_enc))
    assert rotated is not None
    assert not needs_reencryption(ring, rotated)
    address = open_address(Vault(ring), uuid.UUID(placed["id"]), rotated)
    assert address.city == ADDRESS["city"]


async def test_a_stored_idempotent_answer_replays_after_rotation_without_the_old_key(
    client: Client,
    admin_headers: dict[str, str],
    sign_in: SignIn,
    settings: Settings,
    tmp_path: Path,
) -> None:
    """An order placed with an ``Idempotency-Key``; the keys are rotated and the old data
    key is then removed from the key file: the replay still shows the shipping address, so
    nothing the key holds depends on the old data key (it holds no sealed value at all)."""
    (variant,) = await stocked_variants(client, admin_headers, 5)
    buyer = await sign_in()
    placed = await order(client, buyer, [(variant["id"], 1)], key="rotate-me")
    assert placed.status_code == 201, placed.text
    old = load_key_file(settings.key_file)
    ring = add_data_key(old)
    engine = create_engine(settings)
    try:
        await reencrypt_all(create_sessionmaker(engine), ring, protected=protected_columns())
    finally:
        await engine.dispose()
    only_new = dataclasses.replace(
        ring, data_keys={ring.active_data_kid: ring.data_keys[ring.active_data_kid]}
    )
    new_file = tmp_path / "rotated-keys.json"
    write_key_file(new_file, only_new)
    app = create_app(settings.model_copy(update={"key_file": new_file}))
    async with AsyncTestClient(app=app) as rotated:
        replay = await order(rotated, buyer, [(variant["id"], 1)], key="rotate-me")
    assert replay.status_code == 201, replay.text
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == placed.json()
