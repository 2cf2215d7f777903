"""One account cannot make the shop store without bound (OWASP API4:2023)."""

from __future__ import annotations

from accounts.support import API, Client, assert_problem
from accounts.test_access import ADDRESS
from conftest import SignIn
from emporium.accounts.addresses import MAX_ADDRESSES


async def test_an_account_keeps_a_bounded_number_of_addresses(
    client: Client, sign_in: SignIn
) -> None:
    """Past the limit a new address is a 409; deleting one makes room; others are unaffected."""
    headers = await sign_in()
    ids = []
    for _ in range(MAX_ADDRESSES):
        response = await client.post(f"{API}/users/me/addresses", json=ADDRESS, headers=headers)
        assert response.status_code == 201
        ids.append(response.json()["id"])
    response = await client.post(f"{API}/users/me/addresses", json=ADDRESS, headers=headers)
    assert_problem(response, 409, "too_many_addresses")
    listed = await client.get(f"{API}/users/me/addresses", headers=headers)
    assert len(listed.json()) == MAX_ADDRESSES
    other = await client.post(f"{API}/users/me/addresses", json=ADDRESS, headers=await sign_in())
    assert other.status_code == 201
    await client.delete(f"{API}/users/me/addresses/{ids[0]}", headers=headers)
    response = await client.post(f"{API}/users/me/addresses", json=ADDRESS, headers=headers)
    assert response.status_code == 201
