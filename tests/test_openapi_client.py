"""A Python client generated from the server's OpenAPI document (openapi-python-client)
runs the shopper's flow against a live ``emporium serve --demo``: browse, register, sign in,
fill the cart, check out. If the document lies about a shape, the generated client fails."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from servers import EMPORIUM, free_port, server_env, wait_ready

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
PACKAGE = "emporium_client"


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[str]:
    """``emporium serve --demo`` on a fresh SQLite file; its base URL once ready."""
    env = server_env(f"sqlite+aiosqlite:///{tmp_path}/shop.db", tmp_path / "keys.json")
    port = free_port()
    proc = subprocess.Popen(
        [EMPORIUM, "serve", "--demo", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, time.monotonic() + 90)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _generate(base: str, into: Path) -> Any:
    """Generate the client package from the live document into ``into`` and import it."""
    if not GENERATOR.exists() and shutil.which("openapi-python-client") is None:
        pytest.skip("openapi-python-client is not installed (pip install -r requirements-dev.lock)")
    spec = into / "openapi.json"
    spec.write_bytes(httpx.get(f"{base}/openapi.json", timeout=10).content)
    command = [str(GENERATOR), "generate", "--path", str(spec), "--meta", "none"]
    command += ["--output-path", str(into / PACKAGE)]
    env_path = f"{GENERATOR.parent}:{os.environ.get('PATH', '')}"
    done = subprocess.run(
        command, cwd=into, capture_output=True, text=True, timeout=300, env={"PATH": env_path}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(into))
    importlib.invalidate_caches()
    return importlib.import_module(PACKAGE)


@pytest.mark.slow
def test_a_generated_client_browses_registers_and_checks_out(
    demo_server: str, tmp_path: Path
) -> None:
    generated = tmp_path / "generated"
    generated.mkdir()
    _generate(demo_server, generated)
    try:
        _shop(demo_server)
    finally:
        sys.path.remove(str(generated))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _shop(base: str) -> None:
    """Browse anonymously, register, sign in, then check out (:func:`_checkout`)."""
    from emporium_client import AuthenticatedClient, Client
    from emporium_client.api.accounts import login, register
    from emporium_client.api.catalog import get_product, list_products
    from emporium_client.models import (
        LoginIn,
        ProductPage,
        ProductRead,
        RegisterIn,
        TokenPair,
        UserRead,
    )

    with Client(base_url=base, raise_on_unexpected_status=True) as anonymous:
        page = list_products.sync(client=anonymous, limit=10, in_stock=True, sort="price")
        assert isinstance(page, ProductPage)
        assert len(page.items) == 10
        product = get_product.sync(client=anonymous, id_or_slug=page.items[0].slug)
        assert isinstance(product, ProductRead)
        variant = next(v for v in product.variants if v.stock is None or v.stock >= 2)

        email = f"{uuid.uuid4().hex[:10]}@example.com"
        password = "Quartz lantern drifts over 9 fjords"
        user = register.sync(client=anonymous, body=RegisterIn(email=email, password=password))
        assert isinstance(user, UserRead)
        assert user.email == email
        tokens = login.sync(client=anonymous, body=LoginIn(email=email, password=password))
        assert isinstance(tokens, TokenPair)
        with AuthenticatedClient(base_url=base, token=tokens.access_token) as me:
            _checkout(me, variant)


def _checkout(me: Any, variant: Any) -> None:
    """Fill the cart, choose a shipping method for the address, place the order with the
    signed-in client ``me``."""
    from emporium_client.api.cart import add_cart_item
    from emporium_client.api.carts import create_cart, shipping_methods, update_cart
    from emporium_client.api.orders import get_order, place_order
    from emporium_client.models import (
        AddressIn,
        CartCreate,
        CartItemCreate,
        CartUpdate,
        OrderCreated,
        OrderCreateFromCart,
        OrderRead,
    )

    cart = add_cart_item.sync(client=me, body=CartItemCreate(variant_id=variant.id, quantity=2))
    assert [(i.variant_id, i.quantity) for i in cart.items] == [(variant.id, 2)]
    assert cart.subtotal == 2 * variant.price
    address = AddressIn(
        name="Ada Lovelace",
        line1="350 Fifth Avenue",
        city="New York",
        region="NY",
        postal_code="10118",
        country="US",
    )
    mine = create_cart.sync(client=me, body=CartCreate())  # the account's cart, with its id
    update_cart.sync(client=me, cart_id=mine.id, body=CartUpdate(shipping_address=address))
    methods = shipping_methods.sync(client=me, cart_id=mine.id)
    assert isinstance(methods, list), methods
    assert methods, "the demo ships to New York"
    update_cart.sync(client=me, cart_id=mine.id, body=CartUpdate(shipping_method_id=methods[0].id))
    placed = place_order.sync(
        client=me, body=OrderCreateFromCart(cart_id=mine.id), idempotency_key=str(uuid.uuid4())
    )
    assert isinstance(placed, OrderCreated), placed
    assert placed.status == "pending"
    assert placed.subtotal == 2 * variant.price
    extra = 0 if placed.prices_include_tax else placed.tax_total
    assert placed.total == placed.subtotal + placed.shipping_total + extra
    again = get_order.sync(client=me, order_id=placed.id)
    assert isinstance(again, OrderRead)
    assert again.id == placed.id
