"""Returns through the HTTP API, on SQLite and PostgreSQL: asking (never more than shipped,
even at once; within the window for customers and guests, any time for staff), receiving
with and without restocking (the ledger), refunding a partial return then the rest (exactly
what was paid, ``payment_status`` partially_refunded then refunded), a refund to a split
payment (gift card first). Orders are shipped by ``ship_everything_in_db`` until the
fulfilment routes merge."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.core.clock import utcnow
from emporium.jobs.models import OutboxEvent
from emporium.orders.models import OrderLine
from factories import API, Client, assert_problem, at_once
from orders.support import ledger, stock_of
from payments.support import guest_order, pay
from payments.test_gift_card_payments import card_state, issue, spend
from returns.support import (
    STOCK,
    ask_return,
    paid_customer_order,
    read_order,
    receive,
    refund,
    return_body,
    set_up_shop,
    ship_everything_in_db,
)

Json = dict[str, Any]
Headers = dict[str, str]


async def refunds_of(client: Client, staff: Headers, order_id: str) -> list[Json]:
    """The order's refunds as staff list them."""
    listed = await client.get(f"{API}/orders/{order_id}/refunds", headers=staff)
    assert listed.status_code == 200, listed.text
    items: list[Json] = listed.json()["items"]
    return items


async def test_a_partial_return_then_the_rest_refund_exactly_what_was_paid(
    client: Client, sign_in: Any, session: AsyncSession
) -> None:
    """3 x 19.99 and 2 x 5.00, 10 % off, 20 % VAT on top, shipping 4.90. By hand:
    line one 59.97 - 6.00 = 53.97, VAT 10.79, total 64.76; line two 10.00 - 1.00 = 9.00,
    VAT 1.80, total 10.80; shipping 4.90 + 0.98; order 81.44.
    Return 1 unit of line one: 53.97 / 3 = 17.99, VAT 3.60, refund 21.59.
    Then the other 2 units (64.76 - 21.59 = 43.17, not 2 x 21.59 = 43.18: the rounding does
    not drift), both of line two, damaged (10.80), and the shipping (5.88): 59.85.
    21.59 + 59.85 = 81.44, exactly the order's total."""
    staff, customer = await sign_in(roles=["staff"]), await sign_in()
    method = await set_up_shop(client, staff)
    order, (shirt, socks) = await paid_customer_order(client, staff, customer, method_id=method)
    assert order["total"] == 8144
    one, two = (line["id"] for line in order["items"])
    await ship_everything_in_db(session, order["id"])

    first = await ask_return(client, order["id"], customer, (one, 1))
    assert first.status_code == 201, first.text
    assert (first.json()["status"], first.json()["requested_by"]) == ("requested", "customer")
    received = await receive(client, staff, first.json()["id"], (one, 1, True))
    assert received["status"] == "received"
    assert received["lines"][0] | {"reason": ""} == {
        "order_line_id": one,
        "quantity": 1,
        "quantity_received": 1,
        "restocked": 1,
        "reason": "",
    }
    refunded = await refund(client, staff, first.json()["id"])
    assert refunded.status_code == 200, refunded.text
    assert (refunded.json()["status"], refunded.json()["amount_refunded"]) == ("refunded", 2159)
    partly = await read_order(client, order["id"], customer)
    assert (partly["payment_status"], partly["fulfillment_status"]) == (
        "partially_refunded",
        "partially_returned",
    )
    assert (partly["refunded_total"], partly["items"][0]["quantity_returned"]) == (2159, 1)
    assert await stock_of(client, staff, shirt) == STOCK - 3 + 1
    again = await refund(client, staff, first.json()["id"])
    assert_problem(again, 409, "return_state_conflict")

    rest = await ask_return(client, order["id"], customer, (one, 2), (two, 2))
    assert rest.status_code == 201, rest.text
    await receive(client, staff, rest.json()["id"], (one, 2, True), (two, 2, False))
    last = await refund(client, staff, rest.json()["id"], include_shipping=True)
    assert last.status_code == 200, last.text
    assert last.json()["amount_refunded"] == 4317 + 1080 + 588

    final = await read_order(client, order["id"], customer)
    assert (final["payment_status"], final["fulfillment_status"]) == ("refunded", "returned")
    assert final["refunded_total"] == final["paid_total"] == 8144
    assert sum(r["amount"] for r in await refunds_of(client, staff, order["id"])) == 8144
    # The shirts came back on the shelf through the ledger; the damaged socks did not.
    assert await stock_of(client, staff, shirt) == STOCK
    assert await stock_of(client, staff, socks) == STOCK - 2
    returned = [m for m in await ledger(client, staff, shirt["id"]) if m["kind"] == "returned"]
    assert sorted(m["delta"] for m in returned) == [1, 2]
    assert all(m["order_id"] == order["id"] for m in returned)
    assert not [m for m in await ledger(client, staff, socks["id"]) if m["kind"] == "returned"]
    types = (await session.execute(select(OutboxEvent.type))).scalars().all()
    assert [types.count(t) for t in ("return.requested", "return.received", "refund.created")] == [
        2,
        2,
        2,
    ]


async def test_a_return_over_the_fulfilled_quantity_is_refused_and_changes_nothing(
    client: Client, sign_in: Any, session: AsyncSession
) -> None:
    staff, customer = await sign_in(roles=["staff"]), await sign_in()
    order, _ = await paid_customer_order(client, staff, customer, units=((1000, 3),))
    line = order["items"][0]["id"]
    # Paid, nothing shipped yet: nothing to return.
    assert_problem(
        await ask_return(client, order["id"], customer, (line, 1)), 409, "return_exceeds_fulfilled"
    )
    await ship_everything_in_db(session, order["id"])
    assert_problem(
        await ask_return(client, order["id"], customer, (line, 4)), 409, "return_exceeds_fulfilled"
    )
    asked = await ask_return(client, order["id"], customer, (line, 2))
    assert asked.status_code == 201, asked.text
    # Two asked back and open: only one more may be.
    assert_problem(
        await ask_return(client, order["id"], staff, (line, 2)), 409, "return_exceeds_fulfilled"
    )
    listed = await client.get(f"{API}/orders/{order['id']}/returns", headers=customer)
    assert listed.status_code == 200, listed.text
    assert [r["lines"][0]["quantity"] for r in listed.json()["items"]] == [2]
    # Of the two asked, one arrives: the other is released and may be asked again.
    await receive(client, staff, asked.json()["id"], (line, 1, True))
    assert (await ask_return(client, order["id"], customer, (line, 2))).status_code == 201
    assert_problem(
        await ask_return(client, order["id"], customer, (line, 1)), 409, "return_exceeds_fulfilled"
    )
    # Bad input is 422 and changes nothing.
    twice = {"lines": return_body((line, 1))["lines"] * 2}
    answer = await client.post(f"{API}/orders/{order['id']}/returns", json=twice, headers=staff)
    assert_problem(answer, 422)
    zero = return_body((line, 0))
    answer = await client.post(f"{API}/orders/{order['id']}/returns", json=zero, headers=staff)
    assert_problem(answer, 422)
    read = await read_order(client, order["id"], customer)
    assert read["items"][0]["quantity_returned"] == 1


async def test_concurrent_requests_never_ask_back_more_than_was_shipped(
    client: Client, sign_in: Any, session: AsyncSession
) -> None:
    """Six requests at once, each for 2 of the 3 shipped units: exactly one is accepted."""
    staff, customer = await sign_in(roles=["staff"]), await sign_in()
    order, _ = await paid_customer_order(client, staff, customer, units=((1000, 3),))
    line = order["items"][0]["id"]
    await ship_everything_in_db(session, order["id"])
    path = f"/orders/{order['id']}/returns"
    answers = await at_once(
        client, *[("POST", path, customer, return_body((line, 2))) for _ in range(6)]
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [409] * 5, [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {
        "return_exceeds_fulfilled"
    }
    requested = await session.scalar(
        select(OrderLine.quantity_return_requested).where(OrderLine.id == uuid.UUID(line))
    )
    assert requested == 2
    listed = await client.get(f"{API}/orders/{order['id']}/returns", headers=staff)
    assert len(listed.json()["items"]) == 1


async def test_customers_and_guests_ask_within_the_window_and_staff_any_time(
    client: Client, sign_in: Any, session: AsyncSession
) -> None:
    staff, customer = await sign_in(roles=["staff"]), await sign_in()
    order, _ = await paid_customer_order(client, staff, customer, units=((1000, 3),))
    line = order["items"][0]["id"]
    await ship_everything_in_db(
        session, order["id"], delivered_at=utcnow() - timedelta(days=30, hours=1)
    )
    late = await ask_return(client, order["id"], customer, (line, 1))
    assert_problem(late, 409, "return_window_closed")
    by_staff = await ask_return(client, order["id"], staff, (line, 1))
    assert by_staff.status_code == 201, by_staff.text
    assert by_staff.json()["requested_by"] == "staff"
    # Another customer does not see the order at all.
    stranger = await sign_in()
    assert_problem(await ask_return(client, order["id"], stranger, (line, 1)), 404)

    guest_paid, guest = await guest_order(client, staff, quantity=2)
    assert (await pay(client, guest_paid["id"], guest)).status_code == 201
    await ship_everything_in_db(
        session, guest_paid["id"], delivered_at=utcnow() - timedelta(days=29)
    )
    guest_line = guest_paid["items"][0]["id"]
    in_time = await ask_return(client, guest_paid["id"], guest, (guest_line, 1))
    assert in_time.status_code == 201, in_time.text
    assert in_time.json()["requested_by"] == "guest"
    forged = await ask_return(client, guest_paid["id"], {"Order-Token": "x" * 43}, (guest_line, 1))
    assert_problem(forged, 404)
    listed = await client.get(f"{API}/orders/{guest_paid['id']}/returns", headers=guest)
    assert [r["status"] for r in listed.json()["items"]] == ["requested"]


async def test_a_return_is_refunded_to_the_gift_card_first(
    client: Client, admin_headers: Headers, session: AsyncSession
) -> None:
    """2 x 15.00, 10.00 paid by gift card, 20.00 by card. One unit back: 15.00, of which
    10.00 to the gift card first and 5.00 to the card; then the other: 15.00 to the card."""
    staff = admin_headers
    order, guest = await guest_order(client, staff, quantity=2, price=1500)
    gift = await issue(client, staff, 1000)
    assert (await spend(client, order, guest, gift["code"])).status_code == 201
    assert (await pay(client, order["id"], guest)).status_code == 201
    await ship_everything_in_db(session, order["id"])
    line = order["items"][0]["id"]

    first = await ask_return(client, order["id"], guest, (line, 1))
    await receive(client, staff, first.json()["id"], (line, 1, True))
    refunded = await refund(client, staff, first.json()["id"])
    assert refunded.json()["amount_refunded"] == 1500
    parts = await refunds_of(client, staff, order["id"])
    listed = await client.get(f"{API}/orders/{order['id']}/payments", headers=staff)
    provider_of = {p["id"]: p["provider"] for p in listed.json()["items"]}
    assert sorted((provider_of[r["payment_id"]], r["amount"], r["status"]) for r in parts) == [
        ("gift_card", 1000, "succeeded"),
        ("test", 500, "succeeded"),
    ]
    assert (await card_state(client, staff, gift))["balance"] == 1000
    partly = await read_order(client, order["id"], guest)
    assert (partly["payment_status"], partly["refunded_total"]) == ("partially_refunded", 1500)

    second = await ask_return(client, order["id"], guest, (line, 1))
    await receive(client, staff, second.json()["id"], (line, 1, False))
    assert (await refund(client, staff, second.json()["id"])).json()["amount_refunded"] == 1500
    final = await read_order(client, order["id"], guest)
    assert (final["payment_status"], final["refunded_total"], final["paid_total"]) == (
        "refunded",
        3000,
        3000,
    )
    assert (await card_state(client, staff, gift))["balance"] == 1000


async def test_concurrent_refunds_pay_each_return_once_and_never_drift(
    client: Client, sign_in: Any, session: AsyncSession
) -> None:
    """Three returns of one unit each of 3 x 19.99 less 10 %, 20 % VAT on top (64.76 in
    all), refunded by staff at once, each refund asked twice: every return is refunded
    once (the second ask: 409), and together they refund exactly the line's 64.76."""
    staff, customer = await sign_in(roles=["staff"]), await sign_in()
    method = await set_up_shop(client, staff)
    order, _ = await paid_customer_order(
        client, staff, customer, units=((1999, 3),), method_id=method
    )
    line = order["items"][0]
    assert line["total"] == 6476
    await ship_everything_in_db(session, order["id"])
    ids = []
    for _ in range(3):
        asked = await ask_return(client, order["id"], customer, (line["id"], 1))
        await receive(client, staff, asked.json()["id"], (line["id"], 1, True))
        ids.append(asked.json()["id"])
    calls: list[tuple[str, str, Headers, Json | None]] = [
        ("POST", f"/returns/{i}/refund", staff, {}) for i in ids for _ in range(2)
    ]
    answers = await at_once(client, *calls)
    assert sorted(a.status_code for a in answers) == [200] * 3 + [409] * 3
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"return_state_conflict"}
    amounts = sorted(a.json()["amount_refunded"] for a in answers if a.status_code == 200)
    assert sum(amounts) == 6476
    assert amounts == [2158, 2159, 2159]  # 21.59, 43.18 - 21.59, 64.76 - 43.18
    final = await read_order(client, order["id"], customer)
    assert (final["refunded_total"], final["payment_status"]) == (6476, "partially_refunded")


async def test_receiving_and_refunding_out_of_turn_are_refused_and_change_nothing(
    client: Client, sign_in: Any, session: AsyncSession
) -> None:
    staff, customer = await sign_in(roles=["staff"]), await sign_in()
    order, (shirt, socks) = await paid_customer_order(client, staff, customer)
    one, two = (line["id"] for line in order["items"])
    await ship_everything_in_db(session, order["id"])
    asked = (await ask_return(client, order["id"], customer, (one, 2))).json()["id"]
    url = f"{API}/returns/{asked}"
    assert_problem(await refund(client, staff, asked), 409, "return_state_conflict")

    def lines(*given: tuple[str, int]) -> Json:
        return {"lines": [{"order_line_id": i, "quantity": q, "restock": True} for i, q in given]}

    too_many = await client.post(f"{url}/receive", json=lines((one, 3)), headers=staff)
    assert_problem(too_many, 409, "receive_exceeds_requested")
    not_in_it = await client.post(f"{url}/receive", json=lines((two, 1)), headers=staff)
    assert_problem(not_in_it, 422)
    as_customer = await client.post(f"{url}/receive", json=lines((one, 1)), headers=customer)
    assert as_customer.status_code == 403
    missing = await client.post(
        f"{API}/returns/{uuid.uuid4()}/receive", json=lines((one, 1)), headers=staff
    )
    assert_problem(missing, 404, "return_not_found")
    unchanged = await read_order(client, order["id"], customer)
    assert [line["quantity_returned"] for line in unchanged["items"]] == [0, 0]
    assert await stock_of(client, staff, shirt) == STOCK - 3

    await receive(client, staff, asked, (one, 2, True))
    again = await client.post(f"{url}/receive", json=lines((one, 1)), headers=staff)
    assert_problem(again, 409, "return_state_conflict")
    assert await stock_of(client, staff, shirt) == STOCK - 1
    assert await stock_of(client, staff, socks) == STOCK - 2
