"""Staff record manual payments and capture them; refunds (partial, several, never more
than was captured, even at once); cancelling a paid order gives its money back; refusals
(order not payable, bad amounts, other people's orders) change nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import SignIn
from emporium.payments.models import PaymentChange
from factories import API, Client, assert_problem, at_once
from payments.support import guest_order, pay, pay_in_full
from runjobs import drain

Json = dict[str, Any]


async def shown(client: Client, order_id: str, headers: dict[str, str]) -> Json:
    answer = await client.get(f"{API}/orders/{order_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    body: Json = answer.json()
    return body


async def refund(client: Client, staff: dict[str, str], order_id: str, amount: Any) -> Any:
    return await client.post(
        f"{API}/orders/{order_id}/refunds",
        json={"amount": amount, "reason": "damaged in transit"},
        headers=staff,
    )


async def test_staff_record_a_manual_payment_and_capture_it(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn, session: AsyncSession
) -> None:
    order, guest = await guest_order(client, admin_headers)
    staff = await sign_in(roles=["staff"])
    refused = await client.post(
        f"{API}/orders/{order['id']}/payments", json={"provider": "manual"}, headers=guest
    )
    assert_problem(refused, 403, "provider_not_allowed")
    created = await client.post(
        f"{API}/orders/{order['id']}/payments", json={"provider": "manual"}, headers=staff
    )
    assert created.status_code == 201, created.text
    assert (created.json()["status"], created.json()["amount"]) == ("pending", order["total"])
    waiting = await shown(client, order["id"], guest)
    assert (waiting["status"], waiting["payment_status"]) == ("pending", "unpaid")
    # The pending manual payment holds the balance: a card payment now would pay twice.
    assert_problem(await pay(client, order["id"], guest), 409, "amount_exceeds_balance")
    captured = await client.post(
        f"{API}/payments/{created.json()['id']}/capture", json={}, headers=staff
    )
    assert captured.status_code == 200, captured.text
    assert captured.json()["captured_amount"] == order["total"]
    paid = await shown(client, order["id"], guest)
    assert (paid["status"], paid["payment_status"], paid["paid_total"]) == (
        "paid",
        "paid",
        order["total"],
    )
    assert paid["status_history"][-1]["by"] == "staff"
    again = await client.post(
        f"{API}/payments/{created.json()['id']}/capture", json={}, headers=staff
    )
    assert_problem(again, 409, "payment_state_conflict")
    history = (
        await session.execute(
            select(PaymentChange.kind, PaymentChange.amount, PaymentChange.source).order_by(
                PaymentChange.created_at
            )
        )
    ).all()
    assert [tuple(h) for h in history] == [
        ("created", 0, "staff"),
        ("captured", order["total"], "staff"),
    ]


async def test_partial_refunds_add_up_and_never_exceed_what_was_captured(
    client: Client, admin_headers: dict[str, str]
) -> None:
    order, guest = await guest_order(client, admin_headers, quantity=2, price=1000)
    assert (await pay(client, order["id"], guest)).status_code == 201
    total = order["total"]
    first = await refund(client, admin_headers, order["id"], 300)
    assert first.status_code == 201, first.text
    assert (first.json()["amount"], first.json()["status"]) == (300, "succeeded")
    assert (await refund(client, admin_headers, order["id"], 200)).status_code == 201
    partly = await shown(client, order["id"], guest)
    assert (partly["status"], partly["payment_status"]) == ("paid", "partially_refunded")
    assert partly["refunded_total"] == 500
    assert_problem(
        await refund(client, admin_headers, order["id"], total - 499),
        409,
        "refund_exceeds_captured",
    )
    assert (await shown(client, order["id"], guest))["refunded_total"] == 500
    rest = await refund(client, admin_headers, order["id"], total - 500)
    assert rest.status_code == 201, rest.text
    done = await shown(client, order["id"], guest)
    assert (done["status"], done["payment_status"]) == ("refunded", "refunded")
    assert done["refunded_total"] == done["paid_total"] == total
    listed = await client.get(f"{API}/orders/{order['id']}/refunds", headers=admin_headers)
    assert [r["amount"] for r in listed.json()["items"]] == [300, 200, total - 500]
    assert_problem(
        await refund(client, admin_headers, order["id"], 1), 409, "refund_exceeds_captured"
    )


async def test_concurrent_refunds_never_give_back_more_than_was_captured(
    client: Client, admin_headers: dict[str, str]
) -> None:
    order, guest = await guest_order(client, admin_headers, quantity=1, price=1000)
    assert (await pay(client, order["id"], guest)).status_code == 201
    body = {"amount": order["total"] - 1, "reason": "twice"}
    path = f"/orders/{order['id']}/refunds"
    answers = await at_once(client, *[("POST", path, admin_headers, body)] * 4)
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409], [a.text for a in answers]
    assert (await shown(client, order["id"], guest))["refunded_total"] == order["total"] - 1


async def test_cancelling_a_paid_order_refunds_it(
    client: Client, admin_headers: dict[str, str]
) -> None:
    order, guest = await guest_order(client, admin_headers)
    assert (await pay(client, order["id"], guest)).status_code == 201
    cancelled = await client.post(f"{API}/orders/{order['id']}/cancel", headers=admin_headers)
    assert cancelled.status_code == 200, cancelled.text
    await drain(client)
    await drain(client)  # the refund's own provider event
    after = await shown(client, order["id"], guest)
    assert (after["status"], after["payment_status"]) == ("cancelled", "refunded")
    assert after["refunded_total"] == after["paid_total"] == order["total"]
    listed = await client.get(f"{API}/orders/{order['id']}/refunds", headers=admin_headers)
    assert [(r["amount"], r["status"]) for r in listed.json()["items"]] == [
        (order["total"], "succeeded")
    ]
    payments = await client.get(f"{API}/orders/{order['id']}/payments", headers=guest)
    assert payments.json()["items"][0]["refunded_amount"] == order["total"]


async def test_cancelling_an_order_voids_its_authorised_payment(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    order, guest = await guest_order(client, admin_headers)
    staff = await sign_in(roles=["staff"])
    created = await client.post(
        f"{API}/orders/{order['id']}/payments", json={"provider": "manual"}, headers=staff
    )
    assert (
        await client.post(f"{API}/orders/{order['id']}/cancel", headers=staff)
    ).status_code == 200
    await drain(client)
    payments = await client.get(f"{API}/orders/{order['id']}/payments", headers=guest)
    assert [p["status"] for p in payments.json()["items"]] == ["cancelled"]
    assert created.json()["id"] == payments.json()["items"][0]["id"]


async def test_a_cancelled_or_paid_order_is_not_payable(
    client: Client, admin_headers: dict[str, str]
) -> None:
    paid, paid_guest = await guest_order(client, admin_headers)
    await pay_in_full(client, paid["id"], admin_headers)
    assert_problem(await pay(client, paid["id"], paid_guest), 409, "order_not_payable")
    gone, gone_guest = await guest_order(client, admin_headers)
    cancelled = await client.post(f"{API}/orders/{gone['id']}/cancel", headers=admin_headers)
    assert cancelled.status_code == 200
    assert_problem(await pay(client, gone["id"], gone_guest), 409, "order_not_payable")
    listed = await client.get(f"{API}/orders/{gone['id']}/payments", headers=gone_guest)
    assert listed.json()["items"] == []


@pytest.mark.parametrize("amount", [0, -5, 12.5, "100", 1.0, None, True])
async def test_an_amount_that_is_not_a_positive_integer_is_422(
    client: Client, admin_headers: dict[str, str], amount: Any
) -> None:
    order, guest = await guest_order(client, admin_headers)
    body = {"provider": "test", "payment_method": "pm_card_visa", "amount": amount}
    if amount is None:
        body = {"provider": "test", "payment_method": "pm_card_visa", "amount": "all"}
    answer = await client.post(f"{API}/orders/{order['id']}/payments", json=body, headers=guest)
    assert_problem(answer, 422)
    refunded = await refund(client, admin_headers, order["id"], amount)
    assert_problem(refunded, 422)
    listed = await client.get(f"{API}/orders/{order['id']}/payments", headers=guest)
    assert listed.json()["items"] == []


async def test_more_than_the_balance_is_409_and_a_partial_payment_leaves_the_order_pending(
    client: Client, admin_headers: dict[str, str]
) -> None:
    order, guest = await guest_order(client, admin_headers)
    over = await pay(client, order["id"], guest, amount=order["total"] + 1)
    assert_problem(over, 409, "amount_exceeds_balance")
    part = await pay(client, order["id"], guest, amount=order["total"] - 100)
    assert part.json()["status"] == "captured"
    partly = await shown(client, order["id"], guest)
    assert (partly["status"], partly["payment_status"]) == ("pending", "partially_paid")
    rest = await pay(client, order["id"], guest)
    assert rest.json()["amount"] == 100
    assert (await shown(client, order["id"], guest))["status"] == "paid"


async def test_another_persons_order_is_404_for_payments(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    order, guest = await guest_order(client, admin_headers)
    other, other_guest = await guest_order(client, admin_headers)
    stranger = await sign_in()
    for headers in (other_guest, stranger):
        answer = await pay(client, order["id"], headers)
        assert_problem(answer, 404, "order_not_found")
        listed = await client.get(f"{API}/orders/{order['id']}/payments", headers=headers)
        assert_problem(listed, 404, "order_not_found")
    assert_problem(await pay(client, str(uuid.uuid4()), guest), 404, "order_not_found")
    assert (await shown(client, order["id"], guest))["paid_total"] == 0
    assert other["id"] != order["id"]


async def test_an_idempotency_key_makes_one_payment(
    client: Client, admin_headers: dict[str, str]
) -> None:
    order, guest = await guest_order(client, admin_headers)
    keyed = guest | {"Idempotency-Key": "pay-once"}
    first = await pay(client, order["id"], keyed, amount=100)
    replay = await pay(client, order["id"], keyed, amount=100)
    assert first.status_code == replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]
    other_body = await pay(client, order["id"], keyed, amount=200)
    assert_problem(other_body, 422, "idempotency_key_reused")
    listed = await client.get(f"{API}/orders/{order['id']}/payments", headers=guest)
    assert len(listed.json()["items"]) == 1


async def test_the_enabled_providers_are_listed_for_anyone(client: Client) -> None:
    answer = await client.get(f"{API}/payment-providers")
    assert answer.status_code == 200
    assert [p["name"] for p in answer.json()["items"]] == ["manual", "test", "gift_card"]
