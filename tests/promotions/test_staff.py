"""Staff manage promotions: create, list (keyset pages, filters), read, change and delete;
nonsense is refused with 422 naming the field and changes nothing; codes are one whatever
their case (409 ``promotion_code_taken``); every change is one line in the security log."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.testing import capture_logs

from conftest import SignIn
from emporium.core import security_events
from emporium.core.config import Settings
from emporium.promotions.codes import normalise_code
from emporium.promotions.models import Promotion, PromotionCustomerUse
from factories import API, Client, assert_problem, at_once, create_category, create_product

Json = dict[str, Any]
UNKNOWN = "6b0e4e9e-0000-4000-8000-000000000000"
SALE: Json = {"name": "Winter sale", "type": "percentage", "value": 1000, "combinable": True}
WELCOME: Json = {
    "name": "Welcome",
    "code": " welcome5 ",
    "type": "fixed_amount",
    "value": 500,
    "min_subtotal": 3000,
    "usage_limit_per_customer": 1,
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test settings, logging at INFO: promotion changes are INFO security events."""
    return settings.model_copy(update={"log_level": "INFO"})


async def create(client: Client, headers: dict[str, str], body: Json) -> Json:
    response = await client.post(f"{API}/promotions", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    return dict(response.json())


async def listed(client: Client, headers: dict[str, str], **params: Any) -> list[Json]:
    response = await client.get(
        f"{API}/promotions", params={"limit": 100, **params}, headers=headers
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_staff_create_list_read_change_and_delete_promotions(
    client: Client, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    category = await create_category(client, admin_headers)
    product = await create_product(client, admin_headers, category["id"])
    with capture_logs() as logs:
        # The security logger caches its configuration on first use (possibly in an earlier
        # test): a fresh one, first used here, writes to the capture.
        monkeypatch.setattr(security_events, "log", structlog.get_logger("emporium.security"))
        sale = await create(
            client, admin_headers, SALE | {"applies_to": {"category_ids": [category["id"]]}}
        )
        welcome = await create(client, admin_headers, WELCOME)
        changed = await client.patch(
            f"{API}/promotions/{sale['id']}",
            json={"value": 1500, "applies_to": {"product_ids": [product["id"]]}, "active": False},
            headers=admin_headers,
        )
        gone = await client.delete(f"{API}/promotions/{welcome['id']}", headers=admin_headers)
    assert sale["applies_to"] == {"category_ids": [category["id"]], "product_ids": []}
    assert (sale["code"], sale["currency"], sale["times_used"], sale["active"]) == (
        None,
        "USD",
        0,
        True,
    )
    assert (welcome["code"], welcome["combinable"], welcome["min_subtotal"]) == (
        "WELCOME5",
        False,
        3000,
    )
    assert changed.status_code == 200, changed.text
    after = changed.json()
    assert (after["value"], after["active"], after["applies_to"]) == (
        1500,
        False,
        {"category_ids": [], "product_ids": [product["id"]]},
    )
    assert after["updated_at"] >= sale["updated_at"]
    assert gone.status_code == 204
    got = await client.get(f"{API}/promotions/{sale['id']}", headers=admin_headers)
    assert got.json() == after
    assert_problem(
        await client.get(f"{API}/promotions/{welcome['id']}", headers=admin_headers),
        404,
        "promotion_not_found",
    )
    assert [p["id"] for p in await listed(client, admin_headers)] == [sale["id"]]
    events = [e for e in logs if e.get("security_event")]
    assert [(e["event"], e["log_level"], e["promotion_id"]) for e in events] == [
        ("promotion_created", "info", sale["id"]),
        ("promotion_created", "info", welcome["id"]),
        ("promotion_updated", "info", sale["id"]),
        ("promotion_deleted", "info", welcome["id"]),
    ]
    assert all(e["user_id"] for e in events)
    assert not any("WELCOME5" in str(e) for e in events)


async def test_the_list_filters_on_active_and_on_a_code_in_any_case(
    client: Client, admin_headers: dict[str, str]
) -> None:
    sale = await create(client, admin_headers, SALE)
    welcome = await create(client, admin_headers, WELCOME)
    off = await create(client, admin_headers, SALE | {"name": "Old", "active": False})
    assert [p["id"] for p in await listed(client, admin_headers, active="true")] == [
        sale["id"],
        welcome["id"],
    ]
    assert [p["id"] for p in await listed(client, admin_headers, active="false")] == [off["id"]]
    assert [p["id"] for p in await listed(client, admin_headers, code="Welcome5")] == [
        welcome["id"]
    ]
    assert await listed(client, admin_headers, code="NOPE1") == []
    bad = await client.get(f"{API}/promotions", params={"code": "a b"}, headers=admin_headers)
    assert "code" in str(assert_problem(bad, 422)["errors"])


async def test_the_list_is_keyset_paged(client: Client, admin_headers: dict[str, str]) -> None:
    made = [(await create(client, admin_headers, SALE | {"name": f"P{n}"}))["id"] for n in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params: Json = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(f"{API}/promotions", params=params, headers=admin_headers)).json()
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made
    bad = await client.get(f"{API}/promotions", params={"cursor": "nope"}, headers=admin_headers)
    assert_problem(bad, 422)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"value": 0}, "value"),
        ({"value": 10_001}, "value"),
        ({"value": -100}, "value"),
        ({"value": 10.5}, "value"),
        ({"type": "fixed_amount", "value": 0}, "value"),
        ({"type": "fixed_amount", "value": -500}, "value"),
        ({"type": "free_shipping", "value": 500}, "value"),
        ({"type": "buy_x_get_y"}, "type"),
        ({"min_subtotal": -1}, "min_subtotal"),
        (
            {"starts_at": "2027-02-01T00:00:00Z", "ends_at": "2027-01-01T00:00:00Z"},
            "ends_at",
        ),
        (
            {"starts_at": "2027-02-01T00:00:00Z", "ends_at": "2027-02-01T00:00:00Z"},
            "ends_at",
        ),
        ({"starts_at": "2027-02-01T00:00:00"}, "starts_at"),
        ({"applies_to": {"category_ids": [UNKNOWN]}}, "category_ids"),
        ({"applies_to": {"product_ids": [UNKNOWN]}}, "product_ids"),
        ({"applies_to": {"collections": []}}, "collections"),
        ({"usage_limit": 0}, "usage_limit"),
        ({"usage_limit_per_customer": 0}, "usage_limit_per_customer"),
        ({"usage_limit": -3}, "usage_limit"),
        ({"code": "ab"}, "code"),
        ({"code": "SAVE 10"}, "code"),
        ({"code": "SAVE10%"}, "code"),
        ({"code": "X" * 65}, "code"),
        ({"currency": "usd"}, "currency"),
        ({"owner": "me"}, "owner"),
    ],
)
async def test_nonsense_is_refused_and_changes_nothing(
    client: Client, admin_headers: dict[str, str], fields: Json, field: str
) -> None:
    response = await client.post(f"{API}/promotions", json=SALE | fields, headers=admin_headers)
    problem = assert_problem(response, 422)
    assert field in str(problem.get("errors", "")) + problem["detail"]
    assert await listed(client, admin_headers) == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"usage_limit": 2}, "usage_limit"),
        ({"type": "free_shipping"}, "value"),
        ({"value": 0}, "value"),
        ({"ends_at": "2026-12-31T00:00:00Z"}, "ends_at"),
        ({"applies_to": {"category_ids": [UNKNOWN]}}, "category_ids"),
        ({"code": "no"}, "code"),
        ({"name": None}, "name"),
        ({"times_used": 0}, "times_used"),
    ],
)
async def test_a_change_that_breaks_a_rule_is_refused_and_changes_nothing(
    client: Client, admin_headers: dict[str, str], session: AsyncSession, fields: Json, field: str
) -> None:
    body = SALE | {"usage_limit": 10, "starts_at": "2027-01-01T00:00:00Z"}
    made = await create(client, admin_headers, body)
    # Three orders hold it (counted by checkout, which this test does not need).
    async with session.begin():
        await session.execute(
            update(Promotion).where(Promotion.id == uuid.UUID(made["id"])).values(times_used=3)
        )
    url = f"{API}/promotions/{made['id']}"
    problem = assert_problem(await client.patch(url, json=fields, headers=admin_headers), 422)
    assert field in str(problem.get("errors", "")) + problem["detail"]
    assert (await client.get(url, headers=admin_headers)).json() == made | {"times_used": 3}
    lowered = await client.patch(url, json={"usage_limit": 3}, headers=admin_headers)
    assert (lowered.json()["usage_limit"], lowered.json()["times_used"]) == (3, 3)


async def test_codes_are_unique_whatever_their_case(
    client: Client, admin_headers: dict[str, str]
) -> None:
    welcome = await create(client, admin_headers, WELCOME)
    again = await client.post(
        f"{API}/promotions", json=WELCOME | {"code": "Welcome5"}, headers=admin_headers
    )
    assert_problem(again, 409, "promotion_code_taken")
    other = await create(client, admin_headers, WELCOME | {"code": "HELLO-10"})
    taken = await client.patch(
        f"{API}/promotions/{other['id']}", json={"code": "welcome5"}, headers=admin_headers
    )
    assert_problem(taken, 409, "promotion_code_taken")
    # Its own code again, in another case, is no conflict; null makes it automatic.
    same = await client.patch(
        f"{API}/promotions/{welcome['id']}", json={"code": "wElCoMe5"}, headers=admin_headers
    )
    assert same.json()["code"] == "WELCOME5"
    cleared = await client.patch(
        f"{API}/promotions/{other['id']}", json={"code": None}, headers=admin_headers
    )
    assert cleared.json()["code"] is None
    assert sorted(p["code"] or "" for p in await listed(client, admin_headers)) == ["", "WELCOME5"]


async def test_concurrent_creations_of_one_code_make_one_promotion(
    client: Client, admin_headers: dict[str, str]
) -> None:
    spellings = ["race-1", "RACE-1", " Race-1 ", "rAcE-1"] * 3
    answers = await at_once(
        client,
        *(("POST", "/promotions", admin_headers, WELCOME | {"code": c}) for c in spellings),
    )
    assert sorted(r.status_code for r in answers) == [201] + [409] * (len(spellings) - 1)
    for refused in (r for r in answers if r.status_code == 409):
        assert_problem(refused, 409, "promotion_code_taken")
    assert [p["code"] for p in await listed(client, admin_headers)] == ["RACE-1"]


async def test_unknown_promotions_are_not_found(
    client: Client, admin_headers: dict[str, str]
) -> None:
    url = f"{API}/promotions/{uuid.uuid4()}"
    for response in (
        await client.get(url, headers=admin_headers),
        await client.patch(url, json={"name": "x"}, headers=admin_headers),
        await client.delete(url, headers=admin_headers),
    ):
        assert_problem(response, 404, "promotion_not_found")


async def test_a_promotion_orders_hold_cannot_be_deleted_one_they_gave_back_can(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    keep = await create(client, admin_headers, SALE)
    used = await create(client, admin_headers, WELCOME)
    used_id = uuid.UUID(used["id"])
    # One order holds WELCOME5 (as checkout counts it, which this test does not need).
    async with session.begin():
        await session.execute(update(Promotion).where(Promotion.id == used_id).values(times_used=1))
        session.add(PromotionCustomerUse(promotion_id=used_id, customer_key="k", uses=1))
    url = f"{API}/promotions/{used['id']}"
    assert_problem(await client.delete(url, headers=admin_headers), 409, "promotion_in_use")
    assert (await client.get(url, headers=admin_headers)).json()["times_used"] == 1
    # The order was cancelled: its use came back.
    async with session.begin():
        await session.execute(update(Promotion).where(Promotion.id == used_id).values(times_used=0))
        await session.execute(update(PromotionCustomerUse).values(uses=0))
    assert (await client.delete(url, headers=admin_headers)).status_code == 204
    assert_problem(await client.get(url, headers=admin_headers), 404, "promotion_not_found")
    assert [p["id"] for p in await listed(client, admin_headers)] == [keep["id"]]
    assert await session.scalar(select(func.count()).select_from(PromotionCustomerUse)) == 0


async def test_only_staff_with_mfa_or_a_scoped_key_may_manage_promotions(
    client: Client, sign_in: SignIn, admin_headers: dict[str, str]
) -> None:
    url = f"{API}/promotions"
    assert_problem(await client.get(url), 401)
    assert_problem(await client.post(url, json=SALE), 401)
    shopper = await sign_in()
    assert_problem(await client.get(url, headers=shopper), 403, "forbidden")
    assert_problem(await client.post(url, json=SALE, headers=shopper), 403, "forbidden")
    no_mfa = await sign_in(roles=["staff"], mfa=False)
    assert_problem(await client.post(url, json=SALE, headers=no_mfa), 403, "mfa_required")
    made = await client.post(
        f"{API}/api-keys",
        json={"name": "promo reader", "scopes": ["promotions:read"]},
        headers=admin_headers,
    )
    reader = {"X-API-Key": made.json()["key"]}
    assert (await client.get(url, headers=reader)).status_code == 200
    assert_problem(await client.post(url, json=SALE, headers=reader), 403, "insufficient_scope")
    assert await listed(client, admin_headers) == []


@pytest.mark.parametrize(
    ("given", "stored"),
    [("welcome5", "WELCOME5"), ("  Summer_2027-x \n", "SUMMER_2027-X"), ("abc", "ABC")],
)
def test_codes_are_normalised(given: str, stored: str) -> None:
    assert normalise_code(given) == stored
