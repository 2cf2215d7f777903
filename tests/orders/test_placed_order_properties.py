"""Property tests on placed orders, on SQLite and PostgreSQL: hypothesis makes random carts
(1-20 lines, prices up to the catalog's maximum of 10^10 minor units, 1-999 units, tax
classes with random rates, a region rate that replaces the country's or not, inclusive or
exclusive prices, currencies with 0, 2 and 3 decimals, a shipping method with or without a
free-over threshold), the cart is priced as ``GET /carts/{id}`` prices it, the real
checkout of ``POST /orders`` places it (``place_cart_order`` for a guest's or the
customer's ``{cart_id}``, ``place_order`` for a customer's ``{shipping_address, ...}``), and
on what was stored every money invariant of the contract must hold: each line's equations
(also CHECKs), the rate that applies to it, the rounding rule, the order's sums over its
lines, shipping and its threshold, and the cart's figures equal to the order's and to the
answer's.

Thousands of examples per run: one engine, shop and customer per test, each example's rows
inserted in bulk and placed in one transaction; the conftest prints the counts at the end.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from emporium.accounts import service as account_service
from emporium.accounts.passwords import PasswordHasher
from emporium.accounts.protect import AccountsContext, build_context
from emporium.accounts.schemas import AddressIn
from emporium.catalog.models import Category, Product, Variant
from emporium.catalog.schemas import MAX_MONEY
from emporium.core.clock import utcnow
from emporium.core.config import Settings
from emporium.core.crypto.keys import load_key_file
from emporium.core.db.base import create_engine, create_sessionmaker, table_of
from emporium.orders import carts as cart_service
from emporium.orders.checkout import place_cart_order, place_order
from emporium.orders.models import Cart as CartRow
from emporium.orders.models import CartItem, Order, OrderLine
from emporium.orders.schemas import MAX_QUANTITY, CartView, OrderCreate, OrderCreated, OrderRead
from emporium.shipping.models import ShippingMethod, ShippingZone, TaxRate
from orders.test_pricing import reference_tax

EXAMPLES = 1500
"""Random carts placed per database per run (the issue asks for thousands per CI run)."""
ADDRESS = {
    "name": "Erika",
    "line1": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
    "region": "BE",
}
CLASSES = ("standard", "reduced", "zero", "untaxed")  # "untaxed" has no rate: zero
CURRENCIES = ("EUR", "USD", "JPY", "KWD", "BHD")  # 2, 2, 0, 3, 3 decimals
MAX_SHIPPING = 10**12  # what the shipping-method routes take
PATHS = ("guest-cart", "customer-cart", "customer")  # POST /orders {cart_id} or {address}
HASHER = PasswordHasher(pepper=b"p" * 32, time_cost=1, memory_cost=8, parallelism=1)
FIGURES = ("subtotal", "discount_total", "shipping_total", "tax_total", "total")
LINE_FIGURES = (
    "variant_id",
    "unit_price",
    "quantity",
    "subtotal",
    "discount_total",
    "tax_total",
    "total",
)


@dataclass(frozen=True)
class Cart:
    """A random cart and shop: lines ``(price, quantity, class)``, rates per class (region
    ``DE-BE`` overriding ``standard`` sometimes), shipping price and threshold, currency."""

    lines: list[tuple[int, int, str]]
    rates: dict[str, int]
    region_standard: int | None
    inclusive: bool
    shipping: int
    free_over: int | None
    currency: str
    path: str

    def rate(self, tax_class: str) -> int:
        """The rate the contract says applies in Berlin (DE-BE) to ``tax_class``."""
        if tax_class == "standard" and self.region_standard is not None:
            return self.region_standard
        return self.rates.get(tax_class, 0)


rates_bp = st.sampled_from([0, 500, 700, 1000, 1900, 2000, 2500, 10_000]) | st.integers(0, 10_000)
prices = st.integers(1, 10**7) | st.integers(1, MAX_MONEY)  # up to what the catalog takes
lines = st.lists(
    st.tuples(prices, st.integers(1, MAX_QUANTITY), st.sampled_from(CLASSES)),
    min_size=1,
    max_size=20,
)


@st.composite
def carts(draw: st.DrawFn) -> Cart:
    """A random :class:`Cart`; the free-over threshold is sometimes at the goods' subtotal
    exactly (or one unit either side), where ``>=`` and ``>`` differ."""
    drawn = draw(lines)
    subtotal = sum(price * quantity for price, quantity, _ in drawn)
    at_edge = st.sampled_from([-1, 0, 1]).map(lambda d: min(MAX_SHIPPING, max(0, subtotal + d)))
    return Cart(
        lines=drawn,
        rates=draw(st.fixed_dictionaries({c: rates_bp for c in CLASSES[:3]})),
        region_standard=draw(st.none() | rates_bp),
        inclusive=draw(st.booleans()),
        shipping=draw(st.integers(0, 10**5) | st.integers(0, MAX_SHIPPING)),
        free_over=draw(st.none() | st.integers(0, 10**5) | st.integers(0, MAX_SHIPPING) | at_edge),
        currency=draw(st.sampled_from(CURRENCIES)),
        path=draw(st.sampled_from(PATHS)),
    )


@dataclass
class Shop:
    """What every example shares: the engine, a category, the DE zone and its one method, a
    customer and their cart, and a guest's cart (addresses and method chosen once)."""

    engine: AsyncEngine
    maker: async_sessionmaker[AsyncSession]
    ctx: AccountsContext
    category_id: uuid.UUID
    method_id: uuid.UUID
    customer_id: uuid.UUID
    customer_cart: uuid.UUID
    guest_cart: uuid.UUID

    def cart_of(self, cart: Cart) -> uuid.UUID:
        """The cart this example fills: the guest's or the customer's."""
        return self.guest_cart if cart.path == "guest-cart" else self.customer_cart


async def open_shop(url: str, key_file: Path) -> Shop:
    """Set up the shared rows once for a test."""
    config = Settings(database_url=url, key_file=key_file)
    ctx = build_context(config, load_key_file(key_file), hasher=HASHER)
    engine = create_engine(config)
    maker = create_sessionmaker(engine)
    category_id, zone_id, method_id, mine, guests = (uuid.uuid4() for _ in range(5))
    async with maker() as db, db.begin():
        db.add(Category(id=category_id, name="C", slug=f"c-{category_id.hex}"))
        db.add(ShippingZone(id=zone_id, name="DE", countries=["DE"], regions=[]))
        await db.flush()
        db.add(
            ShippingMethod(
                id=method_id,
                zone_id=zone_id,
                name="Post",
                price=0,
                currency="EUR",
                tax_class="standard",
            )
        )
        user = await account_service.create_account(
            db, ctx, email=f"{uuid.uuid4().hex}@example.com", roles=["customer"]
        )
        address = msgspec.json.encode(ADDRESS).decode()
        for cart_id, owner in ((mine, user.id), (guests, None)):
            cart = CartRow(
                id=cart_id,
                customer_id=owner,
                token_hash=None if owner else uuid.uuid4().hex,
                currency="EUR",
                shipping_method_id=method_id,
            )
            cart.email_enc = ctx.vault.seal("cart", "email", cart_id, "guest@example.com")
            cart.shipping_address_enc = ctx.vault.seal("cart", "shipping_address", cart_id, address)
            db.add(cart)
    return Shop(engine, maker, ctx, category_id, method_id, user.id, mine, guests)


async def _arrange(db: AsyncSession, shop: Shop, cart: Cart) -> list[uuid.UUID]:
    """This example's rates, method price, products, variants and cart lines, in bulk."""
    await db.execute(delete(table_of(TaxRate)))
    rates = [
        {"country": "DE", "region": "", "tax_class": c, "rate_bp": r, "name": c}
        for c, r in cart.rates.items()
    ]
    if cart.region_standard is not None:
        rates.append(
            {
                "country": "DE",
                "region": "DE-BE",
                "tax_class": "standard",
                "rate_bp": cart.region_standard,
                "name": "BE",
            }
        )
    await db.execute(insert(table_of(TaxRate)), [r | {"id": uuid.uuid4()} for r in rates])
    await db.execute(
        update(table_of(ShippingMethod))
        .where(table_of(ShippingMethod).c.id == shop.method_id)
        .values(price=cart.shipping, free_over=cart.free_over, currency=cart.currency)
    )
    await db.execute(
        update(table_of(CartRow))
        .where(table_of(CartRow).c.id == shop.cart_of(cart))
        .values(currency=cart.currency)
    )
    products = [uuid.uuid4() for _ in cart.lines]
    variants = [uuid.uuid4() for _ in cart.lines]
    await db.execute(
        insert(table_of(Product)),
        [
            {
                "id": p,
                "slug": f"p-{p.hex}",
                "title": f"P{n}",
                "category_id": shop.category_id,
                "currency": cart.currency,
                "tax_class": tax_class,
                "published": True,
                "price_min": price,
            }
            for n, (p, (price, _, tax_class)) in enumerate(zip(products, cart.lines, strict=True))
        ],
    )
    await db.execute(
        insert(table_of(Variant)),
        [
            {
                "id": v,
                "product_id": p,
                "sku": f"S-{v.hex}",
                "title": "Default",
                "price": price,
                "currency": cart.currency,
                "stock": 10**6,
                "weight_grams": 100,
            }
            for v, p, (price, _, _) in zip(variants, products, cart.lines, strict=True)
        ],
    )
    now = utcnow()
    await db.execute(
        insert(table_of(CartItem)),
        [
            {
                "id": uuid.uuid4(),
                "cart_id": shop.cart_of(cart),
                "variant_id": v,
                "quantity": quantity,
                "created_at": now + timedelta(seconds=n),
                "updated_at": now,
            }
            for n, (v, (_, quantity, _)) in enumerate(zip(variants, cart.lines, strict=True))
        ],
    )
    return variants


async def _checkout(db: AsyncSession, shop: Shop, cart: Cart, row: CartRow) -> OrderCreated:
    """The real checkout of ``POST /orders``: ``{cart_id}`` (a guest's or the customer's
    cart), or the customer's ``{shipping_address, shipping_method_id}`` without items."""
    if cart.path != "customer":
        return await place_cart_order(db, shop.ctx, row, prices_include_tax=cart.inclusive)
    data = OrderCreate(shipping_address=AddressIn(**ADDRESS), shipping_method_id=shop.method_id)
    return await place_order(
        db, shop.ctx, customer_id=shop.customer_id, data=data, prices_include_tax=cart.inclusive
    )


async def place(shop: Shop, cart: Cart) -> None:
    """Fill a cart, price it as the cart answer does, check it out with the real checkout,
    then read back what was stored and check everything."""
    async with shop.maker() as db, db.begin():
        variants = await _arrange(db, shop, cart)
        row = await db.get(CartRow, shop.cart_of(cart))
        assert row is not None
        shown = await cart_service.view(db, shop.ctx.vault, row, prices_include_tax=cart.inclusive)
        answer = await _checkout(db, shop, cart, row)
    async with shop.maker() as db:
        order, lines = await _stored(db, answer.id)
        left = await db.scalar(select(func.count()).where(CartItem.cart_id == row.id))
    assert left == 0  # checked out from the cart: the cart is empty
    assert order.customer_id == (None if cart.path == "guest-cart" else shop.customer_id)
    assert (answer.order_token is not None) == (cart.path == "guest-cart")
    check_invariants(order, lines)
    check_contract(cart, variants, order, lines)
    check_same_figures(shown, answer, order, lines)


async def _stored(db: AsyncSession, order_id: uuid.UUID) -> tuple[Order, list[OrderLine]]:
    order = await db.get(Order, order_id)
    assert order is not None
    lines = (
        await db.scalars(
            select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.position)
        )
    ).all()
    return order, list(lines)


def check_invariants(order: Order, lines: list[OrderLine]) -> None:
    """The contract's equations (API.md, Orders) on the stored rows."""
    inclusive = order.prices_include_tax
    for line in lines:
        assert line.subtotal == line.unit_price * line.quantity
        assert 0 <= line.discount_total <= line.subtotal
        assert line.total == line.subtotal - line.discount_total + (
            0 if inclusive else line.tax_total
        )
        assert min(line.tax_total, line.total) >= 0
    assert order.subtotal == sum(line.subtotal for line in lines)
    assert order.discount_total == sum(line.discount_total for line in lines)
    assert order.tax_total == sum(line.tax_total for line in lines) + order.shipping_tax_total
    assert order.total == (
        order.subtotal
        - order.discount_total
        + order.shipping_total
        + (0 if inclusive else order.tax_total)
    )
    assert min(order.subtotal, order.discount_total, order.shipping_total) >= 0
    assert min(order.tax_total, order.total) >= 0


def check_contract(
    cart: Cart, variants: list[uuid.UUID], order: Order, lines: list[OrderLine]
) -> None:
    """What the random shop says the order must be, computed here without the pricing
    module: each line's price, quantity and rate, tax half up, shipping and its threshold."""
    assert (order.currency, order.prices_include_tax) == (cart.currency, cart.inclusive)
    expected = {
        v: (price, quantity, cart.rate(tax_class))
        for v, (price, quantity, tax_class) in zip(variants, cart.lines, strict=True)
    }
    assert {
        line.variant_id: (line.unit_price, line.quantity, line.tax_rate) for line in lines
    } == expected
    for line in lines:
        assert line.tax_total == reference_tax(
            line.subtotal - line.discount_total, line.tax_rate, cart.inclusive
        )
    free = cart.free_over is not None and order.subtotal - order.discount_total >= cart.free_over
    assert order.shipping_total == (0 if free else cart.shipping)
    assert order.shipping_tax_rate == cart.rate("standard")
    assert order.shipping_tax_total == reference_tax(
        order.shipping_total, cart.rate("standard"), cart.inclusive
    )


def _figures(thing: Any) -> tuple[int, ...]:
    return tuple(getattr(thing, k) for k in FIGURES)


def _line_figures(things: Any) -> list[tuple[Any, ...]]:
    return [tuple(getattr(t, k) for k in LINE_FIGURES) for t in things]


def check_same_figures(
    shown: CartView, answer: OrderRead, order: Order, lines: list[OrderLine]
) -> None:
    """One pricing function: the cart answer, the order answer and the stored order agree on
    every line and every total (nothing changed between the cart and the order)."""
    assert _figures(shown) == _figures(answer) == _figures(order)
    assert _line_figures(shown.items) == _line_figures(answer.items) == _line_figures(lines)
    assert [line.tax_rate for line in answer.items] == [line.tax_rate for line in lines]
    assert shown.shipping_method is not None
    assert answer.shipping is not None
    assert (
        (shown.shipping_method.price, shown.shipping_method.tax_total)
        == (answer.shipping.price, answer.shipping.tax_total)
        == (order.shipping_total, order.shipping_tax_total)
    )
    assert shown.currency == answer.currency == order.currency


def run_examples(url: str, key_file: Path, body: Callable[[Callable[[Cart], None]], None]) -> int:
    """Open one shop on ``url``, hand ``body`` a function that places a cart there, and
    return how many carts were placed."""
    placed = 0
    with asyncio.Runner() as runner:
        shop = runner.run(open_shop(url, key_file))

        def one(cart: Cart) -> None:
            nonlocal placed
            runner.run(place(shop, cart))
            placed += 1

        try:
            body(one)
        finally:
            runner.run(shop.engine.dispose())
    return placed


@pytest.mark.slow
def test_placed_orders_keep_every_invariant(
    database_url: str, key_file: Path, record_property: Callable[[str, object], None]
) -> None:
    def examples(place_one: Callable[[Cart], None]) -> None:
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
        )
        @given(cart=carts())
        def placed_order_keeps_every_invariant(cart: Cart) -> None:
            place_one(cart)

        placed_order_keeps_every_invariant()

    count = run_examples(database_url, key_file, examples)
    record_property("hypothesis_examples", count)
    assert count >= EXAMPLES  # hypothesis ran them all (no early stop hid a short run)
