"""The database holds the contract's money equations itself (CHECK constraints, SQLite and
PostgreSQL): every order the pricing module computes is accepted, and a row whose figures
break an equation, or the rounding rule, by a single minor unit is refused."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from emporium.core.clock import utcnow
from emporium.core.config import Settings
from emporium.core.db.base import create_engine, create_sessionmaker, table_of
from emporium.orders.models import Order, OrderLine
from emporium.orders.pricing import LineInput, PricedOrder, ShippingInput, price_order
from emporium.orders.totals import line_read, line_row, order_figures
from orders.test_pricing import line_inputs, shippings

Row = dict[str, Any]


def rows_of(priced: PricedOrder) -> tuple[Row, list[Row]]:
    """The ``customer_order`` row and ``order_line`` rows checkout would write."""
    order_id, now = uuid.uuid4(), utcnow()
    order = {
        "id": order_id,
        "number": uuid.uuid4().hex[:20],
        "status": "pending",
        "currency": "EUR",
        "shipping_address_enc": "sealed",
        "created_at": now,
        "updated_at": now,
        **order_figures(priced),
    }
    lines = [
        {
            "order_id": order_id,
            "position": n,
            **line_row(
                line_read(uuid.uuid4(), None, f"SKU-{n}", "Thing", p), priced.prices_include_tax
            ),
        }
        for n, p in enumerate(priced.lines)
    ]
    return order, lines


async def store(url: str, order: Row, lines: list[Row]) -> None:
    """Write one order and its lines in one transaction."""
    engine = create_engine(Settings(database_url=url))
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await session.execute(insert(table_of(Order)), [order])
            await session.execute(insert(table_of(OrderLine)), lines)
    finally:
        await engine.dispose()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(line_inputs, min_size=1, max_size=20),
    inclusive=st.booleans(),
    order_discount=st.just(0) | st.integers(min_value=0, max_value=10**9),
    shipping=shippings,
)
def test_every_priced_order_is_accepted_by_the_database(
    database_url: str,
    lines: list[LineInput],
    inclusive: bool,
    order_discount: int,
    shipping: ShippingInput | None,
) -> None:
    priced = price_order(
        lines, prices_include_tax=inclusive, order_discount=order_discount, shipping=shipping
    )
    asyncio.run(store(database_url, *rows_of(priced)))


GERMAN = price_order(
    [LineInput(499, 3, 1900), LineInput(249, 2, 700)],
    prices_include_tax=True,
    shipping=ShippingInput(490, 1900),
)
CALIFORNIAN = price_order(
    [LineInput(1999, 2, 725), LineInput(600, 1, 725, discount=100)],
    prices_include_tax=False,
    shipping=ShippingInput(799, 725),
)
ORDER_TAMPERING = {
    "total one cent more": {"total": +1},
    "shipping without its total": {"shipping_total": +1},
    "shipping tax rounded wrong": {"shipping_tax_total": +1, "tax_total": +1, "total": +1},
    "discount above subtotal": {"discount_total": 10**6},
    "negative shipping": {"shipping_total": -(10**6)},
    "rate over 100 %": {"shipping_tax_rate": 10_001},
}
LINE_TAMPERING = {
    "subtotal not price x quantity": {"subtotal": +1, "total": +1},
    "tax rounded down instead of half up": {"tax_total": -1, "total": -1},
    "tax one cent more": {"tax_total": +1},
    "discount above subtotal": {"discount_total": 10**6},
    "negative tax rate": {"tax_rate": -10_000},
    "tax excluded from an exclusive total": {"total": -1},
}


def _changed(row: Row, delta: Row) -> Row:
    return row | {k: row[k] + v for k, v in delta.items()}


@pytest.mark.parametrize("priced", [GERMAN, CALIFORNIAN], ids=["DE-inclusive", "US-CA-exclusive"])
@pytest.mark.parametrize("case", ORDER_TAMPERING)
async def test_an_order_row_off_by_a_cent_is_refused(
    database_url: str, priced: PricedOrder, case: str
) -> None:
    order, lines = rows_of(priced)
    await store(database_url, *rows_of(priced))  # the true figures are accepted
    with pytest.raises(IntegrityError):
        await store(database_url, _changed(order, ORDER_TAMPERING[case]), lines)


@pytest.mark.parametrize("priced", [GERMAN, CALIFORNIAN], ids=["DE-inclusive", "US-CA-exclusive"])
@pytest.mark.parametrize("case", LINE_TAMPERING)
async def test_a_line_off_by_a_cent_is_refused(
    database_url: str, priced: PricedOrder, case: str
) -> None:
    order, lines = rows_of(priced)
    lines[1] = _changed(lines[1], LINE_TAMPERING[case])
    with pytest.raises(IntegrityError):
        await store(database_url, order, lines)
