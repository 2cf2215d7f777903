"""Writing reviews: one per customer, verified purchases from paid orders only, aggregates
kept in step, text kept as given, moderation by staff."""

from __future__ import annotations

import pytest
from httpx import Response

from conftest import SignIn
from factories import API, Client, assert_problem
from orders.support import order, stocked_variants


async def _product(client: Client, staff: dict[str, str]) -> dict[str, str]:
    (variant,) = await stocked_variants(client, staff, 20)
    return variant


async def _review(
    client: Client, headers: dict[str, str], product_id: str, **body: object
) -> Response:
    payload = {"rating": 4, "body": "Works as described."} | body
    return await client.post(f"{API}/products/{product_id}/reviews", json=payload, headers=headers)


async def _stats(client: Client, product_id: str) -> tuple[float, int]:
    product = (await client.get(f"{API}/products/{product_id}")).json()
    return product["rating_average"], product["review_count"]


async def test_verified_purchase_needs_a_paid_order_of_ones_own(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    """Pending orders, and other customers' paid orders, do not verify a review."""
    variant = await _product(client, admin_headers)
    buyer, bystander, pending_buyer = await sign_in(), await sign_in(), await sign_in()
    placed = await order(client, buyer, [(variant["id"], 1)])
    url = f"{API}/orders/{placed.json()['id']}/transitions"
    paid = await client.post(url, json={"to": "paid"}, headers=admin_headers)
    assert paid.status_code == 200, paid.text
    assert (await order(client, pending_buyer, [(variant["id"], 1)])).status_code == 201
    verdicts = {}
    for name, headers in (("buyer", buyer), ("bystander", bystander), ("pending", pending_buyer)):
        response = await _review(client, headers, variant["product_id"])
        assert response.status_code == 201, response.text
        verdicts[name] = response.json()["verified_purchase"]
    assert verdicts == {"buyer": True, "bystander": False, "pending": False}


async def test_one_review_per_customer_and_aggregates_follow(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    """A second review is 409; posting, editing, hiding and deleting move the average."""
    variant = await _product(client, admin_headers)
    pid = variant["product_id"]
    alice, bob = await sign_in(), await sign_in()
    first = await _review(client, alice, pid, rating=5)
    assert first.status_code == 201
    assert_problem(await _review(client, alice, pid, rating=1), 409, "review_exists")
    assert (await _review(client, bob, pid, rating=2)).status_code == 201
    assert await _stats(client, pid) == (3.5, 2)
    review_id = first.json()["id"]
    edit = await client.patch(f"{API}/reviews/{review_id}", json={"rating": 3}, headers=alice)
    assert edit.status_code == 200, edit.text
    assert await _stats(client, pid) == (2.5, 2)
    hide = await client.patch(
        f"{API}/reviews/{review_id}", json={"status": "hidden"}, headers=admin_headers
    )
    assert hide.json()["status"] == "hidden"
    assert await _stats(client, pid) == (2.0, 1)
    listed = (await client.get(f"{API}/products/{pid}/reviews")).json()["items"]
    assert [r["rating"] for r in listed] == [2]
    assert (await client.delete(f"{API}/reviews/{review_id}", headers=alice)).status_code == 204
    assert await _stats(client, pid) == (2.0, 1)


async def test_others_cannot_edit_and_customers_cannot_moderate(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    """Another customer: 403 on a published review, 404 on a hidden one; an author may not
    set ``status``."""
    variant = await _product(client, admin_headers)
    alice, mallory = await sign_in(), await sign_in()
    review_id = (await _review(client, alice, variant["product_id"])).json()["id"]
    url = f"{API}/reviews/{review_id}"
    assert_problem(await client.patch(url, json={"rating": 1}, headers=mallory), 403)
    assert_problem(await client.delete(url, headers=mallory), 403)
    assert_problem(await client.patch(url, json={"status": "hidden"}, headers=alice), 403)
    await client.patch(url, json={"status": "hidden"}, headers=admin_headers)
    assert_problem(await client.patch(url, json={"rating": 1}, headers=mallory), 404)
    assert_problem(await client.delete(url, headers=mallory), 404)
    assert_problem(await client.patch(url, json={"rating": 1}), 401)


@pytest.mark.parametrize(
    "body",
    [
        {"rating": 0, "body": "x"},
        {"rating": 6, "body": "x"},
        {"rating": 4.5, "body": "x"},
        {"rating": 4, "body": ""},
        {"rating": 4, "body": "x" * 5001},
        {"rating": 4, "body": "x", "title": "t" * 201},
        {"rating": 4, "body": "x", "verified_purchase": True},
        {"rating": 4, "body": "x", "status": "published"},
        {"rating": 4, "body": "x", "author_name": "Staff"},
    ],
)
async def test_bad_reviews_are_refused(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn, body: dict[str, object]
) -> None:
    """Ratings 1-5, bounded text, and no client-set flags: 422 and nothing stored."""
    variant = await _product(client, admin_headers)
    customer = await sign_in()
    response = await client.post(
        f"{API}/products/{variant['product_id']}/reviews", json=body, headers=customer
    )
    assert_problem(response, 422)
    assert await _stats(client, variant["product_id"]) == (0.0, 0)


async def test_review_text_is_stored_and_served_exactly_as_given(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    """Markup in a review comes back as the same JSON string, never as HTML."""
    variant = await _product(client, admin_headers)
    text = '<script>alert("x")</script> & <b>bold</b> ünïcödé'
    response = await _review(client, await sign_in(), variant["product_id"], body=text, title=text)
    assert response.status_code == 201
    listed = (await client.get(f"{API}/products/{variant['product_id']}/reviews")).json()
    assert listed["items"][0]["body"] == text
    assert listed["items"][0]["title"] == text
    assert response.headers["content-type"].startswith("application/json")


async def test_staff_without_customer_role_and_anonymous_cannot_post(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    """Posting a review is for customers: 401 anonymous, 403 staff-only accounts."""
    variant = await _product(client, admin_headers)
    assert_problem(await _review(client, {}, variant["product_id"]), 401)
    staff = await sign_in(roles=["staff"])
    assert_problem(await _review(client, staff, variant["product_id"]), 403)
