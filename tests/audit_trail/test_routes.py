"""``GET /audit-events`` and the users contract of the admin screens: an admin's list and
view of accounts are masked and audited; ``?reveal=true`` shows the fields in clear and
writes exactly one ``user.personal_data_revealed`` event naming them; staff actions through
the API are recorded with their actor, and the list filters and pages."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from accounts.support import API, Client, sign_up
from conftest import SignIn
from factories import create_category, create_product, variant_body, walk


async def _events(client: Client, admin: dict[str, str], **params: str) -> list[dict[str, Any]]:
    return await walk(client, f"{API}/audit-events", admin, **params)


async def test_reveal_writes_exactly_one_event_naming_the_fields(
    client: Client, admin_headers: dict[str, str]
) -> None:
    person = await sign_up(
        client, "jonathan.quist@example.com", first_name="Jonathan", phone="+44207946012"
    )
    listed = await client.get(f"{API}/users", headers=admin_headers)
    assert listed.status_code == 200
    mine = next(u for u in listed.json()["items"] if u["id"] == person.id)
    assert (mine["email"], mine["first_name"], mine["last_name"], mine["phone"]) == (
        "j***@example.com",
        "J***",
        None,
        "+44*******12",
    )
    masked = (await client.get(f"{API}/users/{person.id}", headers=admin_headers)).json()
    assert masked["email"] == "j***@example.com"
    before = await _events(client, admin_headers, object_id=person.id)
    revealed = await client.get(
        f"{API}/users/{person.id}", params={"reveal": "true"}, headers=admin_headers
    )
    assert revealed.status_code == 200
    assert (revealed.json()["email"], revealed.json()["phone"]) == (
        "jonathan.quist@example.com",
        "+44207946012",
    )
    after = await _events(client, admin_headers, object_id=person.id)
    new = [e for e in after if e not in before]
    assert len(new) == 1
    event = new[0]
    assert event["action"] == "user.personal_data_revealed"
    assert event["object_type"] == "user"
    assert event["details"] == {"fields": ["email", "first_name", "phone"]}
    assert event["actor"]["type"] == "user"
    assert "jonathan" not in str(after).lower()
    assert "7946012" not in str(after)
    # The masked view and the list were audited too, once each.
    assert [e["action"] for e in before] == ["user.viewed"]
    listings = await _events(client, admin_headers, action="user.listed")
    assert len(listings) == 1
    assert person.id in listings[0]["details"]["user_ids"]


async def test_staff_changes_are_recorded_with_their_actor_and_filtered(
    client: Client, sign_in: SignIn, admin_headers: dict[str, str]
) -> None:
    staff = await sign_in(roles=["staff"])
    me = (await client.get(f"{API}/users/me", headers=staff)).json()
    category = await create_category(client, staff)
    product = await create_product(
        client, staff, category["id"], variants=[variant_body(price=1500, stock=5)]
    )
    variant = product["variants"][0]["id"]
    for price in (1600, 1700, 1800):
        changed = await client.patch(
            f"{API}/variants/{variant}", json={"price": price}, headers=staff
        )
        assert changed.status_code == 200, changed.text
    adjusted = await client.post(
        f"{API}/variants/{variant}/stock-adjustments",
        json={"delta": -2, "reason": "damaged"},
        headers=staff,
    )
    assert adjusted.status_code == 201, adjusted.text

    prices = await _events(client, admin_headers, action="variant.price_changed", limit="2")
    assert [e["details"]["after"]["price"] for e in prices] == [1800, 1700, 1600]
    assert prices[-1]["details"]["before"] == {"price": 1500, "compare_at_price": None}
    assert {e["actor"]["id"] for e in prices} == {me["id"]}
    assert all(e["request_id"] and e["ip"] for e in prices)
    by_staff = await _events(client, admin_headers, actor_id=me["id"])
    assert [e["action"] for e in by_staff][:2] == ["stock.adjusted", "variant.price_changed"]
    stock = await _events(client, admin_headers, object_type="variant", object_id=variant)
    assert stock[0]["details"] == {"delta": -2, "stock": 3}
    # Newest first, chained: each event's prev_hash is the hash of the one before it.
    everything = await _events(client, admin_headers)
    assert [e["seq"] for e in everything] == sorted((e["seq"] for e in everything), reverse=True)
    for newer, older in itertools.pairwise(everything):
        assert newer["prev_hash"] == older["hash"]
    first = everything[-1]["at"]
    assert await _events(client, admin_headers, until=str(first)) == []
    assert len(await _events(client, admin_headers, since=str(first))) == len(everything)


async def test_audit_events_refuse_bad_input_and_other_callers(
    client: Client, sign_in: SignIn, admin_headers: dict[str, str]
) -> None:
    naive = await client.get(
        f"{API}/audit-events", params={"since": "2026-01-01T00:00:00"}, headers=admin_headers
    )
    assert naive.status_code == 422
    assert naive.json()["code"] == "validation_error"
    bad = await client.get(
        f"{API}/audit-events", params={"cursor": "garbage"}, headers=admin_headers
    )
    assert bad.status_code == 422
    staff = await sign_in(roles=["staff"])
    assert (await client.get(f"{API}/audit-events", headers=staff)).status_code == 403
    assert (await client.get(f"{API}/audit-events")).status_code == 401
    none = await client.get(
        f"{API}/audit-events", params={"object_id": str(uuid.uuid4())}, headers=admin_headers
    )
    assert none.json() == {"items": [], "next_cursor": None}
