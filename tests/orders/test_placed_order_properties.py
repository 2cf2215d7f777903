"""Property tests on placed orders, on SQLite and PostgreSQL: hypothesis makes random carts
(1-20 lines, prices 1 to 10^7 minor units, quantities, tax classes with random rates,
inclusive or exclusive prices, a shipping method with or without a free-over threshold),
checkout places them, and every money invariant of the contract must hold on what was
stored: each line's equations (also CHECKs), the order's sums over its lines, and the answer
equal to the stored order."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts import service as account_service
from emporium.accounts.protect import build_context
from emporium.accounts.schemas import AddressIn
from emporium.catalog.models import Category, Product, Variant
from emporium.core.config import Settings
from emporium.core.db import create_engine, create_sessionmaker
from emporium.core.keys import load_key_file
from emporium.core.passwords import PasswordHasher
from emporium.orders.checkout import place_order
from emporium.orders.models import Order, OrderLine
from emporium.orders.schemas import OrderCreate, OrderLineCreate
from emporium.shipping.models import ShippingMethod, ShippingZone, TaxRate

ADDRESS = {"name": "Erika", "line1": "Unter den Linden 1", "city": "Berlin",
           "postal_code": "10117", "country": "DE", "region": "BE"}  # fmt: skip
CLASSES = ("standard", "reduced", "zero", "untaxed")
HASHER = PasswordHasher(pepper=b"p" * 32, time_cost=1, memory_cost=8, parallelism=1)


@dataclass(frozen=True)
class Cart:
    """A random cart and shop: lines ``(price, quantity, class)``, rates per class (region
    ``DE-BE`` overriding ``standard`` sometimes), shipping price and threshold."""

    lines: list[tuple[int, int, str]]
    rates: dict[str, int]
    region_standard: int | None
    inclusive: bool
    shipping: int
    free_over: int | None


carts = st.builds(
    Cart,
    lines=st.lists(st.tuples(st.integers(1, 10**7), st.integers(1, 999), st.sampled_from(CLASSES)),
                   min_size=1, max_size=20),
    rates=st.fixed_dictionaries({c: st.sampled_from([0, 500, 700, 1900, 2000, 2500, 10_000])
                                 | st.integers(0, 10_000) for c in CLASSES[:3]}),
    region_standard=st.none() | st.integers(0, 10_000),
    inclusive=st.booleans(),
    shipping=st.integers(0, 10**5),
    free_over=st.none() | st.integers(0, 10**9),
)  # fmt: skip


def _shop_rows(cart: Cart) -> tuple[list[list[Any]], list[uuid.UUID], uuid.UUID]:
    category = Category(id=uuid.uuid4(), name="C", slug=f"c-{uuid.uuid4().hex}")
    rows: list[Any] = [category]
    variant_ids = []
    for n, (price, _, tax_class) in enumerate(cart.lines):
        product = Product(id=uuid.uuid4(), slug=f"p-{uuid.uuid4().hex}", title=f"P{n}",
                          category_id=category.id, currency="EUR", tax_class=tax_class,
                          published=True, price_min=price)  # fmt: skip
        variant = Variant(id=uuid.uuid4(), product_id=product.id, sku=f"S-{uuid.uuid4().hex}",
                          title="Default", price=price, currency="EUR", stock=10**6,
                          weight_grams=100)  # fmt: skip
        rows += [product, variant]
        variant_ids.append(variant.id)
    zone = ShippingZone(id=uuid.uuid4(), name="DE", countries=["DE"], regions=[])
    method = ShippingMethod(
        id=uuid.uuid4(),
        zone_id=zone.id,
        name="Post",
        price=cart.shipping,
        currency="EUR",
        free_over=cart.free_over,
        tax_class="standard",
    )
    tag = uuid.uuid4().hex[:8]  # rates are unique per place and class: one set per example
    rates = [TaxRate(id=uuid.uuid4(), country="DE", region="", tax_class=f"{c}-{tag}",
                     rate_bp=r, name=c) for c, r in cart.rates.items()]  # fmt: skip
    for row in rows:
        if isinstance(row, Product):
            row.tax_class = f"{row.tax_class}-{tag}"
    method.tax_class = f"standard-{tag}"
    if cart.region_standard is not None:
        rates.append(
            TaxRate(
                id=uuid.uuid4(),
                country="DE",
                region="DE-BE",
                tax_class=f"standard-{tag}",
                rate_bp=cart.region_standard,
                name="BE",
            )
        )
    products = [r for r in rows if isinstance(r, Product)]
    variants = [r for r in rows if isinstance(r, Variant)]
    return [[category, zone, *rates], products, [*variants, method]], variant_ids, method.id


async def _place(url: str, key_file: Path, cart: Cart) -> None:
    config = Settings(database_url=url, key_file=key_file)
    ctx = build_context(config, load_key_file(key_file), hasher=HASHER)
    engine = create_engine(config)
    try:
        maker = create_sessionmaker(engine)
        rows, variant_ids, method_id = _shop_rows(cart)
        async with maker() as db, db.begin():
            for group in rows:  # parents first: the rows have no ORM relationships
                db.add_all(group)
                await db.flush()
            user = await account_service.create_account(
                db, ctx, email=f"{uuid.uuid4().hex}@example.com", roles=["customer"]
            )
        data = OrderCreate(
            items=[OrderLineCreate(variant_id=v, quantity=q)
                   for v, (_, q, _) in zip(variant_ids, cart.lines, strict=True)],
            shipping_address=AddressIn(**ADDRESS), shipping_method_id=method_id,
        )  # fmt: skip
        async with maker() as db, db.begin():
            answer = await place_order(db, ctx, customer_id=user.id, data=data,
                                       prices_include_tax=cart.inclusive)  # fmt: skip
        async with maker() as db:
            await _check(db, answer.id, answer)
    finally:
        await engine.dispose()


async def _check(db: AsyncSession, order_id: uuid.UUID, answer: Any) -> None:
    order = await db.get(Order, order_id)
    assert order is not None
    sums = (await db.execute(
        select(func.sum(OrderLine.subtotal), func.sum(OrderLine.discount_total),
               func.sum(OrderLine.tax_total), func.count())
        .where(OrderLine.order_id == order_id)
    )).one()  # fmt: skip
    inclusive = order.prices_include_tax
    assert order.subtotal == sums[0]
    assert order.discount_total == sums[1]
    assert order.tax_total == sums[2] + order.shipping_tax_total
    assert order.total == (order.subtotal - order.discount_total + order.shipping_total
                           + (0 if inclusive else order.tax_total))  # fmt: skip
    assert min(order.subtotal, order.shipping_total, order.tax_total, order.total) >= 0
    stored = (order.subtotal, order.discount_total, order.shipping_total, order.tax_total,
              order.total)  # fmt: skip
    assert stored == (answer.subtotal, answer.discount_total, answer.shipping_total,
                      answer.tax_total, answer.total)  # fmt: skip
    lines = (await db.scalars(select(OrderLine).where(OrderLine.order_id == order_id)
                              .order_by(OrderLine.position))).all()  # fmt: skip
    for line, shown in zip(lines, answer.items, strict=True):
        assert line.subtotal == line.unit_price * line.quantity == shown.subtotal
        assert line.total == line.subtotal - line.discount_total + (
            0 if inclusive else line.tax_total) == shown.total  # fmt: skip
        assert (line.tax_rate, line.tax_total) == (shown.tax_rate, shown.tax_total)


def _run(database_url: str, key_file: Path, cart: Cart) -> None:
    asyncio.run(_place(database_url, key_file, cart))


@pytest.mark.slow
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cart=carts)
def test_placed_orders_keep_every_invariant(database_url: str, key_file: Path, cart: Cart) -> None:
    _run(database_url, key_file, cart)  # fmt: skip
