"""Replay DummyJSON carts (``dummyjson-carts.json``) as orders, through the real checkout.

Each cart becomes one order of the imported customer (``userId`` → the account imported from
``dummyjson-users.json``), shipped to that customer's first address, with lines priced from
the catalog (the file's prices and discounts are ignored: prices come from the server only).
A cart that would oversell is refused by checkout and reported, never forced; its
savepoint rolls back so the rest of the import goes on. Re-running the import skips carts
already replayed (``external_ref`` ``dummyjson-cart:<id>``). Replayed orders are history:
they send no confirmation e-mail and no ``order.created`` webhook, and they await no payment
in this shop, so they have no ``expires_at`` (the expiry job never cancels them).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from msgspec import Struct
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.models import Address, UserAccount
from emporium.accounts.protect import AccountsContext
from emporium.catalog.models import Product, Variant
from emporium.importers.common import (
    ImportReport,
    Problem,
    parse_records,
    read_json_records,
)
from emporium.inventory.exceptions import InsufficientStock
from emporium.orders.checkout import place_order
from emporium.orders.models import Order
from emporium.orders.schemas import MAX_LINES, MAX_QUANTITY, OrderCreate, OrderLineCreate

CARTS_FILE = "dummyjson-carts.json"


class ImportCart(Struct):
    """A cart to replay: whose, and ``(product external_ref, quantity)`` lines."""

    external_ref: str
    user_ref: str
    lines: list[tuple[str, int]]
    where: str


def _positive_int(value: Any, limit: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
        raise ValueError(f"must be a whole number from 1 to {limit}, not {value!r}")
    return value


def _cart(raw: Any, index: int) -> ImportCart:
    if not isinstance(raw, dict):
        raise ValueError("a cart must be an object")
    products = raw.get("products")
    if not isinstance(products, list) or not 1 <= len(products) <= MAX_LINES:
        raise ValueError(f"products must be a list of 1 to {MAX_LINES} lines")
    lines = [
        (
            f"dummyjson:{_positive_int(p.get('id'), 2**31)}",
            _positive_int(p.get("quantity"), MAX_QUANTITY),
        )
        for p in products
    ]
    return ImportCart(
        external_ref=f"dummyjson-cart:{_positive_int(raw.get('id'), 2**31)}",
        user_ref=f"dummyjson-user:{_positive_int(raw.get('userId'), 2**31)}",
        lines=lines,
        where=f"$[{index}]",
    )


def parse(directory: Path, *, skip_invalid: bool = False) -> tuple[list[ImportCart], list[Problem]]:
    """Read and validate ``DIR/dummyjson-carts.json``; a missing file means no carts.

    Raises ImportFailed for an unreadable file, or any invalid cart unless ``skip_invalid``.
    """
    path = directory / CARTS_FILE
    if not path.is_file():
        return [], []
    records = read_json_records(path, "carts")
    return parse_records(path, records, _cart, skip_invalid=skip_invalid)


async def _lookups(session: AsyncSession) -> tuple[dict[str, Any], dict[str, Any]]:
    users: dict[str, Any] = {}
    for ref, user_id in await session.execute(
        select(UserAccount.external_ref, UserAccount.id).where(
            UserAccount.external_ref.is_not(None)
        )
    ):
        users[str(ref)] = user_id
    variants: dict[str, Any] = {}
    rows = await session.execute(
        select(Product.external_ref, Variant.id)
        .join(Variant, Variant.product_id == Product.id)
        .where(Product.external_ref.is_not(None))
        .order_by(Product.external_ref, Variant.position)
    )
    for ref, variant_id in rows:
        variants.setdefault(str(ref), variant_id)
    return users, variants


async def _address_id(session: AsyncSession, user_id: uuid.UUID) -> uuid.UUID | None:
    return await session.scalar(
        select(Address.id).where(Address.user_id == user_id).order_by(Address.created_at).limit(1)
    )


async def replay_carts(
    session: AsyncSession,
    ctx: AccountsContext,
    carts: list[ImportCart],
    report: ImportReport,
    *,
    file: str = CARTS_FILE,
) -> None:
    """Place one order per cart not replayed before; count orders ``created``,
    ``unchanged`` (replayed before) and ``refused`` (would oversell, or the customer or a
    product is unknown), each refusal added to ``report.problems`` with the reason."""
    users, variants = await _lookups(session)
    done = set(
        (
            await session.scalars(
                select(Order.external_ref).where(
                    Order.external_ref.in_([c.external_ref for c in carts])
                )
            )
        ).all()
    )
    for cart in carts:
        if cart.external_ref in done:
            report.add("orders", "unchanged")
            continue
        reason = await _replay(session, ctx, cart, users, variants)
        if reason is None:
            report.add("orders", "created")
        else:
            report.add("orders", "refused")
            report.problems.append(Problem(file, cart.where, reason, cart.external_ref))


async def _replay(
    session: AsyncSession,
    ctx: AccountsContext,
    cart: ImportCart,
    users: dict[str, Any],
    variants: dict[str, Any],
) -> str | None:
    user_id = users.get(cart.user_ref)
    if user_id is None:
        return f"no imported customer {cart.user_ref}"
    unknown = [ref for ref, _ in cart.lines if ref not in variants]
    if unknown:
        return f"unknown products: {', '.join(unknown)}"
    address_id = await _address_id(session, user_id)
    if address_id is None:
        return f"customer {cart.user_ref} has no address to ship to"
    data = OrderCreate(
        items=[OrderLineCreate(variant_id=variants[ref], quantity=q) for ref, q in cart.lines],
        address_id=address_id,
    )
    try:
        async with session.begin_nested():
            await place_order(
                session,
                ctx,
                customer_id=user_id,
                data=data,
                external_ref=cart.external_ref,
                announce=False,
                require_shipping=False,
                payment_minutes=None,
            )
    except InsufficientStock as exc:
        short = ", ".join(
            f"{line['sku']} wants {line['requested']}, {line['available']} on hand"
            for line in exc.lines
        )
        return f"would oversell ({short}); not forced"
    return None
