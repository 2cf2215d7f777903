"""Helpers for payment tests: a guest's order, paying it, signing test provider events.

``pay_in_full`` is the shared way for any test to bring an order to ``paid`` now that staff
transitions cannot: a staff ``manual`` payment of the whole balance, captured."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
from litestar import Litestar

from emporium.payments.providers import test_secret
from emporium.payments.providers.base import PAYMENT_ID_KEY, Intent
from emporium.payments.providers.test import intent_event, sign
from factories import API, Client
from orders.support import ADDRESS, stocked_variants

Json = dict[str, Any]


async def guest_order(
    client: Client, staff: dict[str, str], quantity: int = 2, price: int = 1999
) -> tuple[Json, dict[str, str]]:
    """A guest's pending order of ``quantity`` units at ``price``; returns the order and the
    guest's headers (``Order-Token``)."""
    (variant,) = await stocked_variants(client, staff, 10, price=price)
    cart = await client.post(
        f"{API}/carts", json={"items": [{"variant_id": variant["id"], "quantity": quantity}]}
    )
    assert cart.status_code == 201, cart.text
    holder = {"Cart-Token": cart.json()["token"]}
    patched = await client.patch(
        f"{API}/carts/{cart.json()['id']}",
        headers=holder,
        json={"email": "guest@example.com", "shipping_address": ADDRESS},
    )
    assert patched.status_code == 200, patched.text
    placed = await client.post(f"{API}/orders", json={"cart_id": cart.json()["id"]}, headers=holder)
    assert placed.status_code == 201, placed.text
    order = placed.json()
    return order, {"Order-Token": order.pop("order_token")}


async def pay(
    client: Client,
    order_id: str,
    headers: dict[str, str],
    method: str | None = "pm_card_visa",
    **body: Any,
) -> Any:
    """POST /orders/{id}/payments with the test provider and ``method``."""
    payload: Json = {"provider": "test", **body}
    if method is not None:
        payload["payment_method"] = method
    return await client.post(f"{API}/orders/{order_id}/payments", json=payload, headers=headers)


async def pay_in_full(client: Client, order_id: str, staff: dict[str, str]) -> Json:
    """Staff record a ``manual`` payment of the whole balance and capture it: the order is
    ``paid``. Returns the captured payment."""
    created = await client.post(
        f"{API}/orders/{order_id}/payments", json={"provider": "manual"}, headers=staff
    )
    assert created.status_code == 201, created.text
    captured = await client.post(
        f"{API}/payments/{created.json()['id']}/capture", json={}, headers=staff
    )
    assert captured.status_code == 200, captured.text
    result: Json = captured.json()
    return result


def signed(
    app: Litestar, event: Json, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a test provider delivery of ``event``, signed as the app's
    test provider signs."""
    body = json.dumps(event).encode()
    secret = test_secret(app.state.settings, app.state.accounts.vault.ring)
    when = int(time.time()) if timestamp is None else timestamp
    return body, {"Test-Signature": sign(body, secret, when), "Content-Type": "application/json"}


async def deliver(client: Client, event: Json, headers: dict[str, str] | None = None) -> Any:
    """POST a signed test provider event to /payments/webhooks/test."""
    body, signed_headers = signed(client.app, event)
    return await client.post(
        f"{API}/payments/webhooks/test", content=body, headers=headers or signed_headers
    )


async def deliver_at_once(client: Client, event: Json, times: int) -> list[httpx.Response]:
    """Deliver the same signed event ``times`` times truly concurrently, on the app's loop
    (as ``factories.at_once``, with the exact signed bytes as the body)."""
    body, headers = signed(client.app, event)

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
            url = f"{API}/payments/webhooks/test"
            return list(
                await asyncio.gather(
                    *(c.post(url, content=body, headers=headers) for _ in range(times))
                )
            )

    with client.portal() as portal:
        return portal.call(send_all)


def succeeded(payment: Json, event_type: str = "payment_intent.succeeded") -> Json:
    """The provider's event that ``payment`` (awaiting 3-D Secure) was captured in full."""
    reference = str(payment["client_secret"]).split("_secret_")[0]
    intent = Intent(
        reference,
        "captured",
        payment["amount"],
        payment["amount"],
        payment["currency"],
        metadata={PAYMENT_ID_KEY: payment["id"]},
    )
    return intent_event(intent, event_type)
