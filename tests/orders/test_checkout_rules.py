"""Checkout rules a mutation test found unguarded: what is not for sale cannot be sold,
the cap on units of one variant holds after merging lines, and the totals the API shows."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import SignIn
from emporium.orders.models import Order
from emporium.orders.schemas import MAX_QUANTITY
from factories import API, Client, assert_problem, create_category, create_product, variant_body
from orders.support import ADDRESS, order, stock_of, stocked_variants


async def _orders(session: AsyncSession) -> int:
    count = int(await session.scalar(select(func.count()).select_from(Order)) or 0)
    await session.rollback()
    return count


Headers = dict[str, str]


async def _archive(client: Client, staff: Headers, variant: Headers, buyer: Headers) -> None:
    """Sell one unit (so the product cannot be deleted), then delete it: it is archived."""
    buyer_order = await order(client, buyer, [(variant["id"], 1)])
    assert buyer_order.status_code == 201, buyer_order.text
    gone = await client.delete(f"{API}/products/{variant['product_id']}", headers=staff)
    assert gone.status_code == 204, gone.text
    shown = await client.get(f"{API}/products/{variant['product_id']}", headers=staff)
    assert shown.status_code == 200, shown.text
    assert shown.json()["published"] is False


async def _unpublish(client: Client, staff: Headers, variant: Headers, _buyer: Headers) -> None:
    response = await client.patch(
        f"{API}/products/{variant['product_id']}", json={"published": False}, headers=staff
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("withdraw", [_archive, _unpublish], ids=["archived", "unpublished"])
async def test_a_product_not_for_sale_cannot_be_ordered_through_items(
    client: Client,
    admin_headers: dict[str, str],
    sign_in: SignIn,
    session: AsyncSession,
    withdraw: object,
) -> None:
    """``POST /orders`` naming a variant of an archived or unpublished product in ``items``
    is ``422 variant_unavailable`` naming that line; no order, no stock taken, even when
    the other lines are fine."""
    on_sale, withdrawn = await stocked_variants(client, admin_headers, 10, 10)
    buyer = await sign_in()
    await withdraw(client, admin_headers, withdrawn, buyer)  # type: ignore[operator]
    before = await _orders(session), await stock_of(client, admin_headers, withdrawn)
    for items in ([(withdrawn["id"], 1)], [(on_sale["id"], 1), (withdrawn["id"], 2)]):
        response = await order(client, buyer, items, key=str(uuid.uuid4()))
        problem = assert_problem(response, 422, "variant_unavailable")
        assert [e["msg"] for e in problem["errors"]] == [
            f"variant {withdrawn['id']} is not for sale"
        ]
    assert (await _orders(session), await stock_of(client, admin_headers, withdrawn)) == before
    assert await stock_of(client, admin_headers, on_sale) == 10


async def test_an_unknown_variant_is_unavailable(client: Client, sign_in: SignIn) -> None:
    """A variant id that does not exist is refused the same way (nothing to tell apart)."""
    buyer = await sign_in()
    response = await order(client, buyer, [(str(uuid.uuid4()), 1)])
    assert_problem(response, 422, "variant_unavailable")


async def test_the_unit_cap_counts_merged_lines_of_one_variant(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn, session: AsyncSession
) -> None:
    """Two lines of one variant whose quantities add up to more than the cap (999 units of
    one variant per order) are refused with 422 and change nothing; exactly the cap, split
    over two lines, is one line of 999."""
    (variant,) = await stocked_variants(client, admin_headers, 3 * MAX_QUANTITY)
    buyer = await sign_in()
    for split in ((MAX_QUANTITY, 1), (600, 400), (MAX_QUANTITY, MAX_QUANTITY)):
        response = await order(client, buyer, [(variant["id"], q) for q in split])
        problem = assert_problem(response, 422, "validation_error")
        assert problem["errors"] == [
            {"loc": ["body", "items"], "msg": f"too many units of {variant['id']}"}
        ]
    assert await _orders(session) == 0
    assert await stock_of(client, admin_headers, variant) == 3 * MAX_QUANTITY
    response = await order(client, buyer, [(variant["id"], 500), (variant["id"], 499)])
    assert response.status_code == 201, response.text
    assert [(i["variant_id"], i["quantity"]) for i in response.json()["items"]] == [
        (variant["id"], MAX_QUANTITY)
    ]
    assert await stock_of(client, admin_headers, variant) == 2 * MAX_QUANTITY


async def test_totals_are_the_sum_of_lines_wherever_the_order_is_shown(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    """Lines at different prices: each ``line_total`` is ``unit_price * quantity``, the
    ``subtotal`` their sum and ``total = subtotal``, in the answer of POST /orders, its
    replay, GET /orders/{id}, GET /orders and a cart checkout."""
    category = await create_category(client, admin_headers)
    prices = (1999, 250, 100_000)
    variants = []
    for price in prices:
        product = await create_product(
            client, admin_headers, category["id"], variants=[variant_body(price=price, stock=50)]
        )
        variants.append(product["variants"][0])
    buyer = await sign_in()
    items = [(variants[0]["id"], 3), (variants[1]["id"], 7), (variants[2]["id"], 2)]
    expected = [(1999, 3, 5997), (250, 7, 1750), (100_000, 2, 200_000)]
    placed = await order(client, buyer, items, key="totals")
    assert placed.status_code == 201, placed.text
    replay = await order(client, buyer, items, key="totals")
    one = await client.get(f"{API}/orders/{placed.json()['id']}", headers=buyer)
    listed = await client.get(f"{API}/orders", headers=buyer)
    for shown in (placed.json(), replay.json(), one.json(), listed.json()["items"][0]):
        lines = [(i["unit_price"], i["quantity"], i["line_total"]) for i in shown["items"]]
        assert lines == expected
        assert shown["subtotal"] == shown["total"] == 207_747
    for variant_id, quantity in items[:2]:
        added = await client.post(
            f"{API}/cart/items",
            json={"variant_id": variant_id, "quantity": quantity},
            headers=buyer,
        )
        assert added.status_code in (200, 201), added.text
    from_cart = await client.post(
        f"{API}/orders", json={"shipping_address": ADDRESS}, headers=buyer
    )
    assert from_cart.status_code == 201, from_cart.text
    assert (from_cart.json()["subtotal"], from_cart.json()["total"]) == (7747, 7747)
