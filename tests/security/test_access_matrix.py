"""The access-control matrix (OWASP API1:2023 BOLA, API5:2023 BFLA): every route of the
server's own OpenAPI document, called by every kind of caller on objects that belong to
customer A, answers exactly what the table below says. No caller gets a 2xx it should not.

A second table, ``GUEST_EXPECTATIONS``, calls every cart and order route (every path under
``/api/v1/cart`` and ``/api/v1/orders``) on the objects of a guest: a guest cart (a
capability: ``Cart-Token``) and the guest order made from it (``Order-Token``). Guests are
callers of both tables on those routes: the guest holding the tokens of the table's guest
objects, a guest holding another guest's tokens, and the guest's cart token presented as an
order token (on A's objects, all three hold tokens of objects that are not A's); on the
guest's objects, customer B signed in and holding the guest's tokens too.

A route in the OpenAPI document without an entry in its table fails the test with the entry
to add: whoever adds a route decides, here, who may call it. A route an API key may reach
names its scope: a key holding only that scope passes, a key holding every other scope gets
``403 insufficient_scope``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts.support import OTHER_PASSWORD, PASSWORD, new_email
from emporium.accounts import api_keys
from emporium.accounts import service as account_service
from emporium.accounts import sessions as account_sessions
from emporium.accounts.protect import AccountsContext
from emporium.app import create_app
from emporium.core.config import Settings
from emporium.core.db.base import create_engine, create_sessionmaker
from emporium.jobs.models import Job
from emporium.payments.providers import test_secret
from emporium.payments.providers.base import PAYMENT_ID_KEY, Intent
from emporium.payments.providers.test import intent_event, sign
from emporium.webhooks.models import WebhookDelivery
from factories import API, Client, create_category, product_body, variant_body
from returns.support import ship_everything_in_db

ANON, A, B, STAFF, ADMIN, NOMFA, KEY, WRONG_KEY = (
    "anonymous",
    "customer_a",
    "customer_b",
    "staff",
    "admin",
    "staff_without_mfa",
    "api_key",
    "api_key_without_the_scope",
)
GUEST, OTHER_GUEST, CART_AS_ORDER = "guest", "another_guest", "cart_token_as_order_token"
B_HOLDING = "customer_b_holding_the_guest_tokens"
"""Customer B, signed in, sending the tokens of the guest's cart and order too (a guest who
signed in): called on the guest's objects only (on A's objects B is enough)."""
PEOPLE = (A, B, STAFF, ADMIN, NOMFA, B_HOLDING)
KEYS = (KEY, WRONG_KEY)
GUESTS = (GUEST, OTHER_GUEST, CART_AS_ORDER)
"""Anonymous callers holding tokens: ``GUEST`` sends the ``Cart-Token`` of the guest cart
and the ``Order-Token`` of the guest order, ``OTHER_GUEST`` those of another guest's cart
and order, ``CART_AS_ORDER`` the guest cart's token as ``Order-Token``."""
CALLERS = (ANON, *PEOPLE, *KEYS, *GUESTS)
SHOPPING = (f"{API}/cart", f"{API}/orders")
"""Path prefixes of the cart and order routes (``/cart``, ``/carts``, ``/orders``): where
tokens mean something, so where guests are called (elsewhere they are anonymous callers)."""
Json = dict[str, Any]


@dataclass
class World:
    """The objects of the table (A's, or the guest's cart, line and order) and the catalog,
    and every caller's headers; API keys by their scopes, and on A's objects the guests,
    made when first needed."""

    headers: dict[str, dict[str, str]]
    ids: dict[str, str]
    a_email: str
    a_spare_refresh: str
    keys: dict[frozenset[str], dict[str, str]] = field(default_factory=dict)
    prepared_for: str | None = None
    """The route whose own objects this world now holds (:func:`_fulfilment`): no other
    route may share the world after it."""


@dataclass(frozen=True)
class Expect:
    """Who may succeed (with ``status``); everyone else gets ``denied[caller]``, or 401
    when anonymous (guests too) or an API key (a key is not a person) and 403 otherwise.
    ``scope``: the scope an API key needs here (None: no key may pass); ``KEY`` then holds
    exactly it and ``WRONG_KEY`` every other one (403 ``insufficient_scope``)."""

    allowed: frozenset[str]
    status: int
    body: Callable[[World], Json] | None = None
    denied: dict[str, int] = field(default_factory=dict)
    scope: str | None = None
    headers: Callable[[bytes], dict[str, str]] | None = None
    """Headers made from the exact bytes of the body (a signature), sent with them."""
    code: str | None = None
    """The problem ``code`` of the callers in ``allowed`` (when ``status`` is a refusal)."""

    def expected(self, caller: str) -> int:
        """The status ``caller`` must get."""
        if caller in self.allowed:
            return self.status
        if caller == WRONG_KEY and self.scope is not None:
            return 403
        return self.denied.get(caller, 401 if caller in (ANON, *GUESTS, *KEYS) else 403)

    def key_scopes(self, caller: str) -> frozenset[str]:
        """The scopes of the key ``caller`` (``KEY`` or ``WRONG_KEY``) uses here; on a route
        no key may pass, both hold every scope."""
        if self.scope is None:
            return frozenset(api_keys.SCOPES)
        if caller == KEY:
            return frozenset({self.scope})
        return frozenset(api_keys.SCOPES) - {self.scope}

    def but(self, **denied: int) -> Expect:
        """The same expectation with other answers for some callers (``caller=status``)."""
        allowed = self.allowed - denied.keys()
        return replace(self, allowed=allowed, denied={**self.denied, **denied})

    def with_key(self, scope: str) -> Expect:
        """The same expectation, and an API key holding ``scope`` may pass too."""
        return replace(self, allowed=self.allowed | {KEY}, scope=scope)


Body = Callable[[World], Json] | None


def everyone(status: int, body: Body = None) -> Expect:
    """A public route."""
    return Expect(frozenset(CALLERS), status, body)


def nobody(status: int, body: Body = None) -> Expect:
    """A route whose credential is in the body (a token the matrix does not hold): every
    caller gets the same refusal."""
    return Expect(frozenset(), 0, body, dict.fromkeys(CALLERS, status))


def signed_in(status: int, body: Body = None) -> Expect:
    """A route on the caller's own account: every signed-in person (not an API key)."""
    return Expect(frozenset(PEOPLE), status, body)


def signed_in_or_key(scope: str, status: int, body: Body = None) -> Expect:
    """A list whose content depends on the caller: every signed-in person, and an API key
    holding ``scope``."""
    return signed_in(status, body).with_key(scope)


def owner(status: int, body: Body = None) -> Expect:
    """A route on one of A's own objects: anyone else's attempt looks like a missing object."""
    return Expect(frozenset({A}), status, body, {B: 404, STAFF: 404, ADMIN: 404, NOMFA: 404})


def customer(status: int, body: Body = None) -> Expect:
    """Shopping: people with the customer role (staff accounts are not customers)."""
    return Expect(frozenset({A, B, B_HOLDING}), status, body)


def own_cart_line(status: int, body: Body = None) -> Expect:
    """A line of A's cart: customers only, and another customer's line does not exist."""
    return Expect(frozenset({A}), status, body, {B: 404})


def owner_or_staff(scope: str, status: int, body: Body = None) -> Expect:
    """A change to one of A's orders: A, staff with MFA and an API key holding ``scope``;
    other people (staff without MFA act as plain people) see no such order; a guest's token
    does not reach such a route (401)."""
    return Expect(frozenset({A, STAFF, ADMIN}), status, body, {B: 404, NOMFA: 404}).with_key(scope)


def order_reader(scope: str, status: int, owners: tuple[str, ...] = (A,)) -> Expect:
    """Reading one order of ``owners`` (A, or whoever sends the guest's ``Order-Token``):
    them, staff with MFA and an API key holding ``scope``. Every other person (staff without
    MFA act as plain people) and every other token sees no such order (404); anonymous
    without a token: 401."""
    others = {c: 404 for c in (A, B, NOMFA, B_HOLDING, *GUESTS) if c not in owners}
    return Expect(frozenset({*owners, STAFF, ADMIN}), status, None, others).with_key(scope)


def order_payer(owners: tuple[str, ...]) -> Expect:
    """Paying one order of ``owners`` with the test provider's ``pm_card_visa``: whoever
    may read it (:func:`order_reader`; an API key with ``orders:write``) pays (201)."""
    others = {c: 404 for c in (A, B, NOMFA, B_HOLDING, *GUESTS) if c not in owners}
    body: Body = lambda w: {"provider": "test", "payment_method": "pm_card_visa"}  # noqa: E731
    return Expect(frozenset({*owners, STAFF, ADMIN}), 201, body, others).with_key(ORDERS_WRITE)


def author_or_staff(status: int, body: Body = None) -> Expect:
    """A's published review: A and staff with MFA; another person may see it, not change
    it (403)."""
    return Expect(frozenset({A, STAFF, ADMIN}), status, body)


def staff(scope: str, status: int, body: Body = None) -> Expect:
    """A catalog, inventory or order operation: staff and admins with MFA, and an API key
    holding ``scope``."""
    return Expect(frozenset({STAFF, ADMIN}), status, body).with_key(scope)


def cart_holder(status: int, body: Body = None, holders: tuple[str, ...] = (A,)) -> Expect:
    """A cart of ``holders`` (A's, or the guest's: whoever sends its ``Cart-Token``): only
    them; for anyone else it does not exist (404), staff, keys and other tokens included (a
    cart is a capability of its holder, not a staff object)."""
    denied = {c: 404 for c in CALLERS if c not in holders}
    return Expect(frozenset(holders), status, body, denied)


def no_customers_line(status: int, body: Body = None) -> Expect:
    """The v1 routes of the customer's own cart on a line of the guest's cart: nobody
    passes; to a customer the line is not in their cart (404), the others are refused by
    the guard."""
    return Expect(frozenset(), 0, body, {A: status, B: status, B_HOLDING: status})


def admin(status: int, body: Body = None) -> Expect:
    """User management, API keys, webhooks, jobs: admins with MFA only (a key never: 403)."""
    return Expect(frozenset({ADMIN}), status, body, {KEY: 403, WRONG_KEY: 403})


CATALOG, INVENTORY_READ, INVENTORY_WRITE, ORDERS_READ, ORDERS_WRITE = (
    "catalog:write",
    "inventory:read",
    "inventory:write",
    "orders:read",
    "orders:write",
)
ADDRESS = {
    "name": "Ann",
    "line1": "1 Main St",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}
HOOK_URL = "https://hooks.example.com/emporium"
SHOPIFY_CSV = "Handle,Title,Variant SKU,Variant Price\nmatrix-mug,Matrix Mug,MATRIX-MUG,9.50\n"

WRONG_SECRET = "not-the-test-providers-secret"


def _forged_capture(w: World) -> Json:
    """The test provider's event that A's payment awaiting 3-D Secure was captured."""
    intent = Intent(
        w.ids["action_reference"],
        "captured",
        1,
        1,
        w.ids["currency"],
        metadata={PAYMENT_ID_KEY: w.ids["action_payment_id"]},
    )
    return intent_event(intent)


def _forged_signature(body: bytes) -> dict[str, str]:
    """A well-formed, current ``Test-Signature`` of ``body``, made with a wrong secret."""
    return {"Test-Signature": sign(body, WRONG_SECRET, int(time.time()))}


def _promotion_code() -> str:
    """A promotion code no other promotion of the database has."""
    return f"M-{uuid.uuid4().hex[:12]}"


def _return_one(w: World) -> Json:
    """A return of the one unit of A's order."""
    return {"lines": [{"order_line_id": w.ids["order_line_id"], "quantity": 1}]}


def _encoded(body: Json) -> bytes:
    return json.dumps(body, sort_keys=True).encode()


def _ship_a_unit(w: World) -> Json:
    """One unit of the order's line (``order_line_id``) in a parcel, nobody told."""
    return {
        "lines": [{"order_line_id": w.ids["order_line_id"], "quantity": 1}],
        "notify_customer": False,
        "tracking_url": "https://track.example.com/1",
    }


EXPECTATIONS: dict[tuple[str, str], Expect] = {
    ("GET", "/healthz"): everyone(200),
    ("GET", "/readyz"): everyone(200),
    ("POST", f"{API}/auth/register"): everyone(
        201, lambda w: {"email": new_email(), "password": PASSWORD}
    ),
    ("POST", f"{API}/auth/login"): everyone(
        200, lambda w: {"email": w.a_email, "password": PASSWORD}
    ),
    # The refresh token is the credential: whoever holds it may use it.
    ("POST", f"{API}/auth/refresh"): everyone(200, lambda w: {"refresh_token": w.a_spare_refresh}),
    # The same answer whether or not the address has an account, for anyone.
    ("POST", f"{API}/auth/password/forgot"): everyone(202, lambda w: {"email": w.a_email}),
    # Reset and verification tokens are the credential; nobody here holds a valid one.
    ("POST", f"{API}/auth/password/reset"): nobody(
        400, lambda w: {"token": "not-a-token", "new_password": OTHER_PASSWORD}
    ),
    ("POST", f"{API}/auth/email/verify"): nobody(400, lambda w: {"token": "not-a-token"}),
    ("POST", f"{API}/auth/login/mfa"): nobody(
        401, lambda w: {"mfa_token": "not-a-token", "code": "123456"}
    ),
    ("POST", f"{API}/auth/logout"): signed_in(204),
    ("GET", f"{API}/auth/sessions"): signed_in(200),
    ("DELETE", f"{API}/auth/sessions/{{session_id}}"): owner(204),
    ("POST", f"{API}/auth/password"): signed_in(
        204, lambda w: {"current_password": PASSWORD, "new_password": OTHER_PASSWORD}
    ),
    # Staff and admin here already have MFA (409 mfa_already_enabled); nobody has started an
    # enrolment, so every person's confirmation reaches the handler and gets a 409.
    ("POST", f"{API}/auth/mfa/totp"): signed_in(200).but(**{STAFF: 409, ADMIN: 409}),
    ("POST", f"{API}/auth/mfa/totp/confirm"): signed_in(409, lambda w: {"code": "000000"}),
    ("DELETE", f"{API}/auth/mfa/totp"): signed_in(204, lambda w: {"password": PASSWORD}).but(
        **{A: 409, B: 409, NOMFA: 409}
    ),
    ("GET", f"{API}/users/me"): signed_in(200),
    ("PATCH", f"{API}/users/me"): signed_in(200, lambda w: {"first_name": "Changed"}),
    ("DELETE", f"{API}/users/me"): signed_in(204, lambda w: {"password": PASSWORD}),
    ("GET", f"{API}/users/me/export"): signed_in(200),
    ("GET", f"{API}/users/me/addresses"): signed_in(200),
    ("POST", f"{API}/users/me/addresses"): signed_in(201, lambda w: ADDRESS),
    ("PATCH", f"{API}/users/me/addresses/{{address_id}}"): owner(200, lambda w: {"city": "X"}),
    ("DELETE", f"{API}/users/me/addresses/{{address_id}}"): owner(204),
    ("GET", f"{API}/users"): admin(200),
    ("POST", f"{API}/users"): admin(
        201, lambda w: {"email": new_email(), "password": PASSWORD, "roles": ["staff"]}
    ),
    ("GET", f"{API}/users/{{user_id}}"): admin(200),
    ("PATCH", f"{API}/users/{{user_id}}"): admin(200, lambda w: {"is_active": False}),
    ("GET", f"{API}/users/{{user_id}}/sessions"): admin(200),
    ("DELETE", f"{API}/users/{{user_id}}/sessions/{{session_id}}"): admin(204),
    ("GET", f"{API}/api-keys"): admin(200),
    ("POST", f"{API}/api-keys"): admin(
        201, lambda w: {"name": "matrix", "scopes": ["orders:read"]}
    ),
    ("DELETE", f"{API}/api-keys/{{key_id}}"): admin(204),
    ("GET", f"{API}/categories"): everyone(200),
    ("POST", f"{API}/categories"): staff(CATALOG, 201, lambda w: {"name": f"C {uuid.uuid4().hex}"}),
    ("PATCH", f"{API}/categories/{{category_id}}"): staff(
        CATALOG, 200, lambda w: {"description": "d"}
    ),
    ("DELETE", f"{API}/categories/{{category_id}}"): staff(CATALOG, 204),
    ("GET", f"{API}/products"): everyone(200),
    ("POST", f"{API}/products"): staff(CATALOG, 201, lambda w: product_body(w.ids["category_id"])),
    ("GET", f"{API}/products/{{id_or_slug}}"): everyone(200),
    ("PATCH", f"{API}/products/{{id_or_slug}}"): staff(
        CATALOG, 200, lambda w: {"title": "Renamed"}
    ),
    ("DELETE", f"{API}/products/{{id_or_slug}}"): staff(CATALOG, 204),
    ("POST", f"{API}/products/{{id_or_slug}}/variants"): staff(
        CATALOG, 201, lambda w: variant_body()
    ),
    ("PATCH", f"{API}/variants/{{variant_id}}"): staff(CATALOG, 200, lambda w: {"title": "Large"}),
    ("DELETE", f"{API}/variants/{{variant_id}}"): staff(CATALOG, 204),
    ("POST", f"{API}/variants/{{variant_id}}/stock-adjustments"): staff(
        INVENTORY_WRITE, 201, lambda w: {"delta": 3, "reason": "recount"}
    ),
    ("GET", f"{API}/variants/{{variant_id}}/stock-movements"): staff(INVENTORY_READ, 200),
    ("POST", f"{API}/imports/shopify-csv"): staff(CATALOG, 200, lambda w: {"csv": SHOPIFY_CSV}),
    ("GET", f"{API}/products/{{id_or_slug}}/reviews"): everyone(200),
    ("POST", f"{API}/products/{{id_or_slug}}/reviews"): customer(
        201, lambda w: {"rating": 5, "body": "Great."}
    ),
    ("GET", f"{API}/reviews"): Expect(
        frozenset({STAFF, ADMIN}), 200, None, {KEY: 403, WRONG_KEY: 403}
    ),
    ("PATCH", f"{API}/reviews/{{review_id}}"): author_or_staff(200, lambda w: {"rating": 4}),
    ("DELETE", f"{API}/reviews/{{review_id}}"): author_or_staff(204),
    ("GET", f"{API}/cart"): customer(200),
    ("POST", f"{API}/cart/items"): customer(
        201, lambda w: {"variant_id": w.ids["cart_variant_id"], "quantity": 1}
    ),
    ("PATCH", f"{API}/cart/items/{{item_id}}"): own_cart_line(200, lambda w: {"quantity": 2}),
    ("DELETE", f"{API}/cart/items/{{item_id}}"): own_cart_line(204),
    ("GET", f"{API}/orders"): signed_in_or_key(ORDERS_READ, 200),
    ("POST", f"{API}/orders"): customer(
        201,
        lambda w: {
            "items": [{"variant_id": w.ids["cart_variant_id"], "quantity": 1}],
            "shipping_address": ADDRESS,
            "shipping_method_id": w.ids["method_id"],
        },
    ),
    ("GET", f"{API}/orders/{{order_id}}"): order_reader(ORDERS_READ, 200),
    ("POST", f"{API}/orders/{{order_id}}/cancel"): owner_or_staff(ORDERS_WRITE, 200),
    # Staff pass the guard and reach the status machine, which no longer moves a pending
    # order by hand (paid comes only through payments): 409 invalid_transition.
    ("POST", f"{API}/orders/{{order_id}}/transitions"): staff(
        ORDERS_WRITE, 409, lambda w: {"to": "paid"}
    ),
    ("GET", f"{API}/payment-providers"): everyone(200),
    ("POST", f"{API}/orders/{{order_id}}/payments"): order_payer((A,)),
    ("GET", f"{API}/orders/{{order_id}}/payments"): order_reader(ORDERS_READ, 200),
    ("POST", f"{API}/payments/{{payment_id}}/capture"): staff(ORDERS_WRITE, 200, lambda w: {}),
    ("POST", f"{API}/payments/{{payment_id}}/cancel"): staff(ORDERS_WRITE, 200),
    # The provider's signature is the credential: everyone sends the event that would capture
    # A's payment awaiting 3-D Secure, signed with a wrong secret (400, nothing changes).
    ("POST", f"{API}/payments/webhooks/{{provider}}"): replace(
        nobody(400, _forged_capture), headers=_forged_signature
    ),
    ("POST", f"{API}/orders/{{order_id}}/refunds"): staff(
        ORDERS_WRITE, 201, lambda w: {"amount": 1, "reason": "matrix"}
    ),
    ("GET", f"{API}/orders/{{order_id}}/refunds"): staff(ORDERS_READ, 200),
    # A's order paid in full (:func:`_fulfilment`): staff ship its unit, then deliver it.
    ("POST", f"{API}/orders/{{order_id}}/fulfillments"): staff(ORDERS_WRITE, 201, _ship_a_unit),
    ("GET", f"{API}/orders/{{order_id}}/fulfillments"): staff(ORDERS_READ, 200),
    ("POST", f"{API}/fulfillments/{{fulfillment_id}}/delivered"): staff(ORDERS_WRITE, 200),
    # Returns: A's order paid, shipped and delivered first (:func:`_returns`).
    ("POST", f"{API}/orders/{{order_id}}/returns"): replace(
        order_reader(ORDERS_WRITE, 201), body=_return_one
    ),
    ("GET", f"{API}/orders/{{order_id}}/returns"): order_reader(ORDERS_READ, 200),
    ("POST", f"{API}/returns/{{return_id}}/receive"): staff(
        ORDERS_WRITE, 200, lambda w: {"lines": [_return_one(w)["lines"][0] | {"restock": True}]}
    ),
    ("POST", f"{API}/returns/{{return_id}}/refund"): staff(ORDERS_WRITE, 200, lambda w: {}),
    ("GET", f"{API}/audit-events"): admin(200),
    ("GET", f"{API}/jobs"): admin(200),
    ("POST", f"{API}/jobs/{{job_id}}/retry"): admin(202),
    ("GET", f"{API}/backups"): admin(200),
    ("POST", f"{API}/backups"): admin(202),
    ("GET", f"{API}/webhooks"): admin(200),
    ("GET", f"{API}/webhooks/events"): admin(200),
    ("POST", f"{API}/webhooks"): admin(
        201, lambda w: {"url": HOOK_URL, "events": ["order.created"]}
    ),
    ("GET", f"{API}/webhooks/{{webhook_id}}"): admin(200),
    ("PATCH", f"{API}/webhooks/{{webhook_id}}"): admin(200, lambda w: {"description": "d"}),
    ("DELETE", f"{API}/webhooks/{{webhook_id}}"): admin(204),
    ("GET", f"{API}/webhooks/{{webhook_id}}/deliveries"): admin(200),
    ("POST", f"{API}/webhooks/{{webhook_id}}/deliveries/{{delivery_id}}/retry"): admin(202),
    ("POST", f"{API}/carts"): everyone(201, lambda w: {}),
    ("GET", f"{API}/carts/{{cart_id}}"): cart_holder(200),
    ("PATCH", f"{API}/carts/{{cart_id}}"): cart_holder(200, lambda w: {"email": "a@example.com"}),
    ("POST", f"{API}/carts/{{cart_id}}/items"): cart_holder(
        200, lambda w: {"variant_id": w.ids["cart_variant_id"], "quantity": 1}
    ),
    ("PATCH", f"{API}/carts/{{cart_id}}/items/{{item_id}}"): cart_holder(
        200, lambda w: {"quantity": 2}
    ),
    ("DELETE", f"{API}/carts/{{cart_id}}/items/{{item_id}}"): cart_holder(204),
    ("GET", f"{API}/carts/{{cart_id}}/shipping-methods"): cart_holder(200),
    # A holder gets past the guard to the code's own refusal (no such code), others 404.
    ("POST", f"{API}/carts/{{cart_id}}/promotion-codes"): cart_holder(
        422, lambda w: {"code": w.ids["code"]}
    ),
    ("DELETE", f"{API}/carts/{{cart_id}}/promotion-codes/{{code}}"): cart_holder(200),
    # Claiming needs a customer: others are refused by the guard; B does not hold A's cart.
    ("POST", f"{API}/carts/{{cart_id}}/claim"): Expect(frozenset({A}), 200, None, {B: 404}),
    ("GET", f"{API}/shipping-zones"): staff("shipping:read", 200),
    ("POST", f"{API}/shipping-zones"): staff(
        "shipping:write", 201, lambda w: {"name": "EU", "countries": ["DE"]}
    ),
    ("PATCH", f"{API}/shipping-zones/{{zone_id}}"): staff(
        "shipping:write", 200, lambda w: {"name": "N"}
    ),
    ("DELETE", f"{API}/shipping-zones/{{zone_id}}"): staff("shipping:write", 204),
    ("GET", f"{API}/shipping-methods"): staff("shipping:read", 200),
    ("POST", f"{API}/shipping-methods"): staff(
        "shipping:write", 201, lambda w: {"zone_id": w.ids["zone_id"], "name": "Post", "price": 490}
    ),
    ("PATCH", f"{API}/shipping-methods/{{method_id}}"): staff(
        "shipping:write", 200, lambda w: {"price": 590}
    ),
    ("DELETE", f"{API}/shipping-methods/{{method_id}}"): staff("shipping:write", 204),
    ("GET", f"{API}/tax-rates"): staff("shipping:read", 200),
    ("POST", f"{API}/tax-rates"): staff(
        "shipping:write",
        201,
        lambda w: {"country": "DE", "rate_bp": 1900, "name": "USt", "tax_class": _class()},
    ),
    ("PATCH", f"{API}/tax-rates/{{rate_id}}"): staff(
        "shipping:write", 200, lambda w: {"rate_bp": 750}
    ),
    ("DELETE", f"{API}/tax-rates/{{rate_id}}"): staff("shipping:write", 204),
    ("GET", f"{API}/promotions"): staff("promotions:read", 200),
    ("POST", f"{API}/promotions"): staff(
        "promotions:write",
        201,
        lambda w: {"name": "M", "type": "percentage", "value": 1000, "code": _promotion_code()},
    ),
    ("GET", f"{API}/promotions/{{promotion_id}}"): staff("promotions:read", 200),
    ("PATCH", f"{API}/promotions/{{promotion_id}}"): staff(
        "promotions:write", 200, lambda w: {"value": 1500}
    ),
    ("DELETE", f"{API}/promotions/{{promotion_id}}"): staff("promotions:write", 204),
    ("GET", f"{API}/gift-cards"): staff("giftcards:read", 200),
    ("POST", f"{API}/gift-cards"): staff(
        "giftcards:write", 201, lambda w: {"initial_balance": 500, "currency": "USD"}
    ),
    ("GET", f"{API}/gift-cards/{{card_id}}"): staff("giftcards:read", 200),
    ("POST", f"{API}/gift-cards/{{card_id}}/disable"): staff("giftcards:write", 200),
    # The code is the credential: whoever holds it may read the balance (rate limited).
    ("POST", f"{API}/gift-cards/balance"): everyone(200, lambda w: {"code": w.ids["gift_code"]}),
}


def _add_a_line(w: World) -> Json:
    return {"variant_id": w.ids["cart_variant_id"], "quantity": 1}


TOKEN_HOLDERS = (GUEST, B_HOLDING)
"""Who sends the tokens of the guest's cart and order: the guest, and B signed in."""

# The same routes on a guest's objects: ``cart_id`` and ``item_id`` are the guest cart and
# its line, ``order_id`` the order the guest made from that cart (pending).
GUEST_EXPECTATIONS: dict[tuple[str, str], Expect] = {
    # The v1 cart is the signed-in customer's own: a guest's tokens do not reach it.
    ("GET", f"{API}/cart"): customer(200),
    ("POST", f"{API}/cart/items"): customer(201, _add_a_line),
    ("PATCH", f"{API}/cart/items/{{item_id}}"): no_customers_line(404, lambda w: {"quantity": 2}),
    ("DELETE", f"{API}/cart/items/{{item_id}}"): no_customers_line(404),
    ("GET", f"{API}/orders"): signed_in_or_key(ORDERS_READ, 200),
    # Checking out the guest's cart needs its Cart-Token; for anyone else no such cart.
    ("POST", f"{API}/orders"): cart_holder(
        201, lambda w: {"cart_id": w.ids["cart_id"]}, TOKEN_HOLDERS
    ),
    ("GET", f"{API}/orders/{{order_id}}"): order_reader(ORDERS_READ, 200, TOKEN_HOLDERS),
    # A guest order has no owner account: staff (and a key with orders:write) may cancel it;
    # no guest may (the route takes no token: 401), people see no such order, B holding the
    # Order-Token included (the token reads the order, it does not make B its owner).
    ("POST", f"{API}/orders/{{order_id}}/cancel"): Expect(
        frozenset({STAFF, ADMIN}), 200, None, {A: 404, B: 404, NOMFA: 404, B_HOLDING: 404}
    ).with_key(ORDERS_WRITE),
    ("POST", f"{API}/orders/{{order_id}}/transitions"): staff(
        ORDERS_WRITE, 409, lambda w: {"to": "paid"}
    ),
    ("POST", f"{API}/orders/{{order_id}}/payments"): order_payer(TOKEN_HOLDERS),
    ("GET", f"{API}/orders/{{order_id}}/payments"): order_reader(ORDERS_READ, 200, TOKEN_HOLDERS),
    # Staff reach the refund, and the guest's order has nothing captured: 409.
    ("POST", f"{API}/orders/{{order_id}}/refunds"): staff(
        ORDERS_WRITE, 409, lambda w: {"amount": 1, "reason": "matrix"}
    ),
    ("GET", f"{API}/orders/{{order_id}}/refunds"): staff(ORDERS_READ, 200),
    # Staff reach the fulfilment, and the guest's order is not paid: 409.
    ("POST", f"{API}/orders/{{order_id}}/fulfillments"): staff(ORDERS_WRITE, 409, _ship_a_unit),
    ("GET", f"{API}/orders/{{order_id}}/fulfillments"): staff(ORDERS_READ, 200),
    # Whoever reads the guest's order reaches the return, and the order is not paid: 409.
    ("POST", f"{API}/orders/{{order_id}}/returns"): replace(
        order_reader(ORDERS_WRITE, 409, TOKEN_HOLDERS),
        body=lambda w: {"lines": [{"order_line_id": str(uuid.uuid4()), "quantity": 1}]},
        code="order_not_returnable",
    ),
    ("GET", f"{API}/orders/{{order_id}}/returns"): order_reader(ORDERS_READ, 200, TOKEN_HOLDERS),
    ("POST", f"{API}/carts"): everyone(201, lambda w: {}),
    ("GET", f"{API}/carts/{{cart_id}}"): cart_holder(200, holders=TOKEN_HOLDERS),
    ("PATCH", f"{API}/carts/{{cart_id}}"): cart_holder(
        200, lambda w: {"email": "g@example.com"}, TOKEN_HOLDERS
    ),
    ("POST", f"{API}/carts/{{cart_id}}/items"): cart_holder(200, _add_a_line, TOKEN_HOLDERS),
    ("PATCH", f"{API}/carts/{{cart_id}}/items/{{item_id}}"): cart_holder(
        200, lambda w: {"quantity": 2}, TOKEN_HOLDERS
    ),
    ("DELETE", f"{API}/carts/{{cart_id}}/items/{{item_id}}"): cart_holder(
        204, holders=TOKEN_HOLDERS
    ),
    ("GET", f"{API}/carts/{{cart_id}}/shipping-methods"): cart_holder(200, holders=TOKEN_HOLDERS),
    ("POST", f"{API}/carts/{{cart_id}}/promotion-codes"): cart_holder(
        422, lambda w: {"code": w.ids["code"]}, TOKEN_HOLDERS
    ),
    ("DELETE", f"{API}/carts/{{cart_id}}/promotion-codes/{{code}}"): cart_holder(
        200, holders=TOKEN_HOLDERS
    ),
    # Claiming needs a signed-in customer holding the Cart-Token: the guest is not signed in
    # (401), customers without the token do not hold the cart (404), staff are not
    # customers (403).
    ("POST", f"{API}/carts/{{cart_id}}/claim"): Expect(
        frozenset({B_HOLDING}), 200, None, {A: 404, B: 404}
    ),
}

# Cells where the server is known to answer wrongly: the tables above hold the correct
# answer; the main tests leave these cells to ``test_known_access_bugs`` (strict xfail), so
# a fix makes that test pass and fail as XPASS until the entry is removed here.
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}
"""Cells of ``EXPECTATIONS`` the server answers wrongly today (strict xfail each); none are
known."""
GUEST_KNOWN_BUGS: dict[tuple[str, str, str], str] = {}
"""Cells of ``GUEST_EXPECTATIONS`` the server answers wrongly today; none are known."""


@dataclass(frozen=True)
class Table:
    """One access table: its name, the routes it covers (paths of the OpenAPI document
    starting with one of ``prefixes``), their expectations and its known bugs."""

    name: str
    expectations: dict[tuple[str, str], Expect]
    known_bugs: dict[tuple[str, str, str], str]
    prefixes: tuple[str, ...]
    callers: tuple[str, ...]

    def covers(self, path: str) -> bool:
        """True when the route at ``path`` must have an entry here."""
        return path.startswith(self.prefixes)

    def callers_of(self, template: str) -> tuple[str, ...]:
        """Who calls the route: the table's callers, guests on cart and order routes only
        (elsewhere their tokens mean nothing: they are anonymous callers)."""
        if template.startswith(SHOPPING):
            return self.callers
        return tuple(c for c in self.callers if c not in GUESTS)


A_OBJECTS = Table(
    "a_objects", EXPECTATIONS, KNOWN_BUGS, ("",), tuple(c for c in CALLERS if c != B_HOLDING)
)
GUEST_OBJECTS = Table("guest_objects", GUEST_EXPECTATIONS, GUEST_KNOWN_BUGS, SHOPPING, CALLERS)
TABLES = (A_OBJECTS, GUEST_OBJECTS)


async def api_key_headers(client: Client, world: World) -> dict[str, str] | None:
    """The headers of an API key made by the admin with every scope; its id goes to
    ``world.ids["key_id"]`` (the key the admin may revoke)."""
    response = await client.post(
        f"{API}/api-keys",
        json={"name": "matrix", "scopes": list(api_keys.SCOPES)},
        headers=world.headers[ADMIN],
    )
    assert response.status_code == 201, response.text
    world.ids["key_id"] = response.json()["id"]
    return {"X-API-Key": response.json()["key"]}


@dataclass
class Setup:
    """What builds worlds: the test's own sessions (the app's pools live on the test
    client's event loop), the accounts context and one password hash for everyone."""

    sessionmaker: async_sessionmaker[AsyncSession]
    ctx: AccountsContext
    password_hash: str


async def _accounts(setup: Setup) -> tuple[dict[str, dict[str, str]], Json]:
    """A, B, staff, admin and staff without MFA, signed in (staff and admin with MFA on and
    a session opened with it); A has a spare session (to be revoked or refreshed)."""
    ctx, password_hash = setup.ctx, setup.password_hash
    roles = {
        A: ["customer"],
        B: ["customer"],
        STAFF: ["staff"],
        ADMIN: ["admin", "staff"],
        NOMFA: ["staff"],
    }
    headers: dict[str, dict[str, str]] = {ANON: {}}
    extra: Json = {}
    async with setup.sessionmaker() as db, db.begin():
        for caller, caller_roles in roles.items():
            email = new_email(caller)
            user = await account_service.create_account(
                db, ctx, email=email, roles=caller_roles, password_hash=password_hash
            )
            mfa = caller in (STAFF, ADMIN)
            user.mfa_enabled = mfa
            pair = await account_sessions.open_session(
                db, ctx, user, device="matrix", ip=None, mfa=mfa
            )
            headers[caller] = {"Authorization": f"Bearer {pair.access_token}"}
            if caller == A:
                spare = await account_sessions.open_session(db, ctx, user, device="x", ip=None)
                extra = {"a_email": email, "user_id": str(user.id), "spare": spare}
    return headers, extra


async def _created(response: Any) -> Json:
    assert response.status_code in (200, 201), response.text
    body: Json = response.json()
    return body


async def _world(client: Client, setup: Setup) -> World:
    headers, extra = await _accounts(setup)
    staff_headers, a = headers[STAFF], headers[A]
    address = await _created(
        await client.post(f"{API}/users/me/addresses", json=ADDRESS, headers=a)
    )
    category = await create_category(client, staff_headers)
    empty_category = await create_category(client, staff_headers)
    body = product_body(category["id"], variants=[variant_body(), variant_body()])
    product = await _created(await client.post(f"{API}/products", json=body, headers=staff_headers))
    # A's review, cart line and order are on a second product, so that A may still review
    # the first one and deleting the first one's variant leaves them alone.
    other_body = product_body(category["id"], variants=[variant_body(stock=50)])
    other = await _created(
        await client.post(f"{API}/products", json=other_body, headers=staff_headers)
    )
    other_variant = other["variants"][0]["id"]
    review = await _created(
        await client.post(
            f"{API}/products/{other['id']}/reviews", headers=a, json={"rating": 5, "body": "Mine."}
        )
    )
    shipping = await _shipping(client, staff_headers)
    order = await _created(
        await client.post(
            f"{API}/orders",
            headers=a,
            json={
                "items": [{"variant_id": other_variant, "quantity": 1}],
                "address_id": address["id"],
                "shipping_method_id": shipping["method_id"],
            },
        )
    )
    cart = await _created(
        await client.post(
            f"{API}/cart/items", headers=a, json={"variant_id": other_variant, "quantity": 1}
        )
    )
    hook = await _created(
        await client.post(
            f"{API}/webhooks",
            headers=headers[ADMIN],
            json={"url": HOOK_URL, "events": ["order.created"]},
        )
    )
    promotion = await _created(
        await client.post(
            f"{API}/promotions",
            headers=staff_headers,
            json={
                "name": "Matrix",
                "type": "fixed_amount",
                "value": 100,
                "code": _promotion_code(),
            },
        )
    )
    a_cart = await _created(await client.post(f"{API}/carts", json={}, headers=a))
    sessions = await client.get(f"{API}/auth/sessions", headers=a)
    spare_id = next(s["id"] for s in sessions.json() if not s["current"])
    ids = {
        "address_id": address["id"],
        "category_id": empty_category["id"],
        "id_or_slug": product["id"],
        "variant_id": product["variants"][1]["id"],
        "cart_variant_id": other_variant,
        "user_id": extra["user_id"],
        "session_id": spare_id,
        "review_id": review["id"],
        "item_id": cart["items"][0]["id"],
        "cart_id": a_cart["id"],
        "order_id": order["id"],
        "order_line_id": order["items"][0]["id"],
        "provider": "test",
        "code": "NO-SUCH-CODE",
        "currency": order["currency"],
        "webhook_id": hook["id"],
        "promotion_id": promotion["id"],
        **await _dead_letters(setup, uuid.UUID(hook["id"])),
        **shipping,
        **await _gift_cards(client, staff_headers),
    }
    world = World(headers, ids, extra["a_email"], extra["spare"].refresh_token)
    key = await api_key_headers(client, world)
    if key is not None:
        world.keys[frozenset(api_keys.SCOPES)] = key
        headers[KEY] = headers[WRONG_KEY] = key
    return world


PAYMENT_CASES = frozenset(
    {
        ("POST", f"{API}/payments/{{payment_id}}/capture"),
        ("POST", f"{API}/payments/{{payment_id}}/cancel"),
        ("POST", f"{API}/payments/webhooks/{{provider}}"),
        ("POST", f"{API}/orders/{{order_id}}/refunds"),
    }
)
"""The routes of ``EXPECTATIONS`` whose worlds need :func:`_payments` (only they: making
payments for every world is what made the matrix slow)."""


async def _payments(client: Client, world: World) -> None:
    """Payments of one cent on A's order: two ``manual`` ones by staff, the first captured
    (so that a refund may be made), the second pending (``payment_id``: the one captured or
    cancelled); and A's own with the test provider awaiting 3-D Secure
    (``action_payment_id``: the one a forged event would capture)."""
    staff_headers, order_id = world.headers[STAFF], world.ids["order_id"]
    ids = []
    for _ in range(2):
        made = await _created(
            await client.post(
                f"{API}/orders/{order_id}/payments",
                json={"provider": "manual", "amount": 1},
                headers=staff_headers,
            )
        )
        ids.append(made["id"])
    await _created(
        await client.post(f"{API}/payments/{ids[0]}/capture", json={}, headers=staff_headers)
    )
    action = await _created(
        await client.post(
            f"{API}/orders/{order_id}/payments",
            json={
                "provider": "test",
                "payment_method": "pm_card_authenticationRequired",
                "amount": 1,
            },
            headers=world.headers[A],
        )
    )
    assert action["status"] == "requires_action", action
    world.ids.update(
        payment_id=str(ids[1]),
        action_payment_id=str(action["id"]),
        action_reference=str(action["client_secret"]).split("_secret_")[0],
    )


FULFILMENT_CASES = frozenset(
    {f"{API}/orders/{{order_id}}/fulfillments", f"{API}/fulfillments/{{fulfillment_id}}/delivered"}
)
"""The routes whose worlds need :func:`_fulfilment` (POST only)."""


async def _fulfilment(client: Client, world: World, template: str) -> None:
    """A new order of A's, paid in full by staff (a ``manual`` payment, captured), becomes
    the world's ``order_id`` (``order_line_id`` its line); for the delivery route its unit
    ships too (``fulfillment_id``). The world then belongs to ``template`` alone."""
    staff_headers, a = world.headers[STAFF], world.headers[A]
    order = await _created(
        await client.post(
            f"{API}/orders",
            headers=a,
            json={
                "items": [{"variant_id": world.ids["cart_variant_id"], "quantity": 1}],
                "address_id": world.ids["address_id"],
                "shipping_method_id": world.ids["method_id"],
            },
        )
    )
    payment = await _created(
        await client.post(
            f"{API}/orders/{order['id']}/payments",
            json={"provider": "manual"},
            headers=staff_headers,
        )
    )
    await _created(
        await client.post(f"{API}/payments/{payment['id']}/capture", json={}, headers=staff_headers)
    )
    world.ids.update(order_id=order["id"], order_line_id=order["items"][0]["id"])
    if "{fulfillment_id}" in template:
        parcel = await _created(
            await client.post(
                f"{API}/orders/{order['id']}/fulfillments",
                json=_ship_a_unit(world),
                headers=staff_headers,
            )
        )
        world.ids["fulfillment_id"] = parcel["id"]
    world.prepared_for = template


RETURN_CASES = {
    ("POST", f"{API}/orders/{{order_id}}/returns"): 0,
    ("POST", f"{API}/returns/{{return_id}}/receive"): 1,
    ("POST", f"{API}/returns/{{return_id}}/refund"): 2,
}
"""The return routes of ``EXPECTATIONS`` and how far :func:`_returns` takes A's order
first: 0 shipped, 1 a return asked, 2 that return received."""


async def _returns(client: Client, setup: Setup, world: World, step: int) -> None:
    """A's order paid in full by staff (``manual``), shipped and delivered (written to the
    database until the fulfilment routes merge: ``returns.support``); from ``step`` 1 A
    asks to return its one unit (``return_id``), at 2 staff receive it. Steps already
    taken in this world are not taken again."""
    done = int(world.ids.get("returns_step", "-1"))
    staff_headers, order_id = world.headers[STAFF], world.ids["order_id"]
    if done < 0:
        made = await _created(
            await client.post(
                f"{API}/orders/{order_id}/payments",
                json={"provider": "manual"},
                headers=staff_headers,
            )
        )
        await _created(
            await client.post(
                f"{API}/payments/{made['id']}/capture", json={}, headers=staff_headers
            )
        )
        async with setup.sessionmaker() as db:
            await ship_everything_in_db(db, order_id)
        order = await _created(await client.get(f"{API}/orders/{order_id}", headers=staff_headers))
        world.ids["order_line_id"] = order["items"][0]["id"]
    if done < 1 <= step:
        asked = await _created(
            await client.post(
                f"{API}/orders/{order_id}/returns",
                json=_return_one(world),
                headers=world.headers[A],
            )
        )
        world.ids["return_id"] = asked["id"]
    if done < 2 <= step:
        line = _return_one(world)["lines"][0] | {"restock": False}
        await _created(
            await client.post(
                f"{API}/returns/{world.ids['return_id']}/receive",
                json={"lines": [line]},
                headers=staff_headers,
            )
        )
    world.ids["returns_step"] = str(max(done, step))


MONEY = (
    "SELECT id, status, amount, captured_amount, refunded_amount FROM payment ORDER BY id",
    "SELECT id, status, amount FROM refund ORDER BY id",
    "SELECT count(*) FROM payment_change",
    "SELECT count(*) FROM payment_event",
    "SELECT count(*) FROM test_provider_intent",
    "SELECT id, status, payment_status, paid_total, refunded_total FROM customer_order ORDER BY id",
)
"""What a payment route may change: payments, refunds, the money history, provider events
and intents, and the orders' money and status."""


async def _money(setup: Setup) -> list[list[Any]]:
    """Every row of :data:`MONEY` now."""
    async with setup.sessionmaker() as db:
        return [[tuple(row) for row in await db.execute(text(query))] for query in MONEY]


def _moves_money(template: str) -> bool:
    """A payment route (paying, capturing, cancelling, refunding, a provider's event)."""
    return "/payment" in template or "/refunds" in template


async def _guest_shopping(client: Client, world: World, variant_id: str) -> tuple[Json, Json]:
    """A guest's cart with one line of ``variant_id``, an e-mail, a US address and the
    world's shipping method, checked out once and then filled again: the cart (with its
    ``token``) and the order (with its ``order_token``) as answered."""
    cart = await _created(
        await client.post(
            f"{API}/carts",
            json={
                "email": "guest@example.com",
                "items": [{"variant_id": variant_id, "quantity": 1}],
            },
        )
    )
    url, holder = f"{API}/carts/{cart['id']}", {"Cart-Token": cart["token"]}
    await _created(
        await client.patch(
            url,
            headers=holder,
            json={
                "shipping_address": ADDRESS,
                "shipping_method_id": world.ids["method_id"],
            },
        )
    )
    order = await _created(
        await client.post(f"{API}/orders", headers=holder, json={"cart_id": cart["id"]})
    )
    refilled = await _created(
        await client.post(
            f"{url}/items", headers=holder, json={"variant_id": variant_id, "quantity": 1}
        )
    )
    return {**refilled, "token": cart["token"]}, order


async def _add_guests(client: Client, world: World, variant_id: str) -> tuple[Json, Json]:
    """Two guests, each with a cart and an order (see ``_guest_shopping``), and the headers
    of ``GUESTS`` and ``B_HOLDING``; returns the first guest's cart and order."""
    cart, order = await _guest_shopping(client, world, variant_id)
    other_cart, other_order = await _guest_shopping(client, world, variant_id)
    world.headers[GUEST] = {"Cart-Token": cart["token"], "Order-Token": order["order_token"]}
    world.headers[OTHER_GUEST] = {
        "Cart-Token": other_cart["token"],
        "Order-Token": other_order["order_token"],
    }
    world.headers[CART_AS_ORDER] = {"Order-Token": cart["token"]}
    world.headers[B_HOLDING] = {**world.headers[B], **world.headers[GUEST]}
    return cart, order


async def _guest_base(client: Client, setup: Setup) -> World:
    """What every world of ``GUEST_OBJECTS`` shares: the accounts, catalog, shipping and
    keys of an A world (the table's routes change none of them but the customers' own
    carts, which no other cell looks into), and a variant with stock for every guest
    checkout of the run (``cart_variant_id``)."""
    base = await _world(client, setup)
    category = await create_category(client, base.headers[STAFF])
    body = product_body(category["id"], variants=[variant_body(stock=100_000)])
    product = await _created(
        await client.post(f"{API}/products", json=body, headers=base.headers[STAFF])
    )
    base.ids["cart_variant_id"] = product["variants"][0]["id"]
    return base


async def _guest_world(client: Client, base: World) -> World:
    """A world of ``GUEST_OBJECTS``: ``base`` with two new guests; ``cart_id``, ``item_id``
    and ``order_id`` are the first guest's cart, its line and its order."""
    world = World(dict(base.headers), dict(base.ids), base.a_email, base.a_spare_refresh, base.keys)
    cart, order = await _add_guests(client, world, base.ids["cart_variant_id"])
    world.ids.update(cart_id=cart["id"], item_id=cart["items"][0]["id"], order_id=order["id"])
    return world


Worlds = Callable[[], Awaitable[World]]


async def _worlds(client: Client, setup: Setup, table: Table) -> Worlds:
    """What makes a fresh world for ``table``."""
    if table is A_OBJECTS:
        return partial(_world, client, setup)
    return partial(_guest_world, client, await _guest_base(client, setup))


def _class() -> str:
    """A tax class of its own (one rate per place and class; worlds share the database)."""
    return f"class-{uuid.uuid4().hex[:12]}"


async def _shipping(client: Client, staff_headers: dict[str, str]) -> dict[str, str]:
    """A zone with a method, an empty zone (the one that may be deleted) and a tax rate."""
    made = []
    for path, body in (
        ("/shipping-zones", {"name": "US", "countries": ["US"]}),
        ("/shipping-zones", {"name": "Canada", "countries": ["CA"]}),
        (
            "/tax-rates",
            {
                "country": "US",
                "region": "US-CA",
                "rate_bp": 725,
                "name": "CA",
                "tax_class": _class(),
            },
        ),
    ):
        made.append(
            await _created(await client.post(f"{API}{path}", json=body, headers=staff_headers))
        )
    method = await _created(
        await client.post(
            f"{API}/shipping-methods",
            headers=staff_headers,
            json={"zone_id": made[0]["id"], "name": "Ground", "price": 500},
        )
    )
    return {"zone_id": made[1]["id"], "rate_id": made[2]["id"], "method_id": method["id"]}


async def _gift_cards(client: Client, staff_headers: dict[str, str]) -> dict[str, str]:
    """Two gift cards: one to read and disable (``card_id``), one whose code is held for the
    balance check (``gift_code``)."""
    made = [
        await _created(
            await client.post(
                f"{API}/gift-cards",
                json={"initial_balance": 1000, "currency": "USD"},
                headers=staff_headers,
            )
        )
        for _ in range(2)
    ]
    return {"card_id": made[0]["id"], "gift_code": made[1]["code"]}


async def _dead_letters(setup: Setup, endpoint_id: uuid.UUID) -> dict[str, str]:
    """A dead job and a failed delivery to the webhook endpoint, written directly."""
    job = Job(
        id=uuid.uuid4(),
        kind="matrix.noop",
        payload={},
        status="dead",
        attempts=1,
        max_attempts=1,
        last_error="matrix",
    )
    delivery = WebhookDelivery(
        id=uuid.uuid4(),
        endpoint_id=endpoint_id,
        event_id=uuid.uuid4(),
        event_type="order.created",
        msg_id=f"msg_{uuid.uuid4().hex}",
        body="{}",
        status="failed",
        attempts=1,
    )
    async with setup.sessionmaker() as db, db.begin():
        db.add_all([job, delivery])
    return {"job_id": str(job.id), "delivery_id": str(delivery.id)}


def _operations(document: Json) -> list[tuple[str, str]]:
    methods = {"get", "post", "put", "patch", "delete"}
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in methods
    ]


@pytest.fixture
def matrix_app(settings: Settings) -> Litestar:
    """The app without rate limits: the matrix makes thousands of calls from one address,
    and throttling is tested elsewhere (a 429 here would hide the access decision)."""
    no_limits = {f"rate_limit_{name}": "" for name in settings.rate_limit_policies()}
    return create_app(settings.model_copy(update=no_limits))


def _check_coverage(table: Table, operations: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Every documented route the table covers has an expectation there, and every
    expectation a route; returns the routes the table covers."""
    covered = [(m, p) for m, p in operations if table.covers(p)]
    missing = [op for op in covered if op not in table.expectations]
    helpers = "|".join(
        f.__name__
        for f in (
            everyone,
            nobody,
            signed_in,
            signed_in_or_key,
            owner,
            customer,
            own_cart_line,
            no_customers_line,
            cart_holder,
            owner_or_staff,
            order_reader,
            author_or_staff,
            staff,
            admin,
        )
    )
    entries = "; ".join(f'("{m}", "{p}"): {helpers}(...)' for m, p in missing)
    assert not missing, f"routes without an access expectation in {table.name}: {entries}"
    stale = sorted(set(table.expectations) - set(covered))
    assert not stale, f"{table.name} entries for routes that no longer exist: {stale}"
    stale_bugs = sorted({(m, p) for m, p, _ in table.known_bugs} - set(covered))
    assert not stale_bugs, f"{table.name} known bugs on routes that no longer exist: {stale_bugs}"
    return covered


async def _key_headers(client: Client, world: World, scopes: frozenset[str]) -> dict[str, str]:
    """The headers of an API key holding exactly ``scopes``, made by the admin once per
    world."""
    if scopes not in world.keys:
        response = await client.post(
            f"{API}/api-keys",
            json={"name": "matrix", "scopes": sorted(scopes)},
            headers=world.headers[ADMIN],
        )
        assert response.status_code == 201, response.text
        world.keys[scopes] = {"X-API-Key": response.json()["key"]}
    return world.keys[scopes]


async def _request(
    client: Client, world: World, expect: Expect, method: str, url: str, headers: dict[str, str]
) -> httpx.Response:
    """Send the call: the expectation's body as JSON, or as exact bytes with the headers
    made from them (a signature)."""
    body = expect.body(world) if expect.body else None
    if expect.headers is None or body is None:
        return await client.request(method, url, headers=headers, json=body)
    content = _encoded(body)
    signed = {**headers, **expect.headers(content), "Content-Type": "application/json"}
    return await client.request(method, url, headers=signed, content=content)


async def _prepare(
    client: Client, setup: Setup, world: World, table: Table, call: tuple[str, str, str]
) -> None:
    """Make what the call needs and the world does not hold yet: the guests' objects, A's
    payments (:data:`PAYMENT_CASES`), A's paid order (:data:`FULFILMENT_CASES`), or A's
    order shipped and returned (:data:`RETURN_CASES`)."""
    method, template, caller = call
    if caller in GUESTS and caller not in world.headers:
        await _add_guests(client, world, world.ids["cart_variant_id"])
    if table is A_OBJECTS and (method, template) in PAYMENT_CASES and "payment_id" not in world.ids:
        await _payments(client, world)
    fulfils = method == "POST" and template in FULFILMENT_CASES
    if table is A_OBJECTS and fulfils and world.prepared_for != template:
        await _fulfilment(client, world, template)
    if table is A_OBJECTS and (method, template) in RETURN_CASES:
        await _returns(client, setup, world, RETURN_CASES[(method, template)])


async def _call(
    client: Client,
    setup: Setup,
    world: World,
    table: Table,
    call: tuple[str, str, str],
) -> str:
    """Call one route (``method``, ``template``) as one caller; a description of the
    mismatch, or "" when as expected. A refused call to a payment route must change no
    money (:data:`MONEY`)."""
    method, template, caller = call
    expect = table.expectations[(method, template)]
    await _prepare(client, setup, world, table, call)
    headers = world.headers[caller]
    if caller in KEYS:
        headers = await _key_headers(client, world, expect.key_scopes(caller))
    refused = not 200 <= expect.expected(caller) < 300 and _moves_money(template)
    before = await _money(setup) if refused else None
    response = await _request(client, world, expect, method, template.format(**world.ids), headers)
    status = response.status_code
    if refused and status == expect.expected(caller) and await _money(setup) != before:
        return f"{table.name}: {method} {template} as {caller}: refused ({status}) but money moved"
    if 200 <= status < 300 and template.startswith((f"{API}/auth", f"{API}/users")):
        assert response.headers.get("cache-control") == "no-store", template
    if caller == WRONG_KEY and expect.scope is not None and status == 403:
        code = response.json().get("code")
        if code != "insufficient_scope":
            return (
                f"{table.name}: {method} {template} as {caller}: 403 {code} "
                "(expected insufficient_scope)"
            )
    if status == expect.expected(caller) and caller in expect.allowed and expect.code:
        code = response.json().get("code")
        if code != expect.code:
            return f"{table.name}: {method} {template} as {caller}: {status} {code} ({expect.code})"
    if status == expect.expected(caller):
        return ""
    return (
        f"{table.name}: {method} {template} as {caller}: {status} "
        f"(expected {expect.expected(caller)}) " + response.text[:120]
    )


@asynccontextmanager
async def _matrix(app: Litestar, settings: Settings) -> AsyncIterator[tuple[Client, Setup]]:
    engine = create_engine(settings)
    try:
        async with AsyncTestClient(app=app) as client:
            ctx: AccountsContext = app.state.accounts
            yield client, Setup(create_sessionmaker(engine), ctx, await ctx.hasher.hash(PASSWORD))
    finally:
        await engine.dispose()


async def _walk(client: Client, setup: Setup, table: Table) -> None:
    """Call every route the table covers as each of its callers. A call that succeeds (or
    does not answer as the table says) may have changed its world: the next call gets a
    fresh one, so destructive calls do not interfere. A refusal answered as the table says
    changed nothing (the payment routes check it, :data:`MONEY`), and GET calls change
    nothing: the next call shares that world, as making one is what takes the time."""
    operations = _check_coverage(table, _operations((await client.get("/openapi.json")).json()))
    new_world = await _worlds(client, setup, table)
    wrong: list[str] = []
    world: World | None = None
    for method, template in operations:
        if world is not None and world.prepared_for not in (None, template):
            world = None
        for caller in table.callers_of(template):
            if (method, template, caller) in table.known_bugs:
                continue
            if world is None:
                world = await new_world()
            wrong.append(await _call(client, setup, world, table, (method, template, caller)))
            succeeds = 200 <= table.expectations[(method, template)].expected(caller) < 300
            if method != "GET" and (succeeds or wrong[-1]):
                world = None
    wrong = [w for w in wrong if w]
    unexpected_2xx = [w for w in wrong if ": 2" in w]
    assert not unexpected_2xx, "UNEXPECTED SUCCESS:\n" + "\n".join(unexpected_2xx)
    assert not wrong, "\n".join(wrong)


@pytest.mark.slow
async def test_every_route_answers_every_caller_as_the_table_says(
    matrix_app: Litestar, settings: Settings
) -> None:
    """``EXPECTATIONS``: every route on A's objects (and guests on the cart and order
    routes, holding tokens of objects that are not A's)."""
    async with _matrix(matrix_app, settings) as (client, setup):
        await _walk(client, setup, A_OBJECTS)


@pytest.mark.slow
async def test_every_cart_and_order_route_answers_every_caller_on_a_guests_objects(
    matrix_app: Litestar, settings: Settings
) -> None:
    """``GUEST_EXPECTATIONS``: every cart and order route on a guest's cart and order."""
    async with _matrix(matrix_app, settings) as (client, setup):
        await _walk(client, setup, GUEST_OBJECTS)


@pytest.mark.parametrize(
    ("table", "method", "template", "caller"),
    [
        pytest.param(
            table,
            *cell,
            id=" ".join((table.name, *cell)),
            marks=pytest.mark.xfail(strict=True, reason=why, raises=AssertionError),
        )
        for table in TABLES
        for cell, why in table.known_bugs.items()
    ]
    or [pytest.param(A_OBJECTS, "", "", "", marks=pytest.mark.skip(reason="no known access bug"))],
)
async def test_known_access_bugs(
    matrix_app: Litestar,
    settings: Settings,
    table: Table,
    method: str,
    template: str,
    caller: str,
) -> None:
    """The cells the server gets wrong today, each expected to answer as its table says."""
    async with _matrix(matrix_app, settings) as (client, setup):
        world = await (await _worlds(client, setup, table))()
        assert await _call(client, setup, world, table, (method, template, caller)) == ""


async def test_staff_without_mfa_lists_only_their_own_orders(
    matrix_app: Litestar, settings: Settings
) -> None:
    """GET /orders answers 200 to every person, so the table cannot see what it lists: a
    staff account without MFA is a plain person and must not see A's order."""
    async with _matrix(matrix_app, settings) as (client, setup):
        world = await _world(client, setup)
        response = await client.get(f"{API}/orders", headers=world.headers[NOMFA])
    assert response.status_code == 200, response.text
    listed = {order["id"] for order in response.json()["items"]}
    assert world.ids["order_id"] not in listed


async def test_only_staff_list_a_guests_order(matrix_app: Litestar, settings: Settings) -> None:
    """GET /orders answers 200 to every person, so the tables cannot see what it lists: a
    guest's order is listed to staff and to no customer (nor staff without MFA)."""
    async with _matrix(matrix_app, settings) as (client, setup):
        world = await (await _worlds(client, setup, GUEST_OBJECTS))()
        listed = {}
        for caller in (A, B, NOMFA, STAFF):
            response = await client.get(f"{API}/orders", headers=world.headers[caller])
            assert response.status_code == 200, response.text
            listed[caller] = world.ids["order_id"] in {o["id"] for o in response.json()["items"]}
    assert listed == {A: False, B: False, NOMFA: False, STAFF: True}


PAY, REFUND = f"{API}/orders/{{order_id}}/payments", f"{API}/orders/{{order_id}}/refunds"


def _constant(body: Json) -> Callable[[World], Json]:
    return lambda w: body


async def _over_the_balance(client: Client, world: World, table: Table) -> Table:
    """``table`` where paying asks for one cent more than the order's total and refunding
    one cent more than was captured: whoever may pay or refund gets ``409``
    (``amount_exceeds_balance``, ``refund_exceeds_captured``), the others their refusal."""
    order_url = f"{API}/orders/{world.ids['order_id']}"
    order = (await client.get(order_url, headers=world.headers[STAFF])).json()
    pay: Json = {"provider": "test", "payment_method": "pm_card_visa", "amount": order["total"] + 1}
    refund: Json = {"amount": order["paid_total"] - order["refunded_total"] + 1, "reason": "x"}
    over = {
        ("POST", PAY): ("amount_exceeds_balance", pay),
        ("POST", REFUND): ("refund_exceeds_captured", refund),
    }
    expectations = dict(table.expectations)
    for key, (code, body) in over.items():
        expectations[key] = replace(expectations[key], status=409, code=code, body=_constant(body))
    return replace(table, expectations=expectations)


async def test_no_caller_pays_or_refunds_more_than_there_is(
    matrix_app: Litestar, settings: Settings
) -> None:
    """Every caller of both tables asks to pay more than the order's balance and to refund
    more than was captured (A's order with one cent captured; the guest's with none): those
    the tables let pay or refund get 409, the others their refusal, and no money moves."""
    wrong: list[str] = []
    async with _matrix(matrix_app, settings) as (client, setup):
        for table in TABLES:
            world = await (await _worlds(client, setup, table))()
            if table is A_OBJECTS:
                await _payments(client, world)
            over = await _over_the_balance(client, world, table)
            for method, template in (("POST", PAY), ("POST", REFUND)):
                for caller in table.callers_of(template):
                    wrong.append(
                        await _call(client, setup, world, over, (method, template, caller))
                    )
    assert not [w for w in wrong if w], "\n".join(w for w in wrong if w)


async def test_foreign_ids_reach_no_money(matrix_app: Litestar, settings: Settings) -> None:
    """Ids that exist but belong elsewhere, or do not exist: staff refunding A's order from
    a payment of the guest's order, A paying the guest's order, staff capturing or
    cancelling a payment that does not exist: 404 each, and no money moves."""
    async with _matrix(matrix_app, settings) as (client, setup):
        guest = await (await _worlds(client, setup, GUEST_OBJECTS))()
        await _payments(client, replace(guest, headers={**guest.headers, A: guest.headers[GUEST]}))
        foreign_payment = guest.ids["payment_id"]
        world = await _world(client, setup)
        await _payments(client, world)
        staff, missing = world.headers[STAFF], uuid.uuid4()
        before = await _money(setup)
        calls = [
            (
                REFUND.format(**world.ids),
                {"amount": 1, "reason": "x", "payment_id": foreign_payment},
                staff,
            ),
            (
                PAY.format(**guest.ids),
                {"provider": "test", "payment_method": "pm_card_visa"},
                world.headers[A],
            ),
            (f"{API}/payments/{missing}/capture", {}, staff),
            (f"{API}/payments/{missing}/cancel", None, staff),
        ]
        statuses = [
            (await client.post(url, json=body, headers=headers)).status_code
            for url, body, headers in calls
        ]
        assert statuses == [404] * len(calls)
        assert await _money(setup) == before


async def test_a_rightly_signed_event_moves_the_money_a_forged_one_does_not(
    matrix_app: Litestar, settings: Settings
) -> None:
    """The webhook cells send A's 3-D Secure payment's capture signed with a wrong secret
    (400, nothing changes); the same event signed with the test provider's secret, by an
    anonymous caller, is applied: the payment is captured. The signature is what decides."""
    async with _matrix(matrix_app, settings) as (client, setup):
        world = await _world(client, setup)
        await _payments(client, world)
        url = f"{API}/payments/webhooks/test"
        body = _encoded(_forged_capture(world))
        before = await _money(setup)
        json_type = {"Content-Type": "application/json"}
        for headers in (json_type, {**json_type, **_forged_signature(body)}):
            forged = await client.post(url, content=body, headers=headers)
            assert forged.status_code == 400, forged.text
            assert forged.json()["code"] == "invalid_signature"
        assert await _money(setup) == before
        secret = test_secret(settings, matrix_app.state.accounts.vault.ring)
        good = {**json_type, "Test-Signature": sign(body, secret, int(time.time()))}
        applied = await client.post(url, content=body, headers=good)
        assert applied.status_code == 200, applied.text
        payments = await client.get(PAY.format(**world.ids), headers=world.headers[A])
    status = {p["id"]: p["status"] for p in payments.json()["items"]}
    assert status[world.ids["action_payment_id"]] == "captured"
