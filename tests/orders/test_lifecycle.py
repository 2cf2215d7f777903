"""The order status machine: allowed moves, refused moves that change nothing, who may
cancel, stock returned exactly once through the ledger, and the recorded history.

``paid`` and ``refunded`` are reached only through payments (a staff ``manual`` payment
captured; a refund of everything paid): staff transitions to them are refused."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from conftest import SignIn
from factories import API, Client, assert_problem, at_once
from orders.support import balance, ledger, order, stock_of, stocked_variants
from runjobs import drain

Json = dict[str, Any]
Headers = dict[str, str]

# How staff bring a new (pending) order to each status (paid and refunded through payments).
PATHS: dict[str, list[str]] = {
    "pending": [],
    "paid": ["paid"],
    "fulfilled": ["paid", "fulfilled"],
    "delivered": ["paid", "fulfilled", "delivered"],
    "cancelled": ["cancelled"],
    "refunded": ["paid", "refunded"],
}
TARGETS = ("paid", "fulfilled", "delivered", "cancelled", "refunded")
THROUGH_PAYMENTS = {("pending", "paid"), ("paid", "refunded")}
ALLOWED = {
    ("pending", "cancelled"),
    ("paid", "fulfilled"),
    ("paid", "cancelled"),
    ("fulfilled", "delivered"),
} | THROUGH_PAYMENTS
REFUSED = [
    (f, t) for f in PATHS for t in TARGETS if (f, t) not in ALLOWED or (f, t) in THROUGH_PAYMENTS
]
"""Moves staff cannot make by hand: those the machine refuses, and paid and refunded."""


async def move(client: Client, staff: Headers, order_id: str, to: str) -> httpx.Response:
    """Staff move an order: ``paid`` by a manual payment captured, ``refunded`` by refunding
    everything paid (answering the order, or the first refusal), ``cancelled`` through the
    cancel route, the rest as transitions."""
    if to == "paid":
        return await pay_manually(client, staff, order_id)
    if to == "refunded":
        shown = await client.get(f"{API}/orders/{order_id}", headers=staff)
        if shown.status_code != 200:
            return shown
        refunded = await client.post(
            f"{API}/orders/{order_id}/refunds",
            json={"amount": max(shown.json()["paid_total"], 1), "reason": "returned"},
            headers=staff,
        )
        if refunded.status_code != 201:
            return refunded
        return await client.get(f"{API}/orders/{order_id}", headers=staff)
    return await transition(client, staff, order_id, to)


async def pay_manually(client: Client, staff: Headers, order_id: str) -> httpx.Response:
    """A staff ``manual`` payment of the whole balance, captured: the order as it is then
    (or the first refusal)."""
    created = await client.post(
        f"{API}/orders/{order_id}/payments", json={"provider": "manual"}, headers=staff
    )
    if created.status_code != 201:
        return created
    captured = await client.post(
        f"{API}/payments/{created.json()['id']}/capture", json={}, headers=staff
    )
    if captured.status_code != 200:
        return captured
    return await client.get(f"{API}/orders/{order_id}", headers=staff)


async def transition(client: Client, staff: Headers, order_id: str, to: str) -> httpx.Response:
    """A staff move by hand: the cancel route for ``cancelled``, else a transition."""
    if to == "cancelled":
        return await client.post(f"{API}/orders/{order_id}/cancel", headers=staff)
    return await client.post(f"{API}/orders/{order_id}/transitions", json={"to": to}, headers=staff)


async def bring_to(client: Client, staff: Headers, order_id: str, status: str) -> Json:
    """Move a pending order along ``PATHS[status]``; returns the order as last answered."""
    body: Json = {}
    for to in PATHS[status]:
        response = await move(client, staff, order_id, to)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == to
    return body


async def placed(client: Client, buyer: Headers, items: list[tuple[str, int]]) -> Json:
    """A new order of ``items`` (201)."""
    response = await order(client, buyer, items)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def read(client: Client, headers: Headers, order_id: str) -> Json:
    """GET /orders/{id} (200)."""
    response = await client.get(f"{API}/orders/{order_id}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def moves(order_body: Json) -> list[tuple[str | None, str, str]]:
    """The order's status history as ``(from, to, by)``."""
    return [(h["from_status"], h["to_status"], h["by"]) for h in order_body["status_history"]]


async def assert_ledger_consistent(client: Client, staff: Headers, variant: Json) -> list[Json]:
    """The variant's stock equals the sum of its movements, and the newest movement's
    ``stock_after`` is that stock; returns the movements (newest first)."""
    stock = await stock_of(client, staff, variant)
    movements = await ledger(client, staff, variant["id"])
    assert sum(m["delta"] for m in movements) == stock
    assert sum(balance(movements).values()) == stock
    assert movements[0]["stock_after"] == stock
    return movements


# --- allowed moves ---------------------------------------------------------------------------


async def test_an_order_goes_pending_paid_fulfilled_delivered_keeping_its_stock_sold(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 10)
    buyer, staff = await sign_in(), await sign_in(roles=["staff"])
    created = await placed(client, buyer, [(v["id"], 3)])
    for to in ("paid", "fulfilled", "delivered"):
        response = await move(client, staff, created["id"], to)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == to
        assert await stock_of(client, admin_headers, v) == 7
    final = await read(client, buyer, created["id"])
    assert final["status"] == "delivered"
    assert (created["payment_status"], created["fulfillment_status"]) == ("unpaid", "unfulfilled")
    assert (final["payment_status"], final["fulfillment_status"]) == ("paid", "delivered")
    assert (final["paid_total"], final["refunded_total"]) == (created["total"], 0)
    assert [i["quantity_fulfilled"] for i in created["items"]] == [0]
    assert final["items"] == [{**i, "quantity_fulfilled": i["quantity"]} for i in created["items"]]
    assert final["total"] == created["total"]
    assert moves(final) == [
        (None, "pending", "customer"),
        ("pending", "paid", "staff"),
        ("paid", "fulfilled", "staff"),
        ("fulfilled", "delivered", "staff"),
    ]
    stamps = [h["at"] for h in final["status_history"]]
    assert stamps == sorted(stamps)
    assert final["updated_at"] >= created["updated_at"]
    movements = await assert_ledger_consistent(client, admin_headers, v)
    assert balance(movements) == {"received": 10, "sale": -3}


@pytest.mark.parametrize(("current", "to"), sorted(ALLOWED))
async def test_each_allowed_move_is_accepted_and_shown_afterwards(
    client: Client, admin_headers: Headers, sign_in: SignIn, current: str, to: str
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 5)
    buyer = await sign_in()
    created = await placed(client, buyer, [(v["id"], 2)])
    await bring_to(client, admin_headers, created["id"], current)
    response = await move(client, admin_headers, created["id"], to)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == to
    shown = await read(client, buyer, created["id"])
    assert shown["status"] == to
    assert moves(shown)[-1] == (current, to, "staff")
    returned = to in ("cancelled", "refunded")
    assert await stock_of(client, admin_headers, v) == (5 if returned else 3)


# --- refused moves ---------------------------------------------------------------------------


@pytest.mark.parametrize(("current", "to"), REFUSED)
async def test_an_invalid_move_is_refused_with_409_and_changes_nothing(
    client: Client, admin_headers: Headers, sign_in: SignIn, current: str, to: str
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 5)
    buyer = await sign_in()
    created = await placed(client, buyer, [(v["id"], 2)])
    await bring_to(client, admin_headers, created["id"], current)
    before = await read(client, admin_headers, created["id"])
    stock_before = await stock_of(client, admin_headers, v)
    ledger_before = await ledger(client, admin_headers, v["id"])
    refused = await transition(client, admin_headers, created["id"], to)
    assert_problem(refused, 409, "invalid_transition")
    assert await read(client, admin_headers, created["id"]) == before
    assert await stock_of(client, admin_headers, v) == stock_before
    assert await ledger(client, admin_headers, v["id"]) == ledger_before


@pytest.mark.parametrize("to", ["cancelled", "pending", "shipped", "", None, 1])
async def test_a_transition_to_something_other_than_a_transition_target_is_422(
    client: Client, admin_headers: Headers, sign_in: SignIn, to: object
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 5)
    created = await placed(client, await sign_in(), [(v["id"], 2)])
    response = await client.post(
        f"{API}/orders/{created['id']}/transitions", json={"to": to}, headers=admin_headers
    )
    assert_problem(response, 422)
    shown = await read(client, admin_headers, created["id"])
    assert shown["status"] == "pending"
    assert await stock_of(client, admin_headers, v) == 3


async def test_a_transition_body_with_unknown_fields_or_no_target_is_422(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 5)
    created = await placed(client, await sign_in(), [(v["id"], 1)])
    path = f"{API}/orders/{created['id']}/transitions"
    for body in ({"to": "paid", "status": "delivered"}, {}, {"status": "paid"}):
        assert_problem(await client.post(path, json=body, headers=admin_headers), 422)
    assert (await read(client, admin_headers, created["id"]))["status"] == "pending"


async def test_moving_or_cancelling_an_unknown_order_is_404(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    missing = uuid.uuid4()
    assert_problem(await move(client, admin_headers, str(missing), "paid"), 404, "order_not_found")
    missing_move = await transition(client, admin_headers, str(missing), "fulfilled")
    assert_problem(missing_move, 404, "order_not_found")
    assert_problem(
        await move(client, admin_headers, str(missing), "cancelled"), 404, "order_not_found"
    )
    response = await client.post(f"{API}/orders/{missing}/cancel", headers=await sign_in())
    assert_problem(response, 404, "order_not_found")


# --- cancellation and refunds return the stock -----------------------------------------------


async def test_the_owner_cancels_a_pending_order_and_every_unit_comes_back(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    a, b = await stocked_variants(client, admin_headers, 10, 4)
    buyer = await sign_in()
    created = await placed(client, buyer, [(a["id"], 3), (b["id"], 4)])
    assert await stock_of(client, admin_headers, a) == 7
    assert await stock_of(client, admin_headers, b) == 0
    response = await client.post(f"{API}/orders/{created['id']}/cancel", headers=buyer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "cancelled"
    assert moves(body) == [(None, "pending", "customer"), ("pending", "cancelled", "customer")]
    assert await read(client, buyer, created["id"]) == body
    for variant, stock, sold in ((a, 10, 3), (b, 4, 4)):
        assert await stock_of(client, admin_headers, variant) == stock
        movements = await assert_ledger_consistent(client, admin_headers, variant)
        assert balance(movements) == {"received": stock, "sale": -sold, "return": sold}
        (returned,) = [m for m in movements if m["kind"] == "return"]
        assert returned["order_id"] == created["id"]
        assert returned["delta"] == sold
        assert returned["stock_after"] == stock
        assert returned["actor_id"] == body["customer_id"]
        assert movements[0] == returned


async def test_the_owner_cannot_cancel_a_paid_order(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 10)
    buyer = await sign_in()
    created = await placed(client, buyer, [(v["id"], 2)])
    await bring_to(client, admin_headers, created["id"], "paid")
    before = await read(client, buyer, created["id"])
    response = await client.post(f"{API}/orders/{created['id']}/cancel", headers=buyer)
    assert_problem(response, 403, "cancel_not_allowed")
    assert await read(client, buyer, created["id"]) == before
    assert await stock_of(client, admin_headers, v) == 8
    assert balance(await ledger(client, admin_headers, v["id"])) == {"received": 10, "sale": -2}


@pytest.mark.parametrize("status", ["fulfilled", "delivered", "refunded"])
async def test_the_owner_cannot_cancel_an_order_that_moved_past_paid(
    client: Client, admin_headers: Headers, sign_in: SignIn, status: str
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 10)
    buyer = await sign_in()
    created = await placed(client, buyer, [(v["id"], 2)])
    await bring_to(client, admin_headers, created["id"], status)
    before = await read(client, buyer, created["id"])
    stock = await stock_of(client, admin_headers, v)
    response = await client.post(f"{API}/orders/{created['id']}/cancel", headers=buyer)
    assert_problem(response, 409, "invalid_transition")
    assert await read(client, buyer, created["id"]) == before
    assert await stock_of(client, admin_headers, v) == stock


async def test_staff_cancel_a_paid_order_and_the_stock_comes_back(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 10)
    buyer, staff = await sign_in(), await sign_in(roles=["staff"])
    created = await placed(client, buyer, [(v["id"], 6)])
    await bring_to(client, staff, created["id"], "paid")
    assert await stock_of(client, admin_headers, v) == 4
    response = await client.post(f"{API}/orders/{created['id']}/cancel", headers=staff)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "cancelled"
    assert moves(body)[1:] == [("pending", "paid", "staff"), ("paid", "cancelled", "staff")]
    assert (await read(client, buyer, created["id"]))["status"] == "cancelled"
    assert await stock_of(client, admin_headers, v) == 10
    movements = await assert_ledger_consistent(client, admin_headers, v)
    assert balance(movements) == {"received": 10, "sale": -6, "return": 6}
    assert movements[0]["kind"] == "return"
    assert movements[0]["order_id"] == created["id"]


async def test_staff_cancel_a_pending_order_and_the_stock_comes_back(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 3)
    buyer = await sign_in()
    created = await placed(client, buyer, [(v["id"], 3)])
    response = await client.post(f"{API}/orders/{created['id']}/cancel", headers=admin_headers)
    assert response.status_code == 200, response.text
    assert moves(response.json())[-1] == ("pending", "cancelled", "staff")
    assert await stock_of(client, admin_headers, v) == 3
    assert balance(await assert_ledger_consistent(client, admin_headers, v)) == {
        "received": 3,
        "sale": -3,
        "return": 3,
    }


async def test_a_refund_from_paid_returns_the_stock(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    a, b = await stocked_variants(client, admin_headers, 8, 8)
    buyer = await sign_in()
    created = await placed(client, buyer, [(a["id"], 5), (b["id"], 1)])
    await bring_to(client, admin_headers, created["id"], "paid")
    response = await move(client, admin_headers, created["id"], "refunded")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "refunded"
    assert moves(response.json())[-1] == ("paid", "refunded", "staff")
    refunded = response.json()
    assert refunded["payment_status"] == "refunded"
    assert refunded["paid_total"] == refunded["refunded_total"] == created["total"]
    for variant, sold in ((a, 5), (b, 1)):
        assert await stock_of(client, admin_headers, variant) == 8
        movements = await assert_ledger_consistent(client, admin_headers, variant)
        assert balance(movements) == {"received": 8, "sale": -sold, "return": sold}
        assert movements[0]["kind"] == "return"
        assert movements[0]["order_id"] == created["id"]


async def test_cancelling_twice_returns_the_stock_once(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 10)
    buyer = await sign_in()
    created = await placed(client, buyer, [(v["id"], 4)])
    path = f"{API}/orders/{created['id']}/cancel"
    assert (await client.post(path, headers=buyer)).status_code == 200
    cancelled = await read(client, buyer, created["id"])
    assert_problem(await client.post(path, headers=buyer), 409, "invalid_transition")
    assert_problem(await client.post(path, headers=admin_headers), 409, "invalid_transition")
    assert_problem(await move(client, admin_headers, created["id"], "refunded"), 409)
    assert await read(client, buyer, created["id"]) == cancelled
    assert await stock_of(client, admin_headers, v) == 10
    movements = await assert_ledger_consistent(client, admin_headers, v)
    assert balance(movements) == {"received": 10, "sale": -4, "return": 4}
    assert [m["kind"] for m in movements].count("return") == 1


async def test_units_returned_by_a_cancellation_can_be_sold_again(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 5)
    first, second = await sign_in(), await sign_in()
    early = await placed(client, first, [(v["id"], 5)])
    assert_problem(await order(client, second, [(v["id"], 1)]), 409, "insufficient_stock")
    assert (
        await client.post(f"{API}/orders/{early['id']}/cancel", headers=first)
    ).status_code == 200
    late = await placed(client, second, [(v["id"], 4)])
    assert late["status"] == "pending"
    assert await stock_of(client, admin_headers, v) == 1
    movements = await assert_ledger_consistent(client, admin_headers, v)
    assert balance(movements) == {"received": 5, "sale": -9, "return": 5}


# --- history ---------------------------------------------------------------------------------


async def test_the_status_history_records_each_move_and_who_made_it(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 10)
    buyer, staff = await sign_in(), await sign_in(roles=["staff"])
    kept = await placed(client, buyer, [(v["id"], 1)])
    await bring_to(client, staff, kept["id"], "refunded")
    dropped = await placed(client, buyer, [(v["id"], 1)])
    assert (
        await client.post(f"{API}/orders/{dropped['id']}/cancel", headers=buyer)
    ).status_code == 200
    assert moves(await read(client, buyer, kept["id"])) == [
        (None, "pending", "customer"),
        ("pending", "paid", "staff"),
        ("paid", "refunded", "staff"),
    ]
    assert moves(await read(client, staff, dropped["id"])) == [
        (None, "pending", "customer"),
        ("pending", "cancelled", "customer"),
    ]
    for body in (await read(client, buyer, kept["id"]), await read(client, buyer, dropped["id"])):
        stamps = [h["at"] for h in body["status_history"]]
        assert stamps == sorted(stamps)
        assert all(s.endswith(("Z", "+00:00")) for s in stamps)


# --- concurrency -----------------------------------------------------------------------------


async def test_two_concurrent_cancels_of_one_order_return_the_stock_once(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 10)
    buyer = await sign_in()
    created = await placed(client, buyer, [(v["id"], 4)])
    path = f"/orders/{created['id']}/cancel"
    answers = await at_once(client, ("POST", path, buyer, None), ("POST", path, buyer, None))
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    assert_problem(next(a for a in answers if a.status_code == 409), 409, "invalid_transition")
    shown = await read(client, buyer, created["id"])
    assert shown["status"] == "cancelled"
    assert [m[1] for m in moves(shown)] == ["pending", "cancelled"]
    assert await stock_of(client, admin_headers, v) == 10
    movements = await assert_ledger_consistent(client, admin_headers, v)
    assert balance(movements) == {"received": 10, "sale": -4, "return": 4}


async def test_a_concurrent_cancel_and_refund_of_a_paid_order_return_the_stock_once(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 10)
    buyer, staff = await sign_in(), await sign_in(roles=["staff"])
    created = await placed(client, buyer, [(v["id"], 4)])
    await bring_to(client, staff, created["id"], "paid")
    refund = {"amount": created["total"], "reason": "returned"}
    cancel, refunded = await at_once(
        client,
        ("POST", f"/orders/{created['id']}/cancel", staff, None),
        ("POST", f"/orders/{created['id']}/refunds", admin_headers, refund),
    )
    await drain(client)  # the cancellation's refund job gives back what is left
    shown = await read(client, buyer, created["id"])
    winner = shown["status"]
    assert winner in ("cancelled", "refunded")
    # Cancel first: the refund still gives the money back; refund first: cancel is refused.
    expected = [200, 201] if winner == "cancelled" else [201, 409]
    assert sorted([cancel.status_code, refunded.status_code]) == expected, cancel.text
    assert [m[1] for m in moves(shown)] == ["pending", "paid", winner]
    assert shown["refunded_total"] == shown["paid_total"] == created["total"]
    assert await stock_of(client, admin_headers, v) == 10
    movements = await assert_ledger_consistent(client, admin_headers, v)
    assert balance(movements) == {"received": 10, "sale": -4, "return": 4}
