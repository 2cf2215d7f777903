"""Writing reviews: one per customer, verified purchases from paid orders only, aggregates
kept in step, text kept as given, moderation by staff."""

from __future__ import annotations

import uuid

import pytest
from httpx import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.support import PASSWORD, new_email, sign_up
from conftest import SignIn
from emporium.reviews.models import Review
from factories import API, Client, assert_problem
from orders.support import order, stocked_variants
from payments.support import pay_in_full


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
    await pay_in_full(client, placed.json()["id"], admin_headers)
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


async def test_erasing_the_account_removes_the_authors_name_from_reviews(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    """After DELETE /users/me the author's reviews stay (rating, text, the product's
    average) but sign as "Customer", like an account without names: the name is gone from
    the API answer and from the review rows; other authors keep theirs."""
    variant = await _product(client, admin_headers)
    pid = variant["product_id"]
    surname = f"Quillfeather{uuid.uuid4().hex[:6]}"
    author = await sign_up(client, new_email("author"), first_name="Ottilie", last_name=surname)
    other = await sign_up(client, new_email("other"), first_name="Bram", last_name="Stoker")
    assert (await _review(client, author.headers, pid, rating=5, body="Lovely.")).status_code == 201
    assert (await _review(client, other.headers, pid, rating=3)).status_code == 201
    names = {
        r["author_name"]
        for r in (await client.get(f"{API}/products/{pid}/reviews")).json()["items"]
    }
    assert names == {f"Ottilie {surname[0]}.", "Bram S."}

    response = await client.request(
        "DELETE", f"{API}/users/me", json={"password": PASSWORD}, headers=author.headers
    )
    assert response.status_code == 204, response.text
    listed = await client.get(f"{API}/products/{pid}/reviews")
    by_rating = {r["rating"]: r for r in listed.json()["items"]}
    assert by_rating[5]["author_name"] == "Customer"
    assert by_rating[5]["body"] == "Lovely."
    assert by_rating[3]["author_name"] == "Bram S."
    assert "Ottilie" not in listed.text
    assert await _stats(client, pid) == (4.0, 2)
    rows = (
        (
            await session.execute(
                select(Review.author_name).where(Review.product_id == uuid.UUID(pid))
            )
        )
        .scalars()
        .all()
    )
    assert sorted(rows) == ["Bram S.", "Customer"]
