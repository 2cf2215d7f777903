"""Who may touch what: another customer's addresses, fields a user may not set on their own
profile, and the admin-only and staff-only routes."""

from __future__ import annotations

import uuid

from accounts.support import (
    API,
    PASSWORD,
    Client,
    Json,
    assert_problem,
    bearer,
    enable_mfa,
    login,
    new_email,
    sign_up,
)
from conftest import SignIn
from emporium.accounts.masking import mask_email
from factories import walk

ADDRESS: Json = {
    "name": "Alice Liddell",
    "line1": "12 Rabbit Hole Lane",
    "line2": "Flat 3",
    "city": "Oxford",
    "region": "Oxfordshire",
    "postal_code": "OX1 1AA",
    "country": "GB",
    "phone": "+44 1865 000111",
}


async def test_addresses_round_trip(client: Client) -> None:
    """A user adds, lists, changes and deletes their own addresses."""
    alice = await sign_up(client)
    response = await client.post(f"{API}/users/me/addresses", json=ADDRESS, headers=alice.headers)
    assert response.status_code == 201, response.text
    assert "no-store" in response.headers["cache-control"]
    created = response.json()
    assert {k: created[k] for k in ADDRESS} == ADDRESS
    minimal = {k: ADDRESS[k] for k in ("name", "line1", "city", "postal_code", "country")}
    response = await client.post(f"{API}/users/me/addresses", json=minimal, headers=alice.headers)
    assert response.status_code == 201
    second = response.json()
    assert (second["line2"], second["region"], second["phone"]) == (None, None, None)

    listed = (await client.get(f"{API}/users/me/addresses", headers=alice.headers)).json()
    assert [a["id"] for a in listed] == [created["id"], second["id"]]
    response = await client.patch(
        f"{API}/users/me/addresses/{created['id']}",
        json={"city": "Cambridge", "line2": None},
        headers=alice.headers,
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert (changed["city"], changed["line2"], changed["line1"]) == (
        "Cambridge",
        None,
        ADDRESS["line1"],
    )
    response = await client.delete(
        f"{API}/users/me/addresses/{second['id']}", headers=alice.headers
    )
    assert response.status_code == 204
    listed = (await client.get(f"{API}/users/me/addresses", headers=alice.headers)).json()
    assert listed == [changed]
    for bad in ({**ADDRESS, "country": "gb"}, {**ADDRESS, "user_id": str(uuid.uuid4())}):
        response = await client.post(f"{API}/users/me/addresses", json=bad, headers=alice.headers)
        assert_problem(response, 422)


async def test_another_customers_address_is_invisible(client: Client, sign_in: SignIn) -> None:
    """Customer B cannot read, change or delete customer A's address: 404 exactly as for an
    address that does not exist, and A's address stays as it was."""
    alice = await sign_up(client)
    bob = await sign_in()
    response = await client.post(f"{API}/users/me/addresses", json=ADDRESS, headers=alice.headers)
    address = response.json()
    path = f"{API}/users/me/addresses/{address['id']}"
    missing = f"{API}/users/me/addresses/{uuid.uuid4()}"

    listed = (await client.get(f"{API}/users/me/addresses", headers=bob)).json()
    assert listed == []
    for method, body in (("PATCH", {"city": "Hacked"}), ("DELETE", None), ("GET", None)):
        response = await client.request(method, path, json=body, headers=bob)
        twin = await client.request(method, missing, json=body, headers=bob)
        assert response.status_code == twin.status_code, (method, response.text)
        assert response.status_code in (404, 405), (method, response.text)
        assert response.json() == twin.json()
        assert "Rabbit" not in response.text
    response = await client.patch(path, json={"city": "Hacked"}, headers=bob)
    assert_problem(response, 404, "address_not_found")
    response = await client.delete(path, headers=bob)
    assert_problem(response, 404, "address_not_found")

    listed = (await client.get(f"{API}/users/me/addresses", headers=alice.headers)).json()
    assert listed == [address]
    response = await client.patch(path, json={"city": "Bath"}, headers=alice.headers)
    assert response.status_code == 200
    response = await client.get(f"{API}/users/me/addresses", headers={})
    assert_problem(response, 401)


FORBIDDEN_PROFILE_FIELDS: list[Json] = [
    {"roles": ["admin"]},
    {"roles": ["staff", "admin"]},
    {"is_active": False},
    {"email_verified": True},
    {"mfa_enabled": True},
    {"id": str(uuid.uuid4())},
    {"email": "takeover@example.com"},
    {"password": "A brand new password 99"},
    {"password_hash": "$argon2id$v=19$m=8,t=1,p=1$AAAA$AAAA"},
    {"created_at": "2000-01-01T00:00:00Z"},
]


async def test_profile_cannot_set_roles_or_flags(client: Client) -> None:
    """PATCH /users/me with roles, flags, id, e-mail or password is a 422 and nothing
    changes; names and phone can be changed."""
    account = await sign_up(client, first_name="Eve")
    before = (await client.get(f"{API}/users/me", headers=account.headers)).json()
    for extra in FORBIDDEN_PROFILE_FIELDS:
        response = await client.patch(
            f"{API}/users/me", json={"first_name": "Evil", **extra}, headers=account.headers
        )
        assert response.status_code == 422, (extra, response.text)
        assert_problem(response, 422)
    assert (await client.get(f"{API}/users/me", headers=account.headers)).json() == before
    response = await client.post(
        f"{API}/auth/login", json={"email": account.email, "password": "A brand new password 99"}
    )
    assert_problem(response, 401, "invalid_credentials")

    response = await client.patch(
        f"{API}/users/me",
        json={"first_name": "Evelyn", "last_name": "Hart", "phone": "+1 555 0100"},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    after = response.json()
    assert (after["first_name"], after["last_name"], after["phone"]) == (
        "Evelyn",
        "Hart",
        "+1 555 0100",
    )
    assert {k: after[k] for k in ("id", "email", "roles", "is_active", "mfa_enabled")} == {
        k: before[k] for k in ("id", "email", "roles", "is_active", "mfa_enabled")
    }
    response = await client.patch(f"{API}/users/me", json={"phone": None}, headers=account.headers)
    assert response.json()["phone"] is None


async def test_admin_routes_refuse_everyone_else(
    client: Client, sign_in: SignIn, admin_headers: dict[str, str]
) -> None:
    """Customers and staff get 403 on every admin route, anonymous callers 401, and no
    account is created or changed."""
    customer = await sign_in(roles=["customer"])
    staff = await sign_in(roles=["staff"])
    victim = await sign_up(client)
    new_admin = {"email": new_email("intruder"), "password": PASSWORD, "roles": ["admin"]}
    attempts: list[tuple[str, str, Json | None]] = [
        ("GET", "/users", None),
        ("GET", f"/users/{victim.id}", None),
        ("POST", "/users", new_admin),
        ("PATCH", f"/users/{victim.id}", {"roles": ["admin"]}),
        ("PATCH", f"/users/{victim.id}", {"is_active": False}),
    ]
    for who, headers, status in (
        ("anonymous", {}, 401),
        ("customer", customer, 403),
        ("staff", staff, 403),
        ("customer self-promotion", victim.headers, 403),
    ):
        for method, path, body in attempts:
            response = await client.request(method, f"{API}{path}", json=body, headers=headers)
            assert response.status_code == status, (who, method, path, response.text)
            assert_problem(response, status)
            assert victim.email not in response.text
    response = await client.get(f"{API}/users/me", headers=victim.headers)
    assert response.json()["roles"] == ["customer"]
    assert response.json()["is_active"] is True
    response = await client.post(
        f"{API}/auth/login", json={"email": new_admin["email"], "password": PASSWORD}
    )
    assert_problem(response, 401, "invalid_credentials")

    response = await client.post(f"{API}/categories", json={"name": "Staff Made"}, headers=staff)
    assert response.status_code == 201, response.text
    response = await client.post(
        f"{API}/categories", json={"name": "Customer Made"}, headers=customer
    )
    assert_problem(response, 403)
    response = await client.post(f"{API}/categories", json={"name": "Anonymous Made"})
    assert_problem(response, 401)
    response = await client.get(f"{API}/users", headers=admin_headers)
    assert response.status_code == 200


async def test_admin_creates_a_staff_account(client: Client, admin_headers: dict[str, str]) -> None:
    """An admin creates a staff account, which signs in and writes the catalog but cannot
    manage users; weak passwords and unknown roles are refused there too."""
    email = new_email("staffer")
    body = {"email": email, "password": PASSWORD, "roles": ["staff"], "first_name": "Sam"}
    response = await client.post(f"{API}/users", json=body, headers=admin_headers)
    assert response.status_code == 201, response.text
    assert PASSWORD not in response.text
    assert "no-store" in response.headers["cache-control"]
    created = response.json()
    assert (created["email"], created["roles"], created["first_name"]) == (email, ["staff"], "Sam")

    response = await client.post(f"{API}/users", json=body, headers=admin_headers)
    assert_problem(response, 409, "email_taken")
    for bad in (
        {**body, "email": new_email("weak"), "password": "password1234"},
        {**body, "email": new_email("root"), "roles": ["root"]},
        {**body, "email": new_email("none"), "roles": []},
        {**body, "email": new_email("extra"), "is_active": True},
    ):
        response = await client.post(f"{API}/users", json=bad, headers=admin_headers)
        assert_problem(response, 422)

    pair = await login(client, email)
    staff = bearer(pair["access_token"])
    response = await client.get(f"{API}/users/me", headers=staff)
    assert response.json()["roles"] == ["staff"]
    response = await client.post(f"{API}/categories", json={"name": "By Sam"}, headers=staff)
    assert_problem(response, 403, "mfa_required")
    await enable_mfa(client, staff)
    response = await client.post(f"{API}/categories", json={"name": "By Sam"}, headers=staff)
    assert response.status_code == 201, response.text
    response = await client.get(f"{API}/users", headers=staff)
    assert_problem(response, 403)

    listed = (await client.get(f"{API}/users", headers=admin_headers)).json()
    assert (created["id"], mask_email(email)) in {(u["id"], u["email"]) for u in listed["items"]}
    response = await client.get(
        f"{API}/users/{created['id']}", params={"reveal": "true"}, headers=admin_headers
    )
    assert response.json() == {**created, "mfa_enabled": True}
    response = await client.get(f"{API}/users/{uuid.uuid4()}", headers=admin_headers)
    assert_problem(response, 404, "user_not_found")


async def test_admin_lists_every_account_page_by_page(
    client: Client, sign_in: SignIn, admin_headers: dict[str, str]
) -> None:
    """The admin's user list walks every account exactly once in keyset pages; an oversized
    page or a forged cursor is a 422."""
    emails = {new_email(f"listed{i}") for i in range(5)}
    for email in emails:
        await sign_in(email=email)
    users = await walk(client, f"{API}/users", admin_headers, limit=2)
    ids = [u["id"] for u in users]
    assert len(ids) == len(set(ids)) == 6
    assert {mask_email(e) for e in emails} <= {u["email"] for u in users}
    response = await client.get(f"{API}/users", params={"limit": 101}, headers=admin_headers)
    assert_problem(response, 422)
    response = await client.get(f"{API}/users", params={"cursor": "garbage"}, headers=admin_headers)
    assert_problem(response, 422)
