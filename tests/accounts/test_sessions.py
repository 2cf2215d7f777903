"""Sessions end when they should: refresh token rotation and replay detection, logout,
password change, admin deactivation and role changes, and revoking one's own sessions."""

from __future__ import annotations

import asyncio

import httpx

from accounts.support import (
    API,
    OTHER_PASSWORD,
    PASSWORD,
    Account,
    Client,
    Json,
    assert_problem,
    bearer,
    enable_mfa,
    login,
    sign_up,
)

ME = f"{API}/users/me"


async def _refresh(client: Client, token: str) -> httpx.Response:
    return await client.post(f"{API}/auth/refresh", json={"refresh_token": token})


async def _me_status(client: Client, access_token: str) -> int:
    response = await client.get(ME, headers=bearer(access_token))
    if response.status_code != 200:
        assert_problem(response, response.status_code)
    return response.status_code


async def _second_session(client: Client, account: Account) -> Account:
    pair = await login(client, account.email, account.password)
    return Account(
        id=account.id,
        email=account.email,
        password=account.password,
        access_token=pair["access_token"],
        refresh_token=pair["refresh_token"],
    )


async def test_refresh_token_works_once(client: Client) -> None:
    """After a refresh the old refresh token is dead; the new pair works."""
    account = await sign_up(client)
    first = await _refresh(client, account.refresh_token)
    assert first.status_code == 200, first.text
    pair: Json = first.json()
    assert await _me_status(client, pair["access_token"]) == 200
    second = await _refresh(client, pair["refresh_token"])
    assert second.status_code == 200
    for token in ("", "x" * 43, account.refresh_token[:-1] + "A"):
        response = await client.post(f"{API}/auth/refresh", json={"refresh_token": token})
        assert response.status_code in (401, 422), response.text
        assert_problem(response, response.status_code)


async def test_replayed_refresh_token_revokes_the_whole_session(client: Client) -> None:
    """Presenting a used refresh token again (a thief, or the victim after the thief) is a
    401 token_reused, and the whole session dies: the newest refresh token and the access
    tokens of that session stop working at once; other sessions are untouched."""
    account = await sign_up(client)
    elsewhere = await _second_session(client, account)
    response = await _refresh(client, account.refresh_token)
    assert response.status_code == 200
    legit: Json = response.json()
    assert await _me_status(client, legit["access_token"]) == 200

    replay = await _refresh(client, account.refresh_token)
    assert_problem(replay, 401, "token_reused")

    assert await _me_status(client, legit["access_token"]) == 401
    assert await _me_status(client, account.access_token) == 401
    response = await _refresh(client, legit["refresh_token"])
    assert_problem(response, 401)
    response = await _refresh(client, account.refresh_token)
    assert_problem(response, 401)

    assert await _me_status(client, elsewhere.access_token) == 200
    response = await _refresh(client, elsewhere.refresh_token)
    assert response.status_code == 200


async def test_concurrent_refreshes_with_one_token(client: Client) -> None:
    """Two refreshes racing with the same token: at most one gets a new pair, the others
    are a clean 401 (never a 500 or two valid pairs)."""
    for _ in range(2):
        account = await sign_up(client)
        responses = await asyncio.gather(
            *(_refresh(client, account.refresh_token) for _ in range(4))
        )
        statuses = [r.status_code for r in responses]
        assert statuses.count(200) <= 1, statuses
        assert set(statuses) <= {200, 401}, [r.text for r in responses]
        winners = [r.json() for r in responses if r.status_code == 200]
        if winners:
            # The losers count as a replay: the session is gone for the winner too.
            assert await _me_status(client, winners[0]["access_token"]) == 401
            response = await _refresh(client, winners[0]["refresh_token"])
            assert_problem(response, 401)


async def test_logout_ends_only_this_session(client: Client) -> None:
    """After logout the session's access token is refused at once and its refresh token is
    dead; the same user's other session keeps working."""
    account = await sign_up(client)
    other = await _second_session(client, account)
    response = await client.post(f"{API}/auth/logout", headers=account.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert await _me_status(client, account.access_token) == 401
    response = await client.get(f"{API}/users/me", headers=account.headers)
    assert_problem(response, 401, "session_ended")
    assert_problem(await _refresh(client, account.refresh_token), 401)
    response = await client.post(f"{API}/auth/logout", headers=account.headers)
    assert_problem(response, 401)

    assert await _me_status(client, other.access_token) == 200
    response = await _refresh(client, other.refresh_token)
    assert response.status_code == 200


async def test_password_change_ends_the_other_sessions(client: Client) -> None:
    """Changing the password keeps the current session, ends every other one (access and
    refresh), and only the new password signs in afterwards."""
    account = await sign_up(client)
    stolen = await _second_session(client, account)
    response = await client.post(
        f"{API}/auth/password",
        json={"current_password": "not my password 123", "new_password": OTHER_PASSWORD},
        headers=account.headers,
    )
    assert_problem(response, 401, "invalid_credentials")
    assert await _me_status(client, stolen.access_token) == 200
    response = await client.post(
        f"{API}/auth/password",
        json={"current_password": PASSWORD, "new_password": "password1234"},
        headers=account.headers,
    )
    assert_problem(response, 422, "weak_password")
    assert await _me_status(client, stolen.access_token) == 200

    response = await client.post(
        f"{API}/auth/password",
        json={"current_password": PASSWORD, "new_password": OTHER_PASSWORD},
        headers=account.headers,
    )
    assert response.status_code == 204, response.text
    assert await _me_status(client, account.access_token) == 200
    assert await _me_status(client, stolen.access_token) == 401
    assert_problem(await _refresh(client, stolen.refresh_token), 401)
    response = await _refresh(client, account.refresh_token)
    assert response.status_code == 200

    response = await client.post(
        f"{API}/auth/login", json={"email": account.email, "password": PASSWORD}
    )
    assert_problem(response, 401, "invalid_credentials")
    await login(client, account.email, OTHER_PASSWORD)


async def test_deactivation_ends_every_session_at_once(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """An admin deactivating an account ends all its sessions on the next request; the user
    cannot refresh or sign in; reactivation lets them sign in again with new sessions."""
    account = await sign_up(client)
    other = await _second_session(client, account)
    bystander = await sign_up(client)
    response = await client.patch(
        f"{API}/users/{account.id}", json={"is_active": False}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False
    for session in (account, other):
        assert await _me_status(client, session.access_token) == 401
        assert_problem(await _refresh(client, session.refresh_token), 401)
    response = await client.post(
        f"{API}/auth/login", json={"email": account.email, "password": PASSWORD}
    )
    assert_problem(response, 401, "invalid_credentials")
    assert await _me_status(client, bystander.access_token) == 200

    response = await client.patch(
        f"{API}/users/{account.id}", json={"is_active": True}, headers=admin_headers
    )
    assert response.status_code == 200
    assert await _me_status(client, other.access_token) == 401
    pair = await login(client, account.email)
    assert await _me_status(client, pair["access_token"]) == 200


async def test_role_changes_apply_on_the_next_request(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """A customer (with MFA on) promoted to staff can write the catalog with the token
    already in hand; demoted again, the same token is refused."""
    account = await sign_up(client)
    await enable_mfa(client, account.headers)
    body = {"name": "Promoted Category"}
    response = await client.post(f"{API}/categories", json=body, headers=account.headers)
    assert_problem(response, 403)

    response = await client.patch(
        f"{API}/users/{account.id}", json={"roles": ["staff"]}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["roles"] == ["staff"]
    response = await client.get(ME, headers=account.headers)
    assert response.json()["roles"] == ["staff"]
    response = await client.post(f"{API}/categories", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    category = response.json()

    response = await client.patch(
        f"{API}/users/{account.id}", json={"roles": ["customer"]}, headers=admin_headers
    )
    assert response.status_code == 200
    response = await client.patch(
        f"{API}/categories/{category['id']}", json={"name": "Hacked"}, headers=account.headers
    )
    assert_problem(response, 403)
    response = await client.post(
        f"{API}/categories", json={"name": "Another"}, headers=account.headers
    )
    assert_problem(response, 403)
    names = {c["name"] for c in (await client.get(f"{API}/categories")).json()}
    assert names == {"Promoted Category"}


async def test_sessions_list_and_revoke_only_own(client: Client) -> None:
    """A user sees only their own sessions, the current one marked; revoking one of them
    ends it; another user's session id answers 404 and that session lives on."""
    alice = await sign_up(client)
    alice_phone = await _second_session(client, alice)
    bob = await sign_up(client)

    response = await client.get(f"{API}/auth/sessions", headers=alice.headers)
    assert response.status_code == 200
    sessions = response.json()
    assert len(sessions) == 2
    assert [s["current"] for s in sessions].count(True) == 1
    for session in sessions:
        assert {"id", "device", "created_at", "last_used_at", "current"} <= set(session)
    current = next(s for s in sessions if s["current"])
    response = await client.get(f"{API}/auth/sessions", headers=alice_phone.headers)
    phone_view = response.json()
    assert {s["id"] for s in phone_view} == {s["id"] for s in sessions}
    phone_id = next(s["id"] for s in phone_view if s["current"])
    assert phone_id != current["id"]

    response = await client.get(f"{API}/auth/sessions", headers=bob.headers)
    bob_sessions = response.json()
    assert len(bob_sessions) == 1
    assert bob_sessions[0]["current"] is True
    assert bob_sessions[0]["id"] not in {s["id"] for s in sessions}

    for session_id in (current["id"], phone_id):
        response = await client.delete(f"{API}/auth/sessions/{session_id}", headers=bob.headers)
        assert_problem(response, 404, "session_not_found")
    assert await _me_status(client, alice.access_token) == 200
    assert await _me_status(client, alice_phone.access_token) == 200

    response = await client.delete(f"{API}/auth/sessions/{phone_id}", headers=alice.headers)
    assert response.status_code == 204
    assert await _me_status(client, alice_phone.access_token) == 401
    assert_problem(await _refresh(client, alice_phone.refresh_token), 401)
    assert await _me_status(client, alice.access_token) == 200
    response = await client.get(f"{API}/auth/sessions", headers=alice.headers)
    assert [s["id"] for s in response.json()] == [current["id"]]
    response = await client.delete(f"{API}/auth/sessions/{phone_id}", headers=alice.headers)
    assert_problem(response, 404, "session_not_found")
