"""The personal-data export (``GET /users/me/export``) holds everything kept on the person:
their orders with addresses, payments, returns, reviews, sessions and the audit events about
them (a staff member reading their order included); the export and the erasure are audited."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.support import API, PASSWORD, Client, sign_up
from emporium.audit.models import AuditEvent
from factories import create_category, create_product, variant_body
from payments.support import pay_in_full

ADDRESS = {
    "name": "Petra Export",
    "line1": "9 Archive Lane",
    "city": "Leiden",
    "postal_code": "2311",
    "country": "NL",
}


async def test_export_holds_orders_payments_reviews_and_audit_events(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    category = await create_category(client, admin_headers)
    product = await create_product(client, admin_headers, category["id"], variants=[variant_body()])
    person = await sign_up(client, first_name="Petra")
    other = await sign_up(client, first_name="Otto")
    items = [{"variant_id": product["variants"][0]["id"], "quantity": 1}]
    orders = []
    for account in (person, other):
        placed = await client.post(
            f"{API}/orders",
            json={"items": items, "shipping_address": ADDRESS},
            headers=account.headers,
        )
        assert placed.status_code == 201, placed.text
        orders.append(placed.json())
    mine = orders[0]
    payment = await pay_in_full(client, mine["id"], admin_headers)
    review = await client.post(
        f"{API}/products/{product['id']}/reviews",
        json={"rating": 4, "body": "Sturdy."},
        headers=person.headers,
    )
    assert review.status_code == 201, review.text
    read = await client.get(f"{API}/orders/{mine['id']}", headers=admin_headers)
    assert read.status_code == 200

    exported = await client.get(f"{API}/users/me/export", headers=person.headers)
    assert exported.status_code == 200, exported.text
    export = exported.json()
    assert [o["id"] for o in export["orders"]] == [mine["id"]]
    assert export["orders"][0]["shipping_address"]["line1"] == ADDRESS["line1"]
    assert export["orders"][0]["email"] == person.email
    assert [p["id"] for p in export["payments"]] == [payment["id"]]
    assert "client_secret_enc" not in export["payments"][0]
    assert export["returns"] == []
    assert [r["id"] for r in export["reviews"]] == [review.json()["id"]]
    assert export["sessions"]
    actions = [e["action"] for e in export["audit_events"]]
    assert "order.personal_data_read" in actions  # the admin's read of her order
    assert actions[-1] == "user.exported"
    assert orders[1]["id"] not in exported.text
    assert other.email not in exported.text

    erased = await client.request(
        "DELETE", f"{API}/users/me", json={"password": PASSWORD}, headers=person.headers
    )
    assert erased.status_code == 204
    events = list(
        await session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.object_id == person.id)
            .order_by(AuditEvent.seq)
        )
    )
    assert events[-2:] == ["user.exported", "user.erased"]
