"""Staff routes of shipping zones, methods and tax rates: validation (ISO 3166 codes that
exist, no negative prices, no rate over 100 %: 422 changing nothing), MFA guards, keyset
pages, the security log, and products' ``tax_class`` / variants' ``weight_grams``."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from conftest import SignIn
from emporium.core import security_events
from factories import API, Client, assert_problem, create_category, create_product, variant_body

Json = dict[str, Any]


async def post(client: Client, headers: dict[str, str], path: str, body: Json) -> Json:
    response = await client.post(f"{API}{path}", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    return dict(response.json())


async def count(client: Client, headers: dict[str, str], path: str) -> int:
    response = await client.get(f"{API}{path}", params={"limit": 100}, headers=headers)
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


async def test_staff_set_up_a_zone_a_method_and_rates(
    client: Client, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with capture_logs() as logs:
        # The security logger caches its configuration on first use (possibly in an earlier
        # test): a fresh one, first used here, writes to the capture.
        monkeypatch.setattr(security_events, "log", structlog.get_logger("emporium.security"))
        zone = await post(
            client,
            admin_headers,
            "/shipping-zones",
            {"name": "EU", "countries": ["DE", "FR", "DE"], "regions": ["ES-CN"]},
        )
        method = await post(
            client,
            admin_headers,
            "/shipping-methods",
            {
                "zone_id": zone["id"],
                "name": "DHL Paket",
                "carrier": "DHL",
                "price": 490,
                "free_over": 5000,
                "max_weight_grams": 31_500,
                "delivery_days": [1, 3],
            },
        )
        rate = await post(
            client,
            admin_headers,
            "/tax-rates",
            {"country": "US", "region": "US-CA", "rate_bp": 725, "name": "CA"},
        )
    assert (zone["countries"], zone["regions"]) == (["DE", "FR"], ["ES-CN"])
    assert method["currency"] == "USD"
    assert (method["tax_class"], method["active"], method["delivery_days"]) == (
        "standard",
        True,
        [1, 3],
    )
    assert (rate["region"], rate["tax_class"], rate["rate_bp"]) == ("US-CA", "standard", 725)
    events = [e for e in logs if e.get("security_event")]
    assert [(e["event"], e["action"], e["object_id"]) for e in events] == [
        ("authz_admin", "shipping_zone.created", zone["id"]),
        ("authz_admin", "shipping_method.created", method["id"]),
        ("authz_admin", "tax_rate.created", rate["id"]),
    ]
    assert all(e["user_id"] for e in events)

    changed = await client.patch(
        f"{API}/tax-rates/{rate['id']}", json={"rate_bp": 750}, headers=admin_headers
    )
    assert changed.json()["rate_bp"] == 750
    busy = await client.delete(f"{API}/shipping-zones/{zone['id']}", headers=admin_headers)
    assert_problem(busy, 409, "shipping_zone_in_use")
    for path in (f"/shipping-methods/{method['id']}", f"/shipping-zones/{zone['id']}"):
        assert (await client.delete(f"{API}{path}", headers=admin_headers)).status_code == 204
    assert await count(client, admin_headers, "/shipping-zones") == 0


ZONE = {"name": "Z", "countries": ["DE"]}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/shipping-zones", {"name": "Z", "countries": ["XX"]}, "countries"),
        ("/shipping-zones", {"name": "Z", "countries": ["de"]}, "countries"),
        ("/shipping-zones", {"name": "Z", "regions": ["US-ZZ"]}, "regions"),
        ("/shipping-zones", {"name": "Z"}, "countries"),
        ("/shipping-zones", {"name": "Z", "countries": ["DE"], "owner": "x"}, None),
        ("/tax-rates", {"country": "DE", "rate_bp": 10_001, "name": "r"}, "rate_bp"),
        ("/tax-rates", {"country": "DE", "rate_bp": -1, "name": "r"}, "rate_bp"),
        ("/tax-rates", {"country": "QQ", "rate_bp": 1900, "name": "r"}, "country"),
        ("/tax-rates", {"country": "DE", "region": "US-CA", "rate_bp": 1, "name": "r"}, "region"),
        ("/tax-rates", {"country": "DE", "rate_bp": 19.5, "name": "r"}, "rate_bp"),
        (
            "/tax-rates",
            {"country": "DE", "rate_bp": 1900, "name": "r", "tax_class": "A B"},
            "tax_class",
        ),
    ],
)
async def test_nonsense_is_refused_and_changes_nothing(
    client: Client, admin_headers: dict[str, str], path: str, body: Json, field: str | None
) -> None:
    problem = assert_problem(
        await client.post(f"{API}{path}", json=body, headers=admin_headers), 422
    )
    if field is not None:
        assert field in str(problem.get("errors", "")) + problem["detail"]
    assert await count(client, admin_headers, path) == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"price": -1}, "price"),
        ({"price": 1.5}, "price"),
        ({"free_over": -5}, "free_over"),
        ({"min_weight_grams": 500, "max_weight_grams": 100}, "max_weight_grams"),
        ({"delivery_days": [5, 2]}, "delivery_days"),
        ({"delivery_days": [1]}, "delivery_days"),
        ({"zone_id": "6b0e4e9e-0000-4000-8000-000000000000"}, "zone_id"),
    ],
)
async def test_methods_with_negative_prices_or_inverted_ranges_are_refused(
    client: Client, admin_headers: dict[str, str], fields: Json, field: str
) -> None:
    zone = await post(client, admin_headers, "/shipping-zones", ZONE)
    body = {"zone_id": zone["id"], "name": "M", "price": 490} | fields
    response = await client.post(f"{API}/shipping-methods", json=body, headers=admin_headers)
    problem = assert_problem(response, 422)
    assert field in str(problem.get("errors", "")) + problem["detail"]
    assert await count(client, admin_headers, "/shipping-methods") == 0


async def test_a_second_rate_for_the_same_place_and_class_conflicts(
    client: Client, admin_headers: dict[str, str]
) -> None:
    body = {"country": "DE", "rate_bp": 1900, "name": "USt"}
    await post(client, admin_headers, "/tax-rates", body)
    again = await client.post(f"{API}/tax-rates", json=body, headers=admin_headers)
    assert_problem(again, 409, "tax_rate_exists")
    await post(client, admin_headers, "/tax-rates", body | {"tax_class": "reduced", "rate_bp": 700})
    assert await count(client, admin_headers, "/tax-rates") == 2


async def test_lists_are_keyset_pages(client: Client, admin_headers: dict[str, str]) -> None:
    for code in ("DE", "FR", "IT", "ES", "AT"):
        await post(
            client, admin_headers, "/tax-rates", {"country": code, "rate_bp": 2000, "name": code}
        )
    seen: list[str] = []
    cursor = None
    while True:
        params: Json = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(f"{API}/tax-rates", params=params, headers=admin_headers)).json()
        seen += [r["country"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["DE", "FR", "IT", "ES", "AT"]
    over = await client.get(f"{API}/tax-rates", params={"limit": 101}, headers=admin_headers)
    assert_problem(over, 422)
    bad = await client.get(f"{API}/tax-rates", params={"cursor": "nope"}, headers=admin_headers)
    assert_problem(bad, 422)


@pytest.mark.parametrize("path", ["/shipping-zones", "/shipping-methods", "/tax-rates"])
async def test_only_staff_with_mfa_may_see_or_change_shipping_and_taxes(
    client: Client, sign_in: SignIn, path: str
) -> None:
    body = {"name": "Z", "countries": ["DE"]}
    assert_problem(await client.get(f"{API}{path}"), 401)
    assert_problem(await client.post(f"{API}{path}", json=body), 401)
    shopper = await sign_in()
    assert_problem(await client.get(f"{API}{path}", headers=shopper), 403, "forbidden")
    assert_problem(await client.post(f"{API}{path}", json=body, headers=shopper), 403)
    no_mfa = await sign_in(roles=["staff"], mfa=False)
    assert_problem(await client.get(f"{API}{path}", headers=no_mfa), 403, "mfa_required")
    assert_problem(
        await client.post(f"{API}{path}", json=body, headers=no_mfa), 403, "mfa_required"
    )


async def test_products_carry_a_tax_class_and_variants_a_weight(
    client: Client, admin_headers: dict[str, str]
) -> None:
    category = await create_category(client, admin_headers)
    product = await create_product(
        client,
        admin_headers,
        category["id"],
        tax_class="reduced",
        variants=[variant_body(weight_grams=350)],
    )
    assert product["tax_class"] == "reduced"
    assert product["variants"][0]["weight_grams"] == 350
    default = await create_product(client, admin_headers, category["id"])
    assert (default["tax_class"], default["variants"][0]["weight_grams"]) == ("standard", None)
    variant_id = product["variants"][0]["id"]
    changed = await client.patch(
        f"{API}/variants/{variant_id}", json={"weight_grams": 400}, headers=admin_headers
    )
    assert changed.json()["weight_grams"] == 400
    negative = await client.patch(
        f"{API}/variants/{variant_id}", json={"weight_grams": -1}, headers=admin_headers
    )
    assert_problem(negative, 422)
    edited = await client.patch(
        f"{API}/products/{product['id']}", json={"tax_class": "zero"}, headers=admin_headers
    )
    assert edited.json()["tax_class"] == "zero"
    shown = await client.get(f"{API}/products/{product['id']}")
    assert (shown.json()["tax_class"], shown.json()["variants"][0]["weight_grams"]) == ("zero", 400)
