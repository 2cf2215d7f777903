"""Staff stock adjustments and the stock ledger: every change to stock is one movement,
stock never drops below zero, and the ledger always adds up to the stock on hand."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from conftest import SignIn
from factories import API, Client, assert_problem, at_once, variant_body
from orders.support import balance, ledger, order, stock_of, stocked_variants
from payments.support import pay_in_full

Json = dict[str, Any]
Headers = dict[str, str]


async def adjust(
    client: Client, headers: Headers, variant_id: str, delta: object, reason: object = "recount"
) -> httpx.Response:
    """POST /variants/{id}/stock-adjustments with ``{delta, reason}``."""
    return await client.post(
        f"{API}/variants/{variant_id}/stock-adjustments",
        json={"delta": delta, "reason": reason},
        headers=headers,
    )


async def user_id(client: Client, headers: Headers) -> str:
    """The id of the signed-in caller."""
    response = await client.get(f"{API}/users/me", headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def assert_ledger_adds_up(client: Client, staff: Headers, variant: Json) -> list[Json]:
    """The variant's stock equals the sum of its movements' ``delta``, the newest movement's
    ``stock_after`` equals the stock, and each ``stock_after`` is the running sum (oldest
    first); returns the movements, newest first."""
    stock = await stock_of(client, staff, variant)
    movements = await ledger(client, staff, variant["id"])
    assert sum(m["delta"] for m in movements) == stock
    assert movements[0]["stock_after"] == stock
    running = 0
    for movement in reversed(movements):
        running += movement["delta"]
        assert movement["stock_after"] == running >= 0, movements
    return movements


# --- adjustments -----------------------------------------------------------------------------


async def test_staff_add_and_remove_stock_with_a_reason_recorded_in_the_ledger(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 5)
    staff = await sign_in(roles=["staff"])
    staff_id = await user_id(client, staff)
    added = await adjust(client, staff, v["id"], 7, "delivery from the supplier")
    assert added.status_code == 201, added.text
    movement = added.json()
    assert movement["variant_id"] == v["id"]
    assert movement["kind"] == "adjustment"
    assert (movement["delta"], movement["stock_after"]) == (7, 12)
    assert movement["reason"] == "delivery from the supplier"
    assert movement["actor_id"] == staff_id
    assert movement["order_id"] is None
    assert await stock_of(client, admin_headers, v) == 12
    removed = await adjust(client, staff, v["id"], -4, "two broken, two lost")
    assert removed.status_code == 201, removed.text
    assert (removed.json()["delta"], removed.json()["stock_after"]) == (-4, 8)
    assert await stock_of(client, admin_headers, v) == 8
    movements = await assert_ledger_adds_up(client, staff, v)
    assert [(m["kind"], m["delta"], m["reason"]) for m in movements] == [
        ("adjustment", -4, "two broken, two lost"),
        ("adjustment", 7, "delivery from the supplier"),
        ("received", 5, "opening stock"),
    ]
    assert movements[1] == movement
    assert balance(movements) == {"received": 5, "adjustment": 3}


async def test_an_adjustment_shows_in_the_public_product_and_in_checkout(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 1)
    buyer = await sign_in()
    assert_problem(await order(client, buyer, [(v["id"], 3)]), 409, "insufficient_stock")
    assert (await adjust(client, admin_headers, v["id"], 2)).status_code == 201
    public = await client.get(f"{API}/products/{v['product_id']}")
    assert public.status_code == 200, public.text
    assert [x["stock"] for x in public.json()["variants"] if x["id"] == v["id"]] == [3]
    assert (await order(client, buyer, [(v["id"], 3)])).status_code == 201
    assert await stock_of(client, admin_headers, v) == 0


async def test_stock_never_drops_below_zero_and_a_refused_adjustment_changes_nothing(
    client: Client, admin_headers: Headers
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 3)
    before = await ledger(client, admin_headers, v["id"])
    problem = assert_problem(
        await adjust(client, admin_headers, v["id"], -4), 409, "insufficient_stock"
    )
    assert problem["lines"] == [
        {"variant_id": v["id"], "sku": v["sku"], "requested": 4, "available": 3}
    ]
    assert await stock_of(client, admin_headers, v) == 3
    assert await ledger(client, admin_headers, v["id"]) == before
    emptied = await adjust(client, admin_headers, v["id"], -3)
    assert emptied.status_code == 201, emptied.text
    assert emptied.json()["stock_after"] == 0
    assert_problem(await adjust(client, admin_headers, v["id"], -1), 409, "insufficient_stock")
    assert await stock_of(client, admin_headers, v) == 0
    movements = await assert_ledger_adds_up(client, admin_headers, v)
    assert balance(movements) == {"received": 3, "adjustment": -3}


@pytest.mark.parametrize(
    "body",
    [
        {"delta": 0, "reason": "nothing"},
        {"delta": 1},
        {"reason": "no delta"},
        {"delta": 1, "reason": ""},
        {"delta": 1, "reason": "x" * 501},
        {"delta": None, "reason": "null"},
        {"delta": 1.5, "reason": "float"},
        {"delta": 2.0, "reason": "whole float"},
        {"delta": "2", "reason": "string"},
        {"delta": True, "reason": "boolean"},
        {"delta": 1_000_001, "reason": "too many"},
        {"delta": 1, "reason": "x", "kind": "received"},
        {"delta": 1, "reason": "x", "actor_id": str(uuid.uuid4())},
        {"delta": 1, "reason": "x", "stock_after": 99},
    ],
)
async def test_a_malformed_adjustment_is_422_and_changes_nothing(
    client: Client, admin_headers: Headers, body: Json
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 5)
    response = await client.post(
        f"{API}/variants/{v['id']}/stock-adjustments", json=body, headers=admin_headers
    )
    assert_problem(response, 422)
    assert await stock_of(client, admin_headers, v) == 5
    assert balance(await ledger(client, admin_headers, v["id"])) == {"received": 5}


async def test_an_adjustment_that_is_not_json_is_415(
    client: Client, admin_headers: Headers
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 5)
    response = await client.post(
        f"{API}/variants/{v['id']}/stock-adjustments",
        content=b"delta=1&reason=x",
        headers=admin_headers | {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(response, 415)
    assert await stock_of(client, admin_headers, v) == 5


async def test_an_unknown_variant_is_404_for_adjustments_and_the_ledger(
    client: Client, admin_headers: Headers
) -> None:
    missing = uuid.uuid4()
    assert_problem(await adjust(client, admin_headers, str(missing), 5), 404, "variant_not_found")
    assert_problem(await adjust(client, admin_headers, str(missing), -5), 404, "variant_not_found")
    response = await client.get(f"{API}/variants/{missing}/stock-movements", headers=admin_headers)
    assert_problem(response, 404, "variant_not_found")


async def test_an_adjustment_of_a_deleted_variant_is_404(
    client: Client, admin_headers: Headers
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 5)
    extra = await client.post(
        f"{API}/products/{v['product_id']}/variants",
        json=variant_body(stock=2),
        headers=admin_headers,
    )
    assert extra.status_code == 201, extra.text
    gone = extra.json()["id"]
    deleted = await client.delete(f"{API}/variants/{gone}", headers=admin_headers)
    assert deleted.status_code == 204, deleted.text
    assert_problem(await adjust(client, admin_headers, gone, 1), 404, "variant_not_found")


async def test_customers_get_403_and_anonymous_callers_401_on_stock_routes(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 5)
    customer = await sign_in()
    movements = f"{API}/variants/{v['id']}/stock-movements"
    for headers, status in ((customer, 403), ({}, 401), ({"Authorization": "Bearer x"}, 401)):
        assert_problem(await adjust(client, headers, v["id"], 100), status)
        assert_problem(await adjust(client, headers, v["id"], -5), status)
        assert_problem(await client.get(movements, headers=headers), status)
    assert await stock_of(client, admin_headers, v) == 5
    assert balance(await ledger(client, admin_headers, v["id"])) == {"received": 5}


# --- the ledger ------------------------------------------------------------------------------


async def test_the_ledger_is_newest_first_and_pages_through_every_movement_once(
    client: Client, admin_headers: Headers
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 5)
    for delta in (1, 2, 3, -4, 5):
        assert (await adjust(client, admin_headers, v["id"], delta)).status_code == 201
    path = f"{API}/variants/{v['id']}/stock-movements"
    whole = (await client.get(path, params={"limit": 100}, headers=admin_headers)).json()
    assert whole["next_cursor"] is None
    assert [m["stock_after"] for m in whole["items"]] == [12, 7, 11, 8, 6, 5]
    assert [m["delta"] for m in whole["items"]] == [5, -4, 3, 2, 1, 5]
    stamps = [m["created_at"] for m in whole["items"]]
    assert stamps == sorted(stamps, reverse=True)
    walked: list[Json] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: Json = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = await client.get(path, params=params, headers=admin_headers)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        page = response.json()
        assert 1 <= len(page["items"]) <= 2
        walked += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert walked == whole["items"]
    default = (await client.get(path, headers=admin_headers)).json()
    assert default["items"] == whole["items"]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"cursor": "garbage"}])
async def test_a_bad_ledger_page_request_is_422(
    client: Client, admin_headers: Headers, params: Json
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 5)
    response = await client.get(
        f"{API}/variants/{v['id']}/stock-movements", params=params, headers=admin_headers
    )
    assert_problem(response, 422)


@pytest.mark.slow
async def test_the_ledger_adds_up_after_creations_adjustments_orders_and_cancellations(
    client: Client, admin_headers: Headers, sign_in: SignIn
) -> None:
    (a,) = await stocked_variants(client, admin_headers, 10)
    added = await client.post(
        f"{API}/products/{a['product_id']}/variants",
        json=variant_body(stock=6, title="Large"),
        headers=admin_headers,
    )
    assert added.status_code == 201, added.text
    b = added.json() | {"product_id": a["product_id"]}
    buyer, staff = await sign_in(), await sign_in(roles=["staff"])
    buyer_id, staff_id = await user_id(client, buyer), await user_id(client, staff)

    assert (await adjust(client, staff, a["id"], 5, "found a box")).status_code == 201
    cancelled = (await order(client, buyer, [(a["id"], 3), (b["id"], 2)])).json()
    assert (
        await client.post(f"{API}/orders/{cancelled['id']}/cancel", headers=buyer)
    ).status_code == 200
    refunded = (await order(client, buyer, [(a["id"], 2), (b["id"], 6)])).json()
    await pay_in_full(client, refunded["id"], staff)
    given_back = await client.post(
        f"{API}/orders/{refunded['id']}/refunds",
        json={"amount": refunded["total"], "reason": "returned"},
        headers=staff,
    )
    assert given_back.status_code == 201, given_back.text
    delivered = (await order(client, buyer, [(a["id"], 4), (b["id"], 1)])).json()
    await pay_in_full(client, delivered["id"], staff)
    for to in ("fulfilled", "delivered"):
        moved = await client.post(
            f"{API}/orders/{delivered['id']}/transitions", json={"to": to}, headers=staff
        )
        assert moved.status_code == 200, moved.text
    pending = (await order(client, buyer, [(a["id"], 1)])).json()
    assert pending["status"] == "pending"
    assert (await adjust(client, staff, a["id"], -2, "damaged")).status_code == 201
    assert (await adjust(client, staff, b["id"], 3, "restock")).status_code == 201

    assert await stock_of(client, admin_headers, a) == 10 + 5 - 4 - 1 - 2
    assert await stock_of(client, admin_headers, b) == 6 - 1 + 3
    moves_a = await assert_ledger_adds_up(client, admin_headers, a)
    moves_b = await assert_ledger_adds_up(client, admin_headers, b)
    assert balance(moves_a) == {"received": 10, "adjustment": 3, "sale": -10, "return": 5}
    assert balance(moves_b) == {"received": 6, "adjustment": 3, "sale": -9, "return": 8}
    assert [m["kind"] for m in moves_a][:2] == ["adjustment", "sale"]
    for movement in moves_a + moves_b:
        if movement["kind"] == "sale":
            assert movement["actor_id"] == buyer_id
            assert movement["order_id"] in {
                o["id"] for o in (cancelled, refunded, delivered, pending)
            }
        if movement["kind"] == "return":
            assert movement["order_id"] in {cancelled["id"], refunded["id"]}
            assert movement["actor_id"] == (
                buyer_id if movement["order_id"] == cancelled["id"] else staff_id
            )
        if movement["kind"] == "adjustment":
            assert movement["actor_id"] == staff_id
            assert movement["order_id"] is None


# --- concurrency -----------------------------------------------------------------------------


async def removed_concurrently(
    client: Client, staff: Headers, variant: Json
) -> list[httpx.Response]:
    """20 concurrent adjustments of -1 on ``variant``."""
    body = {"delta": -1, "reason": "concurrent removal"}
    path = f"/variants/{variant['id']}/stock-adjustments"
    return await at_once(client, *(("POST", path, staff, body),) * 20)


async def test_twenty_concurrent_removals_from_ten_units_leave_exactly_zero(
    client: Client, admin_headers: Headers
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 10)
    answers = await removed_concurrently(client, admin_headers, v)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 10 + [409] * 10, [a.text for a in answers if a.status_code >= 500]
    for answer in answers:
        if answer.status_code == 409:
            assert_problem(answer, 409, "insufficient_stock")
    succeeded = sorted(a.json()["stock_after"] for a in answers if a.status_code == 201)
    assert succeeded == list(range(10))
    assert await stock_of(client, admin_headers, v) == 0
    movements = await ledger(client, admin_headers, v["id"])
    assert len(movements) == 11
    assert sum(m["delta"] for m in movements) == 0
    assert balance(movements) == {"received": 10, "adjustment": -10}
    assert sorted(m["stock_after"] for m in movements) == list(range(11))


async def test_after_concurrent_removals_the_newest_movement_shows_the_stock_on_hand(
    client: Client, admin_headers: Headers
) -> None:
    (v,) = await stocked_variants(client, admin_headers, 10)
    answers = await removed_concurrently(client, admin_headers, v)
    assert sorted(a.status_code for a in answers) == [201] * 10 + [409] * 10
    movements = await ledger(client, admin_headers, v["id"])
    assert [m["stock_after"] for m in movements] == list(range(11))
    await assert_ledger_adds_up(client, admin_headers, v)
