"""``GET /api/v1/reviews``: staff see every product's reviews, hidden ones included, in keyset
pages, and filter them by status; customers may not list them."""

from __future__ import annotations

from conftest import SignIn
from factories import API, Client, assert_problem
from orders.support import stocked_variants


async def test_staff_list_reviews_of_every_product_by_status_in_pages(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    """Three reviews on two products, one hidden: the queue finds each where it belongs."""
    first, second = await stocked_variants(client, admin_headers, 5, 5)
    ids = []
    for product_id in (first["product_id"], second["product_id"], second["product_id"]):
        response = await client.post(
            f"{API}/products/{product_id}/reviews",
            json={"rating": 3, "body": "Fine."},
            headers=await sign_in(),
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    hidden = await client.patch(
        f"{API}/reviews/{ids[0]}", json={"status": "hidden"}, headers=admin_headers
    )
    assert hidden.status_code == 200, hidden.text

    seen: list[str] = []
    cursor = None
    for _ in range(5):
        url = f"{API}/reviews?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url, headers=admin_headers)).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))

    hidden_page = (await client.get(f"{API}/reviews?status=hidden", headers=admin_headers)).json()
    assert [r["id"] for r in hidden_page["items"]] == [ids[0]]
    published = (await client.get(f"{API}/reviews?status=published", headers=admin_headers)).json()
    assert {r["id"] for r in published["items"]} == set(ids[1:])
    public = (await client.get(f"{API}/products/{first['product_id']}/reviews")).json()
    assert public["items"] == []


async def test_customers_and_bad_statuses_are_refused(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    """A customer gets 403; an unknown status is a 400/422 problem."""
    assert_problem(await client.get(f"{API}/reviews", headers=await sign_in()), 403)
    bad = await client.get(f"{API}/reviews?status=deleted", headers=admin_headers)
    assert bad.status_code in (400, 422), bad.text
    assert bad.headers["content-type"].startswith("application/problem+json")
