"""``emporium import dummyjson`` replays the 208 DummyJSON carts as orders through checkout:
the carts that fit the stock become orders, the rest are reported and not forced."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.catalog.models import Variant
from emporium.cli import main
from emporium.core.config import Settings
from emporium.inventory.models import StockMovement
from emporium.orders.models import Order, OrderLine


def _expected(datasets_dir: Path) -> tuple[set[int], dict[int, int]]:
    """Which carts fit, replaying them in file order against the file's stock (an oracle
    written without Emporium code), and the stock left per product id."""
    products = json.loads((datasets_dir / "dummyjson-products.json").read_text())
    stock = {p["id"]: p["stock"] for p in products}
    carts = json.loads((datasets_dir / "dummyjson-carts.json").read_text())
    fits: set[int] = set()
    for cart in carts:
        wanted: dict[int, int] = {}
        for line in cart["products"]:
            wanted[line["id"]] = wanted.get(line["id"], 0) + line["quantity"]
        if all(stock[pid] >= q for pid, q in wanted.items()):
            fits.add(cart["id"])
            for pid, q in wanted.items():
                stock[pid] -= q
    return fits, stock


def _import(settings: Settings, datasets_dir: Path) -> Any:
    return CliRunner().invoke(
        main,
        ["import", "dummyjson", str(datasets_dir)],
        env={"EMPORIUM_DATABASE_URL": settings.database_url},
        catch_exceptions=False,
    )


@pytest.mark.slow
async def test_carts_become_orders_and_oversells_are_reported(
    session: AsyncSession, settings: Settings, datasets_dir: Path
) -> None:
    """Orders exactly for the carts that fit; each refused cart named; stock and ledger agree
    with the oracle; a second import changes nothing."""
    fits, left = _expected(datasets_dir)
    result = await asyncio.to_thread(_import, settings, datasets_dir)
    assert result.exit_code == 0, result.output
    refused = 208 - len(fits)
    assert f"orders: {len(fits)} created" in result.output
    assert f"{refused} refused" in result.output
    assert result.output.count("would oversell") == refused

    refs = set(await session.scalars(select(Order.external_ref)))
    assert refs == {f"dummyjson-cart:{n}" for n in fits}
    expiring = select(func.count()).select_from(Order).where(Order.expires_at.is_not(None))
    assert await session.scalar(expiring) == 0  # history: awaiting no payment, never expired
    mismatched = await session.scalar(
        select(func.count())
        .select_from(Order)
        .where(
            Order.total
            != select(func.sum(OrderLine.subtotal))
            .where(OrderLine.order_id == Order.id)
            .scalar_subquery()
        )
    )
    assert mismatched == 0
    ledger = (
        select(func.coalesce(func.sum(StockMovement.delta), 0))
        .where(StockMovement.variant_id == Variant.id)
        .scalar_subquery()
    )
    rows = (await session.execute(select(Variant.sku, Variant.stock, ledger))).all()
    assert all(stock == balance for _, stock, balance in rows)
    assert sorted(stock for _, stock, _ in rows) == sorted(left.values())
    await session.rollback()

    again = await asyncio.to_thread(_import, settings, datasets_dir)
    assert again.exit_code == 0, again.output
    assert f"orders: 0 created, 0 updated, {len(fits)} unchanged" in again.output
    assert "nothing changed" in again.output
    assert await session.scalar(select(func.count()).select_from(Order)) == len(fits)
