"""Admins see a customer's sessions (no tokens) and end one; both are audited in the same
transaction, and the ended session's tokens stop working at once."""

from __future__ import annotations

from conftest import SignIn
from factories import API, Client, assert_problem


async def _audit_actions(client: Client, admin: dict[str, str]) -> list[str]:
    page = (await client.get(f"{API}/audit-events?limit=100", headers=admin)).json()
    return [e["action"] for e in page["items"]]


async def test_admin_lists_and_ends_a_customers_session(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    """The customer's token works, the admin ends its session, then it gets 401."""
    customer = await sign_in()
    me = (await client.get(f"{API}/users/me", headers=customer)).json()
    listed = await client.get(f"{API}/users/{me['id']}/sessions", headers=admin_headers)
    assert listed.status_code == 200, listed.text
    (only,) = listed.json()
    assert set(only) == {"id", "device", "created_at", "last_used_at"}
    assert only["device"] == "pytest"

    ended = await client.delete(
        f"{API}/users/{me['id']}/sessions/{only['id']}", headers=admin_headers
    )
    assert ended.status_code == 204, ended.text
    assert (await client.get(f"{API}/users/me", headers=customer)).status_code == 401
    after = await client.get(f"{API}/users/{me['id']}/sessions", headers=admin_headers)
    assert after.json() == []
    actions = await _audit_actions(client, admin_headers)
    assert "user.sessions_listed" in actions
    assert "user.session_revoked" in actions


async def test_another_users_session_is_not_found_and_stays_alive(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    """A session id paired with the wrong user is 404 and is not ended."""
    first, second = await sign_in(), await sign_in()
    first_id = (await client.get(f"{API}/users/me", headers=first)).json()["id"]
    second_id = (await client.get(f"{API}/users/me", headers=second)).json()["id"]
    (theirs,) = (
        await client.get(f"{API}/users/{second_id}/sessions", headers=admin_headers)
    ).json()
    wrong = await client.delete(
        f"{API}/users/{first_id}/sessions/{theirs['id']}", headers=admin_headers
    )
    assert_problem(wrong, 404, "session_not_found")
    assert (await client.get(f"{API}/users/me", headers=second)).status_code == 200
