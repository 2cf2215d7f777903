"""Helpers for cart, checkout and order tests: a stocked product, an address, checkout."""

from __future__ import annotations

from typing import Any

from factories import API, Client, create_category, create_product, variant_body

Json = dict[str, Any]
ADDRESS: Json = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}


async def stocked_variants(
    client: Client, staff: dict[str, str], *stocks: int, price: int = 1999
) -> list[Json]:
    """One published product per stock level given; returns their variants (as created)."""
    category = await create_category(client, staff)
    variants = []
    for stock in stocks:
        product = await create_product(
            client, staff, category["id"], variants=[variant_body(price=price, stock=stock)]
        )
        variants.append(product["variants"][0] | {"product_id": product["id"]})
    return variants


async def order(
    client: Client,
    headers: dict[str, str],
    items: list[tuple[str, int]] | None,
    *,
    key: str | None = None,
    **body: Any,
) -> Any:
    """POST /orders with ``items`` as ``(variant_id, quantity)`` (None: the cart)."""
    payload: Json = {"shipping_address": ADDRESS, **body}
    if items is not None:
        payload["items"] = [{"variant_id": v, "quantity": q} for v, q in items]
    extra = {"Idempotency-Key": key} if key else {}
    return await client.post(f"{API}/orders", json=payload, headers=headers | extra)


def checkout_call(
    headers: dict[str, str], items: list[tuple[str, int]], *, key: str | None = None
) -> tuple[str, str, dict[str, str], Json]:
    """A ``POST /orders`` for :func:`factories.at_once` (truly concurrent requests)."""
    payload: Json = {"shipping_address": ADDRESS}
    payload["items"] = [{"variant_id": v, "quantity": q} for v, q in items]
    extra = {"Idempotency-Key": key} if key else {}
    return ("POST", "/orders", headers | extra, payload)


async def stock_of(client: Client, staff: dict[str, str], variant: Json) -> int:
    """The variant's stock as the staff product view shows it."""
    response = await client.get(f"{API}/products/{variant['product_id']}", headers=staff)
    assert response.status_code == 200, response.text
    found = [v for v in response.json()["variants"] if v["id"] == variant["id"]]
    return int(found[0]["stock"])


async def ledger(client: Client, staff: dict[str, str], variant_id: str) -> list[Json]:
    """Every stock movement of a variant (all pages)."""
    items: list[Json] = []
    cursor = None
    while True:
        params: Json = {"limit": 100} | ({"cursor": cursor} if cursor else {})
        response = await client.get(
            f"{API}/variants/{variant_id}/stock-movements", params=params, headers=staff
        )
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def balance(movements: list[Json]) -> dict[str, int]:
    """Units per movement kind, e.g. ``{"received": 10, "sale": -3, ...}``."""
    totals: dict[str, int] = {}
    for m in movements:
        totals[m["kind"]] = totals.get(m["kind"], 0) + m["delta"]
    return totals
