"""``emporium keys rotate`` re-encrypts the rooms above accounts too: order shipping
addresses (and webhook secrets) move to the new data key and still open."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import SignIn
from emporium.accounts.protect import Vault
from emporium.accounts.rotation import reencrypt_all
from emporium.cli import PROTECTED_COLUMNS
from emporium.core.config import Settings
from emporium.core.crypto import needs_reencryption
from emporium.core.db import create_engine, create_sessionmaker
from emporium.core.keys import add_data_key, load_key_file
from emporium.orders.models import Order
from emporium.orders.service import open_address
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
            create_sessionmaker(engine), ring, protected=PROTECTED_COLUMNS
        )
    finally:
        await engine.dispose()

    assert changed >= 1
    rotated = await session.scalar(select(Order.shipping_address_enc))
    assert rotated is not None
    assert not needs_reencryption(ring, rotated)
    address = open_address(Vault(ring), uuid.UUID(placed["id"]), rotated)
    assert address.city == ADDRESS["city"]
