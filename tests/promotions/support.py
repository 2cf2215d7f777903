"""Helpers for promotion tests: a promotion written straight into the database (so the tests
of checkout do not depend on the staff routes), and a guest's cart."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.core.clock import utcnow
from emporium.core.db.base import table_of
from emporium.promotions.models import Promotion
from factories import API, Client
from orders.support import ADDRESS

Json = dict[str, Any]


async def promotion(session: AsyncSession, **fields: Any) -> uuid.UUID:
    """Insert a promotion (defaults: 10 % off the whole order, USD, active, combinable,
    automatic) and commit; returns its id."""
    now = utcnow()
    row: Json = {
        "id": uuid.uuid4(),
        "name": "Promotion",
        "code": None,
        "type": "percentage",
        "value": 1000,
        "currency": "USD",
        "category_ids": [],
        "product_ids": [],
        "times_used": 0,
        "combinable": True,
        "active": True,
        "created_at": now,
        "updated_at": now,
    } | fields
    await session.execute(insert(table_of(Promotion)), [row])
    await session.commit()
    return uuid.UUID(str(row["id"]))


async def guest_cart(
    client: Client, lines: list[tuple[str, int]], email: str = "guest@example.com"
) -> tuple[str, dict[str, str]]:
    """A guest's cart with ``(variant_id, quantity)`` lines, an e-mail and an address;
    returns its id and the ``Cart-Token`` header."""
    items = [{"variant_id": v, "quantity": q} for v, q in lines]
    cart = await client.post(f"{API}/carts", json={"items": items})
    assert cart.status_code == 201, cart.text
    holder = {"Cart-Token": cart.json()["token"]}
    patched = await client.patch(
        f"{API}/carts/{cart.json()['id']}",
        headers=holder,
        json={"email": email, "shipping_address": ADDRESS},
    )
    assert patched.status_code == 200, patched.text
    return str(cart.json()["id"]), holder
