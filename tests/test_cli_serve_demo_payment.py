"""The quick start takes money: on ``emporium serve --demo``, a guest fills a cart, picks a
shipping method, places the order and pays it with the test provider's ``pm_card_visa``,
and the order is paid in full. Through a real server process (the entry point a newcomer
uses), with no settings but the folder it runs in.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from servers import EMPORIUM, free_port, wait_ready

ADDRESS = {
    "name": "Gwen Guest",
    "line1": "1 Market St",
    "city": "San Francisco",
    "region": "US-CA",
    "postal_code": "94105",
    "country": "US",
}


def _ok(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _in_stock_variant(api: str) -> str:
    """A variant of the demo catalog that can be sold now."""
    products = _ok(httpx.get(f"{api}/products", params={"limit": 20}), 200)["items"]
    for product in products:
        for variant in _ok(httpx.get(f"{api}/products/{product['id']}"), 200)["variants"]:
            if variant["stock"] is None or variant["stock"] > 0:
                return str(variant["id"])
    raise AssertionError("no variant in stock in the demo catalog")


def _guest_order(api: str) -> dict[str, Any]:
    """Cart, address, the cheapest shipping method, checkout: the order as answered."""
    cart = _ok(
        httpx.post(
            f"{api}/carts",
            json={
                "email": "gwen@example.com",
                "items": [{"variant_id": _in_stock_variant(api), "quantity": 1}],
            },
        ),
        201,
    )
    holder = {"Cart-Token": cart["token"]}
    url = f"{api}/carts/{cart['id']}"
    _ok(httpx.patch(url, headers=holder, json={"shipping_address": ADDRESS}), 200)
    methods = _ok(httpx.get(f"{url}/shipping-methods", headers=holder), 200)
    assert methods, "the demo ships to the United States"
    method = min(methods, key=lambda m: m["price"])
    _ok(httpx.patch(url, headers=holder, json={"shipping_method_id": method["id"]}), 200)
    order: dict[str, Any] = _ok(
        httpx.post(f"{api}/orders", headers=holder, json={"cart_id": cart["id"]}), 201
    )
    return order


@pytest.mark.slow
def test_a_guest_pays_a_demo_order_with_the_test_card(tmp_path: Path) -> None:
    """``pm_card_visa`` captures the whole balance: the payment is ``captured`` for the
    order's total, and the order reads ``paid`` (status and payment status) with
    ``paid_total == total``, as the README's quick start says."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPORIUM_")}
    base, api = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/api/v1"
    proc = subprocess.Popen(
        [EMPORIUM, "serve", "--demo", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(base, proc, time.monotonic() + 120)
        providers = _ok(httpx.get(f"{api}/payment-providers"), 200)["items"]
        assert "test" in {p["name"] for p in providers}
        order = _guest_order(api)
        assert order["status"] == "pending"
        assert order["total"] > 0
        token = {"Order-Token": order["order_token"]}
        payment = _ok(
            httpx.post(
                f"{api}/orders/{order['id']}/payments",
                headers=token,
                json={"provider": "test", "payment_method": "pm_card_visa"},
            ),
            201,
        )
        assert (payment["status"], payment["amount"], payment["captured_amount"]) == (
            "captured",
            order["total"],
            order["total"],
        )
        paid = _ok(httpx.get(f"{api}/orders/{order['id']}", headers=token), 200)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert (paid["status"], paid["payment_status"]) == ("paid", "paid")
    assert paid["paid_total"] == paid["total"] == order["total"]
