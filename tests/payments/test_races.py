""" "One payment, exactly one paid order", through the Stripe provider and the Stripe API
double, on a served app: the client's confirm raced with the provider's webhook, the same
event delivered over and over, events out of order, concurrent refunds, and Stripe failing
or losing answers."""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from factories import API, assert_problem
from payments.conftest import StripeShop
from payments.stripe_support import (
    VISA,
    Json,
    captured_changes,
    count_changes,
    events_by_order,
    orders_by_id,
    paid_mails,
    payments_of,
    place_orders,
    post_event,
    race_confirm_and_webhook,
    refunds_of,
    take_held,
)
from runjobs import drain_app

SignIn = Callable[..., Awaitable[dict[str, str]]]
ROUNDS = 200
AT_ONCE = 10


async def test_confirm_and_webhook_raced_200_times_pay_each_order_once(
    stripe_shop: StripeShop, sign_in: SignIn, session: AsyncSession
) -> None:
    staff = await sign_in(roles=["admin", "staff"])
    buyer = await sign_in()
    orders = await place_orders(stripe_shop, staff, buyer, ROUNDS)
    rng = random.Random(13)
    hooks = []
    for start in range(0, ROUNDS, AT_ONCE):
        if (start // AT_ONCE) % 4 == 0:
            stripe_shop.stripe.deliver_immediately()  # the event lands before the answer
        else:
            stripe_shop.stripe.hold()  # released 0-30 ms after it was made
        batch = orders[start : start + AT_ONCE]
        results = await asyncio.gather(
            *(race_confirm_and_webhook(stripe_shop, o, buyer, rng) for o in batch)
        )
        for paid, hook in results:
            assert paid.status_code == 201, paid.text
            assert paid.json()["status"] == "captured", paid.json()
            hooks.append(hook)
    assert all(h is None or h.status_code == 200 for h in hooks)
    # The races went both ways: some events were applied by the webhook, some found the
    # client's answer already applied.
    received = [h.json()["received"] for h in hooks if h is not None]
    assert True in received

    ids = [o["id"] for o in orders]
    rows = await orders_by_id(session, ids)
    assert {(r.status, r.payment_status) for r in rows.values()} == {("paid", "paid")}
    assert all(r.paid_total == r.total for r in rows.values())
    assert await captured_changes(session) == dict.fromkeys(ids, 1)
    assert await events_by_order(session, "payment.captured") == dict.fromkeys(ids, 1)
    assert await events_by_order(session, "order.paid") == dict.fromkeys(ids, 1)
    assert len(stripe_shop.stripe.intents) == ROUNDS  # one charge per order at Stripe
    await drain_app(stripe_shop.app)
    mails = paid_mails(stripe_shop.app.state.settings.mail_dir)
    assert mails == {o["number"]: 1 for o in orders}


async def _awaiting_action(
    shop: StripeShop, sign_in: SignIn, count: int = 1
) -> tuple[list[Json], list[Json], dict[str, str], dict[str, str]]:
    """Orders whose Stripe payment waits for 3-D Secure, with their payments."""
    staff = await sign_in(roles=["admin", "staff"])
    buyer = await sign_in()
    orders = await place_orders(shop, staff, buyer, count)
    payments = []
    for order in orders:
        body = {"provider": "stripe", "payment_method": "pm_card_authenticationRequired"}
        started = await shop.http.post(
            f"{API}/orders/{order['id']}/payments", json=body, headers=buyer
        )
        assert started.json()["status"] == "requires_action", started.text
        payments.append(started.json())
    return orders, payments, staff, buyer


def _succeeded_event(shop: StripeShop, order: Json) -> Json:
    reference = next(
        i["id"]
        for i in shop.stripe.intents.values()
        if i["metadata"]["emporium_order_id"] == order["id"]
    )
    shop.stripe.complete_action(reference)
    event = take_held(shop, "payment_intent.succeeded", "emporium_order_id", order["id"])
    assert event is not None
    return event


async def test_one_stripe_event_ten_times_at_once_then_ten_in_a_row_changes_once(
    stripe_shop: StripeShop, sign_in: SignIn, session: AsyncSession
) -> None:
    (order,), _, _, _ = await _awaiting_action(stripe_shop, sign_in)
    event = _succeeded_event(stripe_shop, order)

    at_once = await asyncio.gather(*(post_event(stripe_shop, event) for _ in range(10)))
    in_a_row = [await post_event(stripe_shop, event) for _ in range(10)]

    answers = at_once + in_a_row
    assert [a.status_code for a in answers] == [200] * 20
    assert [a.json()["received"] for a in answers].count(True) == 1
    row = (await orders_by_id(session, [order["id"]]))[order["id"]]
    assert (row.status, row.paid_total) == ("paid", order["total"])
    assert await count_changes(session, order["id"], "captured") == 1
    assert (await events_by_order(session, "order.paid"))[order["id"]] == 1


async def test_the_webhook_before_the_create_answer_pays_once(
    stripe_shop: StripeShop, sign_in: SignIn, session: AsyncSession
) -> None:
    """payment_intent.succeeded arrives while the create call is still in flight (our
    payment has no reference yet): found by its metadata, applied; the late answer changes
    nothing."""
    staff = await sign_in(roles=["admin", "staff"])
    buyer = await sign_in()
    (order,) = await place_orders(stripe_shop, staff, buyer, 1)
    stripe_shop.stripe.slow_next(1.0, path="/v1/payment_intents")

    async def webhook_meanwhile() -> Json:
        for _ in range(5000):
            event = take_held(
                stripe_shop, "payment_intent.succeeded", "emporium_order_id", order["id"]
            )
            if event is not None:
                (payment,) = await payments_of(session, order["id"])
                assert payment.reference is None  # the answer is not in yet
                hook = await post_event(stripe_shop, event)
                assert hook.json() == {"received": True}, hook.text
                row = (await orders_by_id(session, [order["id"]]))[order["id"]]
                assert row.status == "paid"  # before the client's answer
                return event
            await asyncio.sleep(0.002)
        raise AssertionError("no event")

    paid, _ = await asyncio.gather(
        stripe_shop.http.post(f"{API}/orders/{order['id']}/payments", json=VISA, headers=buyer),
        webhook_meanwhile(),
    )
    assert paid.status_code == 201, paid.text
    assert (paid.json()["status"], paid.json()["captured_amount"]) == ("captured", order["total"])
    (payment,) = await payments_of(session, order["id"])
    assert str(payment.reference).startswith("pi_")
    assert await count_changes(session, order["id"], "captured") == 1
    assert (await events_by_order(session, "order.paid"))[order["id"]] == 1


async def _paid_order(shop: StripeShop, sign_in: SignIn) -> tuple[Json, Json, dict[str, str]]:
    """An order paid by Stripe (the client's answer applied; events held)."""
    staff = await sign_in(roles=["admin", "staff"])
    buyer = await sign_in()
    (order,) = await place_orders(shop, staff, buyer, 1)
    paid = await shop.http.post(f"{API}/orders/{order['id']}/payments", json=VISA, headers=buyer)
    assert paid.json()["status"] == "captured", paid.text
    return order, paid.json(), staff


async def test_payment_failed_after_succeeded_does_not_undo_the_payment(
    stripe_shop: StripeShop, sign_in: SignIn, session: AsyncSession
) -> None:
    order, _, _ = await _paid_order(stripe_shop, sign_in)
    succeeded = take_held(stripe_shop, "payment_intent.succeeded", "emporium_order_id", order["id"])
    assert succeeded is not None
    failed = copy.deepcopy(succeeded)
    failed |= {"id": "evt_failed_after", "type": "payment_intent.payment_failed"}
    failed["data"]["object"] |= {
        "status": "requires_payment_method",
        "amount_received": 0,
        "last_payment_error": {"type": "card_error", "code": "card_declined"},
    }
    for event in (failed, succeeded, failed):
        assert (await post_event(stripe_shop, event)).status_code == 200
    (payment,) = await payments_of(session, order["id"])
    assert (payment.status, payment.captured_amount, payment.failure_code) == (
        "captured",
        order["total"],
        None,
    )
    row = (await orders_by_id(session, [order["id"]]))[order["id"]]
    assert (row.status, row.payment_status, row.paid_total) == ("paid", "paid", order["total"])
    assert await count_changes(session, order["id"], "failed") == 0


async def test_refund_events_before_the_captured_event_and_duplicated(
    stripe_shop: StripeShop, sign_in: SignIn, session: AsyncSession
) -> None:
    order, _, staff = await _paid_order(stripe_shop, sign_in)
    refund = await stripe_shop.http.post(
        f"{API}/orders/{order['id']}/refunds",
        json={"amount": 500, "reason": "scratched"},
        headers=staff,
    )
    assert refund.status_code == 201, refund.text
    stripe = stripe_shop.stripe
    reference = next(iter(stripe.intents))
    held = {e["type"]: e for e in stripe.events_of(reference)}
    # The refund's events, then the capture's, each twice, the charge's in between.
    for kind in ("charge.refunded", "refund.created", "charge.succeeded"):
        for _ in range(2):
            assert (await post_event(stripe_shop, held[kind])).status_code == 200
    for _ in range(2):
        assert (await post_event(stripe_shop, held["payment_intent.succeeded"])).status_code == 200

    (payment,) = await payments_of(session, order["id"])
    assert (payment.status, payment.captured_amount, payment.refunded_amount) == (
        "captured",
        order["total"],
        500,
    )
    (row,) = await refunds_of(session, order["id"])
    assert (row.status, row.amount) == ("succeeded", 500)
    shown = (await orders_by_id(session, [order["id"]]))[order["id"]]
    assert (shown.status, shown.payment_status) == ("paid", "partially_refunded")
    assert (shown.paid_total, shown.refunded_total) == (order["total"], 500)
    assert await count_changes(session, order["id"], "captured") == 1
    assert await count_changes(session, order["id"], "refunded") == 1


async def test_a_refund_the_bank_sent_back_ends_failed_whatever_the_order_of_its_events(
    stripe_shop: StripeShop, sign_in: SignIn, session: AsyncSession
) -> None:
    """Stripe: a succeeded refund can fail later (refund.failed). Its events arrive
    duplicated and in any order; the final state is the refund failed, the money counted as
    not refunded, and the amount refundable again."""
    order, _, staff = await _paid_order(stripe_shop, sign_in)
    refund = await stripe_shop.http.post(
        f"{API}/orders/{order['id']}/refunds",
        json={"amount": 700, "reason": "damaged"},
        headers=staff,
    )
    assert refund.json()["status"] == "succeeded", refund.text
    stripe = stripe_shop.stripe
    (re_id,) = stripe.refunds
    stripe.fail_refund(re_id)
    (reference,) = stripe.intents
    held = {e["type"]: e for e in stripe.events_of(reference) + stripe.events_of(re_id)}
    order_of_events = [
        "refund.failed",
        "refund.created",
        "charge.refund.updated",
        "refund.failed",
        "refund.updated",
        "charge.refunded",
        "refund.created",
    ]
    for kind in order_of_events:
        assert (await post_event(stripe_shop, held[kind])).status_code == 200

    (row,) = await refunds_of(session, order["id"])
    assert row.status == "failed"
    (payment,) = await payments_of(session, order["id"])
    assert payment.refunded_amount == 0
    shown = (await orders_by_id(session, [order["id"]]))[order["id"]]
    assert (shown.status, shown.payment_status, shown.refunded_total) == ("paid", "paid", 0)
    assert await count_changes(session, order["id"], "refund_failed") == 1
    again = await stripe_shop.http.post(
        f"{API}/orders/{order['id']}/refunds",
        json={"amount": order["total"], "reason": "try again"},
        headers=staff,
    )
    assert again.status_code == 201, again.text


async def test_concurrent_refunds_beyond_the_capture_one_is_refused(
    stripe_shop: StripeShop, sign_in: SignIn, session: AsyncSession
) -> None:
    order, _, staff = await _paid_order(stripe_shop, sign_in)
    amount = order["total"] // 2 + 100
    url = f"{API}/orders/{order['id']}/refunds"
    answers = await asyncio.gather(
        *(
            stripe_shop.http.post(url, json={"amount": amount, "reason": "r"}, headers=staff)
            for _ in range(3)
        )
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 409, 409], [a.text for a in answers]
    for refused in (a for a in answers if a.status_code == 409):
        assert_problem(refused, 409, "refund_exceeds_captured")
    assert len(stripe_shop.stripe.calls_to("POST", "/v1/refunds")) == 1
    assert [r["amount"] for r in stripe_shop.stripe.refunds.values()] == [amount]
    (payment,) = await payments_of(session, order["id"])
    assert payment.refunded_amount == amount


async def test_a_lost_create_answer_is_retried_and_charges_once(
    stripe_shop: StripeShop, sign_in: SignIn, session: AsyncSession
) -> None:
    staff = await sign_in(roles=["admin", "staff"])
    buyer = await sign_in()
    orders = await place_orders(stripe_shop, staff, buyer, 2)
    stripe = stripe_shop.stripe
    for order, fault in zip(orders, ("lose", "reset"), strict=True):
        if fault == "lose":
            stripe.lose_next(1, path="/v1/payment_intents")
        else:
            stripe.fail_next(1, status="reset", path="/v1/payment_intents")
        paid = await stripe_shop.http.post(
            f"{API}/orders/{order['id']}/payments", json=VISA, headers=buyer
        )
        assert paid.status_code == 201, paid.text
        assert paid.json()["status"] == "captured"
    assert len(stripe.intents) == 2
    creates = stripe.calls_to("POST", "/v1/payment_intents")
    assert [(c.status, c.fault) for c in creates] == [
        (None, None),  # applied, answer lost
        (200, None),  # the library's retry: replayed
        (None, "reset"),
        (200, None),
    ]
    assert creates[1].replayed
    assert creates[0].idempotency_key == creates[1].idempotency_key
    assert await captured_changes(session) == {o["id"]: 1 for o in orders}


async def test_stripe_failing_leaves_the_payment_pending_and_the_webhook_completes_it(
    stripe_shop: StripeShop, sign_in: SignIn, session: AsyncSession
) -> None:
    staff = await sign_in(roles=["admin", "staff"])
    buyer = await sign_in()
    failing, losing = await place_orders(stripe_shop, staff, buyer, 2)
    stripe = stripe_shop.stripe
    stripe.fail_next(3, status=503, path="/v1/payment_intents")
    paid = await stripe_shop.http.post(
        f"{API}/orders/{failing['id']}/payments", json=VISA, headers=buyer
    )
    assert (paid.status_code, paid.json()["status"]) == (201, "pending")
    assert stripe.intents == {}  # nothing was charged
    again = await stripe_shop.http.post(
        f"{API}/orders/{failing['id']}/payments", json=VISA, headers=buyer
    )
    assert_problem(again, 409, "amount_exceeds_balance")  # the pending one is still open

    stripe.lose_next(3, path="/v1/payment_intents")  # charged, every answer lost
    lost = await stripe_shop.http.post(
        f"{API}/orders/{losing['id']}/payments", json=VISA, headers=buyer
    )
    assert (lost.status_code, lost.json()["status"]) == (201, "pending")
    assert len(stripe.intents) == 1
    event = take_held(stripe_shop, "payment_intent.succeeded", "emporium_order_id", losing["id"])
    assert event is not None
    for _ in range(2):
        assert (await post_event(stripe_shop, event)).status_code == 200
    rows = await orders_by_id(session, [failing["id"], losing["id"]])
    assert (rows[failing["id"]].status, rows[losing["id"]].status) == ("pending", "paid")
    assert await captured_changes(session) == {losing["id"]: 1}
    assert len(stripe.intents) == 1


async def test_a_declined_intent_paid_later_with_another_card_is_captured(
    stripe_shop: StripeShop, sign_in: SignIn, session: AsyncSession
) -> None:
    """At Stripe a declined attempt leaves the intent open (requires_payment_method): the
    customer may confirm it again with another card in the browser. Its succeeded event
    must capture our failed payment, not be dropped as a step backwards."""
    staff = await sign_in(roles=["admin", "staff"])
    buyer = await sign_in()
    (order,) = await place_orders(stripe_shop, staff, buyer, 1)
    body = {"provider": "stripe", "payment_method": "pm_card_chargeDeclined"}
    declined = await stripe_shop.http.post(
        f"{API}/orders/{order['id']}/payments", json=body, headers=buyer
    )
    assert (declined.json()["status"], declined.json()["failure_code"]) == (
        "failed",
        "card_declined",
    )
    failed = take_held(
        stripe_shop, "payment_intent.payment_failed", "emporium_order_id", order["id"]
    )
    assert failed is not None
    succeeded = copy.deepcopy(failed)
    succeeded |= {"id": "evt_paid_with_another_card", "type": "payment_intent.succeeded"}
    succeeded["data"]["object"] |= {
        "status": "succeeded",
        "amount_received": order["total"],
        "last_payment_error": None,
        "payment_method": "pm_card_visa",
    }
    for event in (succeeded, failed, succeeded):
        assert (await post_event(stripe_shop, event)).status_code == 200

    (payment,) = await payments_of(session, order["id"])
    assert (payment.status, payment.captured_amount, payment.failure_code) == (
        "captured",
        order["total"],
        None,
    )
    row = (await orders_by_id(session, [order["id"]]))[order["id"]]
    assert (row.status, row.paid_total) == ("paid", order["total"])
    assert await count_changes(session, order["id"], "captured") == 1
