"""API keys: issued by admins, shown once, stored hashed, scoped, expiring, revocable, with
the last use recorded, and accepted only in the ``X-API-Key`` header."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.conftest import MovedClock
from accounts.support import API, Client, Json, assert_problem, bearer
from conftest import SignIn
from orders.support import order, stocked_variants
from payments.support import pay_in_full

KEYS = f"{API}/api-keys"


async def _issue(client: Client, admin: dict[str, str], **body: object) -> Json:
    response = await client.post(KEYS, json={"name": "shop sync", **body}, headers=admin)
    assert response.status_code == 201, response.text
    created: Json = response.json()
    return created


def _category(name: str) -> Json:
    return {"name": name}


async def test_a_key_is_shown_once_stored_hashed_and_used_in_the_header(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    """The key has a recognisable prefix and at least 128 random bits; it appears in the
    creation answer only; the database holds only its hash; it works in ``X-API-Key`` and
    its last use is recorded; the same key in a query string or as a bearer token is
    refused."""
    created = await _issue(client, admin_headers, scopes=["catalog:write"])
    key = created["key"]
    assert {"id", "key", "prefix", "scopes"} <= created.keys()
    assert created["scopes"] == ["catalog:write"]
    assert key.startswith("emp_key_")
    assert created["prefix"] == key[:16]
    assert len(base64.urlsafe_b64decode(key[8:] + "=")) * 8 >= 128

    listed = await client.get(KEYS, headers=admin_headers)
    assert listed.status_code == 200
    assert key not in listed.text
    (item,) = listed.json()["items"]
    assert (item["id"], item["prefix"], item["last_used_at"]) == (created["id"], key[:16], None)
    rows = (await session.execute(text("SELECT * FROM api_key"))).mappings().all()
    assert key not in str([dict(r) for r in rows])
    assert key[16:] not in str([dict(r) for r in rows])

    response = await client.post(
        f"{API}/categories", json=_category("By Key"), headers={"X-API-Key": key}
    )
    assert response.status_code == 201, response.text
    (item,) = (await client.get(KEYS, headers=admin_headers)).json()["items"]
    assert item["last_used_at"] is not None

    for params, headers in (({"api_key": key}, {}), ({"key": key}, {}), ({}, bearer(key))):
        response = await client.post(
            f"{API}/categories", json=_category("Smuggled"), params=params, headers=headers
        )
        # A credential-looking query parameter is refused outright (400 credentials_in_url);
        # any other place than the X-API-Key header is simply not a credential (401).
        assert response.status_code in (400, 401), response.text
    names = [c["name"] for c in (await client.get(f"{API}/categories")).json()]
    assert "Smuggled" not in names


async def test_a_key_does_only_what_its_scopes_allow(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """A key without ``catalog:write`` cannot write the catalog (403 ``insufficient_scope``);
    no key passes an admin route or acts as a person; an unknown scope cannot be granted."""
    orders_only = (await _issue(client, admin_headers, scopes=["orders:read"]))["key"]
    writer = (await _issue(client, admin_headers, scopes=["catalog:write"]))["key"]
    response = await client.post(
        f"{API}/categories", json=_category("Nope"), headers={"X-API-Key": orders_only}
    )
    assert_problem(response, 403, "insufficient_scope")
    for url in (f"{API}/users", KEYS):
        assert_problem(await client.get(url, headers={"X-API-Key": writer}), 403)
    response = await client.post(
        KEYS, json={"name": "escalate", "scopes": ["catalog:write"]}, headers={"X-API-Key": writer}
    )
    assert_problem(response, 403, "insufficient_scope")
    assert_problem(await client.get(f"{API}/users/me", headers={"X-API-Key": writer}), 401)
    for bad in (
        {"name": "x", "scopes": ["admin"]},
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["catalog:write"], "owner": "me"},
    ):
        assert_problem(await client.post(KEYS, json=bad, headers=admin_headers), 422)


async def test_keys_expire_and_can_be_revoked(
    client: Client, admin_headers: dict[str, str], clock: MovedClock
) -> None:
    """A key stops working at its expiry and right after its revocation (401
    ``invalid_api_key``, the same answer as an unknown key); an expiry in the past is
    refused."""
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    expiring = (await _issue(client, admin_headers, scopes=["catalog:write"], expires_at=soon))[
        "key"
    ]
    revoked = await _issue(client, admin_headers, scopes=["catalog:write"])
    for key in (expiring, revoked["key"]):
        response = await client.post(
            f"{API}/categories", json=_category(f"Cat {key[-6:]}"), headers={"X-API-Key": key}
        )
        assert response.status_code == 201, response.text

    response = await client.delete(f"{KEYS}/{revoked['id']}", headers=admin_headers)
    assert response.status_code == 204, response.text
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    response = await client.post(
        KEYS,
        json={"name": "old", "scopes": ["orders:read"], "expires_at": past},
        headers=admin_headers,
    )
    assert_problem(response, 422)
    items = (await client.get(KEYS, headers=admin_headers)).json()["items"]
    assert {i["id"]: i["revoked_at"] is not None for i in items}[revoked["id"]]
    clock.advance(2 * 3600)
    unknown = "emp_key_" + "B" * 43
    for key in (expiring, revoked["key"], unknown):
        response = await client.post(
            f"{API}/categories", json=_category("Late"), headers={"X-API-Key": key}
        )
        assert_problem(response, 401, "invalid_api_key")


async def test_inventory_and_order_keys_work_and_are_recorded_as_the_key(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    """A back-office integration with ``inventory:write``/``inventory:read`` adjusts stock
    and reads the ledger; one with ``orders:read``/``orders:write`` lists every order, reads
    one and moves it along; the ledger row and the status history name the key, not a
    person. Each key is refused (403 ``insufficient_scope``) where its scope does not
    reach."""
    (variant,) = await stocked_variants(client, admin_headers, 10)
    buyer = await sign_in()
    placed = await order(client, buyer, [(variant["id"], 1)])
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    stock_key = await _issue(client, admin_headers, scopes=["inventory:read", "inventory:write"])
    orders_key = await _issue(client, admin_headers, scopes=["orders:read", "orders:write"])
    stock, orders = {"X-API-Key": stock_key["key"]}, {"X-API-Key": orders_key["key"]}
    adjust = f"{API}/variants/{variant['id']}/stock-adjustments"
    movements = f"{API}/variants/{variant['id']}/stock-movements"
    transitions = f"{API}/orders/{order_id}/transitions"

    response = await client.post(adjust, json={"delta": 5, "reason": "delivery"}, headers=stock)
    assert response.status_code == 201, response.text
    assert response.json()["actor_id"] == stock_key["id"]
    ledger = await client.get(movements, headers=stock)
    assert ledger.status_code == 200, ledger.text
    assert ledger.json()["items"][0]["delta"] == 5

    listed = await client.get(f"{API}/orders", headers=orders)
    assert listed.status_code == 200, listed.text
    assert order_id in {o["id"] for o in listed.json()["items"]}
    assert (await client.get(f"{API}/orders/{order_id}", headers=orders)).status_code == 200
    await pay_in_full(client, order_id, orders)  # a manual payment, captured by the key
    moved = await client.get(f"{API}/orders/{order_id}", headers=orders)
    assert moved.json()["status"] == "paid"
    assert moved.json()["status_history"][-1]["by"] == "api_key"

    for method, url, headers, body in (
        ("POST", adjust, orders, {"delta": 1, "reason": "x"}),
        ("GET", movements, orders, None),
        ("GET", f"{API}/orders", stock, None),
        ("GET", f"{API}/orders/{order_id}", stock, None),
        ("POST", transitions, stock, {"to": "fulfilled"}),
        ("POST", f"{API}/orders/{order_id}/cancel", stock, None),
    ):
        response = await client.request(method, url, json=body, headers=headers)
        assert_problem(response, 403, "insufficient_scope")
