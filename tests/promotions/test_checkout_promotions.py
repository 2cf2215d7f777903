"""Promotions through the cart and checkout: codes entered (case-insensitive), refused with
the contract's reasons and nothing kept, reported on the cart when they stop applying,
held by the order with what they gave, counted per buyer by e-mail (guests too), given back
when the order is cancelled, and never used beyond their limits."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import SignIn
from emporium.core.clock import utcnow
from emporium.core.db.base import table_of
from emporium.jobs.models import OutboxEvent
from emporium.promotions.models import Promotion
from factories import API, Client, assert_problem
from orders.support import order, stocked_variants
from promotions.support import guest_cart, promotion


async def _times_used(session: AsyncSession, promotion_id: object) -> int:
    await session.rollback()
    used = await session.scalar(
        select(table_of(Promotion).c.times_used).where(table_of(Promotion).c.id == promotion_id)
    )
    return int(used or 0)


async def test_a_code_entered_in_any_case_discounts_the_cart_and_the_order(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    """10 % off 2 x 19.99 = 39.98 -> 4.00 (3.998 rounded half up), total 35.98 (no tax, no
    shipping configured); the order holds the code with what it gave and counts one use."""
    promo = await promotion(session, name="Ten off", code="SAVE10")
    (variant,) = await stocked_variants(client, admin_headers, 10)
    cart_id, holder = await guest_cart(client, [(variant["id"], 2)])
    entered = await client.post(
        f"{API}/carts/{cart_id}/promotion-codes", json={"code": " save10 "}, headers=holder
    )
    assert entered.status_code == 200, entered.text
    cart = entered.json()
    assert cart["promotion_codes"] == ["SAVE10"]
    assert cart["promotions"] == [{"code": "SAVE10", "name": "Ten off", "amount": 400}]
    assert (cart["subtotal"], cart["discount_total"], cart["total"]) == (3998, 400, 3598)
    assert cart["items"][0]["discount_total"] == 400
    assert cart["promotion_issues"] == []
    placed = await client.post(f"{API}/orders", json={"cart_id": cart_id}, headers=holder)
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert order["promotions"] == [{"code": "SAVE10", "name": "Ten off", "amount": 400}]
    assert (order["discount_total"], order["total"]) == (400, 3598)
    token = {"Order-Token": order["order_token"]}
    again = await client.get(f"{API}/orders/{order['id']}", headers=token)
    assert again.json()["promotions"] == order["promotions"]
    assert await _times_used(session, promo) == 1
    redeemed = (
        (
            await session.execute(
                select(OutboxEvent.data).where(OutboxEvent.type == "promotion.redeemed")
            )
        )
        .scalars()
        .all()
    )
    assert [(e["order_id"], e["code"], e["amount"]) for e in redeemed] == [
        (order["id"], "SAVE10", 400)
    ]
    emptied = await client.get(f"{API}/carts/{cart_id}", headers=holder)
    assert emptied.json()["promotion_codes"] == []


async def test_codes_that_cannot_be_used_are_refused_with_their_reason_and_not_kept(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    now = utcnow()
    await promotion(
        session, code="OLD", ends_at=now - timedelta(days=1), starts_at=now - timedelta(days=9)
    )
    await promotion(session, code="GONE", usage_limit=0)
    await promotion(session, code="OFF", active=False)
    await promotion(session, code="BIG", min_subtotal=100_000)
    await promotion(session, code="LATER", starts_at=now + timedelta(days=1))
    (variant,) = await stocked_variants(client, admin_headers, 10)
    cart_id, holder = await guest_cart(client, [(variant["id"], 1)])
    for code, reason in (
        ("OLD", "promotion_expired"),
        ("GONE", "promotion_exhausted"),
        ("OFF", "promotion_code_invalid"),
        ("NOSUCH", "promotion_code_invalid"),
        ("BIG", "promotion_not_applicable"),
        ("LATER", "promotion_not_applicable"),
    ):
        refused = await client.post(
            f"{API}/carts/{cart_id}/promotion-codes", json={"code": code}, headers=holder
        )
        assert_problem(refused, 422, reason)
    cart = (await client.get(f"{API}/carts/{cart_id}", headers=holder)).json()
    assert (cart["promotion_codes"], cart["discount_total"]) == ([], 0)
    malformed = await client.post(
        f"{API}/carts/{cart_id}/promotion-codes", json={"code": "x"}, headers=holder
    )
    assert malformed.status_code == 422


async def test_a_code_that_stops_applying_is_reported_and_refuses_the_order(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    """A code for one product: removing that product's line leaves the code on the cart,
    reported as not applicable, and placing the order is refused until it is removed."""
    first, second = await stocked_variants(client, admin_headers, 10, 10)
    await promotion(session, code="SHIRT", product_ids=[first["product_id"]], name="Shirts")
    cart_id, holder = await guest_cart(client, [(first["id"], 1), (second["id"], 1)])
    entered = await client.post(
        f"{API}/carts/{cart_id}/promotion-codes", json={"code": "shirt"}, headers=holder
    )
    assert entered.status_code == 200, entered.text
    shown = entered.json()
    assert [i["discount_total"] for i in shown["items"]] == [200, 0]
    line = shown["items"][0]["id"]
    removed = await client.delete(f"{API}/carts/{cart_id}/items/{line}", headers=holder)
    assert removed.status_code in (200, 204), removed.text
    cart = (await client.get(f"{API}/carts/{cart_id}", headers=holder)).json()
    assert cart["promotion_codes"] == ["SHIRT"]
    assert cart["promotions"] == []
    assert cart["discount_total"] == 0
    assert [(i["code"], i["reason"]) for i in cart["promotion_issues"]] == [
        ("SHIRT", "promotion_not_applicable")
    ]
    refused = await client.post(f"{API}/orders", json={"cart_id": cart_id}, headers=holder)
    assert_problem(refused, 422, "promotion_not_applicable")
    taken_off = await client.delete(f"{API}/carts/{cart_id}/promotion-codes/shirt", headers=holder)
    assert taken_off.status_code == 200, taken_off.text
    assert taken_off.json()["promotion_codes"] == []
    placed = await client.post(f"{API}/orders", json={"cart_id": cart_id}, headers=holder)
    assert placed.status_code == 201, placed.text


async def test_a_once_per_customer_code_counts_guests_by_email_and_comes_back_on_cancel(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    promo = await promotion(session, code="ONCE", usage_limit_per_customer=1)
    (variant,) = await stocked_variants(client, admin_headers, 10)

    async def buy(email: str) -> tuple[int, dict[str, object]]:
        cart_id, holder = await guest_cart(client, [(variant["id"], 1)], email=email)
        entered = await client.post(
            f"{API}/carts/{cart_id}/promotion-codes", json={"code": "once"}, headers=holder
        )
        if entered.status_code != 200:
            return entered.status_code, entered.json()
        placed = await client.post(f"{API}/orders", json={"cart_id": cart_id}, headers=holder)
        return placed.status_code, placed.json()

    status, first = await buy("Ann@Example.com")
    assert status == 201, first
    status, again = await buy("ann@example.com")
    assert (status, again["code"]) == (422, "promotion_exhausted")
    status, other = await buy("bob@example.com")
    assert status == 201, other
    assert await _times_used(session, promo) == 2
    cancelled = await client.post(f"{API}/orders/{first['id']}/cancel", headers=admin_headers)
    assert cancelled.status_code == 200, cancelled.text
    assert await _times_used(session, promo) == 1
    status, after = await buy("ann@example.com")
    assert status == 201, after


async def test_an_automatic_promotion_applies_by_itself_and_the_best_single_one_wins(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    """An automatic 10 % (combinable) and a non-combinable 15.00 code on a 100.00 cart: the
    code alone saves more (15.00 > 10.00), so it wins and the automatic one is left out;
    with the code removed the automatic one applies again."""
    await promotion(session, name="Winter sale")
    await promotion(
        session, name="Big fixed", code="FIFTEEN", type="fixed_amount", value=1500, combinable=False
    )
    (variant,) = await stocked_variants(client, admin_headers, 10, price=5000)
    cart_id, holder = await guest_cart(client, [(variant["id"], 2)])
    shown = (await client.get(f"{API}/carts/{cart_id}", headers=holder)).json()
    assert shown["promotions"] == [{"code": None, "name": "Winter sale", "amount": 1000}]
    entered = await client.post(
        f"{API}/carts/{cart_id}/promotion-codes", json={"code": "fifteen"}, headers=holder
    )
    assert entered.json()["promotions"] == [
        {"code": "FIFTEEN", "name": "Big fixed", "amount": 1500}
    ]
    placed = await client.post(f"{API}/orders", json={"cart_id": cart_id}, headers=holder)
    assert placed.status_code == 201, placed.text
    assert (placed.json()["discount_total"], placed.json()["total"]) == (1500, 8500)


async def test_a_customer_order_takes_promotion_codes_in_its_body(
    client: Client, admin_headers: dict[str, str], session: AsyncSession, sign_in: SignIn
) -> None:
    await promotion(session, code="FIVE", type="fixed_amount", value=500)
    (variant,) = await stocked_variants(client, admin_headers, 10)
    buyer = await sign_in()
    placed = await order(client, buyer, [(variant["id"], 1)], promotion_codes=["five"])
    assert placed.status_code == 201, placed.text
    assert placed.json()["promotions"] == [{"code": "FIVE", "name": "Promotion", "amount": 500}]
    refused = await order(client, buyer, [(variant["id"], 1)], promotion_codes=["NOPE"])
    assert_problem(refused, 422, "promotion_code_invalid")
