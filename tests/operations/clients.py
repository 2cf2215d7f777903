"""A careful shop client for the deployment suites: a guest's checkout over HTTP that, when
asked to, retries what was lost (no answer, 502-504, a key in flight at a dead node) with the
same ``Idempotency-Key``."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

Json = dict[str, Any]
ADDRESS: Json = {
    "name": "Erika Mustermann",
    "line1": "Heidestrasse 17",
    "city": "Koeln",
    "postal_code": "51147",
    "country": "DE",
}
RETRY_STATUSES = {502, 503, 504}


class Failed(Exception):
    """A request answered what the client did not expect (or not at all)."""


async def call(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    expected: int,
    *,
    retry: bool,
    headers: dict[str, str] | None = None,
    json: Json | None = None,
) -> Json:
    """One request; with ``retry`` a lost answer (no answer, 502-504, a key still in flight
    at a dead node) is sent again, as a careful client does, for up to 60 s."""
    deadline = time.monotonic() + 60
    while True:
        try:
            answer = await http.request(method, path, headers=headers, json=json)
        except httpx.TransportError as exc:
            if not retry or time.monotonic() > deadline:
                raise Failed(f"{method} {path}: {exc!r}") from exc
        else:
            if answer.status_code == expected:
                body: Json = answer.json()
                return body
            lost = answer.status_code in RETRY_STATUSES or (
                answer.status_code == 409 and "in_flight" in answer.text
            )
            if not (retry and lost) or time.monotonic() > deadline:
                raise Failed(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
        await asyncio.sleep(0.2)


async def stocked_variants(http: httpx.AsyncClient, minimum: int) -> list[str]:
    """Ids of demo variants with at least ``minimum`` units."""
    page = await call(http, "GET", "/products?in_stock=true&limit=100", 200, retry=False)
    return [
        variant["id"]
        for product in page["items"]
        for variant in product["variants"]
        if isinstance(variant["stock"], int) and variant["stock"] >= minimum
    ]


async def checkout(
    http: httpx.AsyncClient, variant_id: str, email: str, *, retry: bool
) -> tuple[Json, str]:
    """A guest's checkout of one unit: cart, address, cheapest method, order with an
    ``Idempotency-Key``; the order and that key."""
    items = [{"variant_id": variant_id, "quantity": 1}]
    cart = await call(
        http, "POST", "/carts", 201, retry=retry, json={"email": email, "items": items}
    )
    holder = {"Cart-Token": cart["token"]}
    path = f"/carts/{cart['id']}"
    await call(
        http, "PATCH", path, 200, retry=retry, headers=holder, json={"shipping_address": ADDRESS}
    )
    methods: Any = await call(
        http, "GET", f"{path}/shipping-methods", 200, retry=retry, headers=holder
    )
    chosen = {"shipping_method_id": methods[0]["id"]}
    await call(http, "PATCH", path, 200, retry=retry, headers=holder, json=chosen)
    key = str(uuid.uuid4())
    order = await call(
        http,
        "POST",
        "/orders",
        201,
        retry=retry,
        headers=holder | {"Idempotency-Key": key},
        json={"cart_id": cart["id"]},
    )
    return order, key
