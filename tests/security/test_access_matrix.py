"""The access-control matrix (OWASP API1:2023 BOLA, API5:2023 BFLA): every route of the
server's own OpenAPI document, called by every kind of caller on objects that belong to
customer A, answers exactly what the table below says. No caller gets a 2xx it should not.

A route in the OpenAPI document without an entry in ``EXPECTATIONS`` fails the test with
the entry to add: whoever adds a route decides, here, who may call it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts.support import OTHER_PASSWORD, PASSWORD, new_email
from emporium.accounts import service as account_service
from emporium.accounts import sessions as account_sessions
from emporium.accounts.protect import AccountsContext
from emporium.app import create_app
from emporium.core.config import Settings
from emporium.core.db import create_engine, create_sessionmaker
from factories import API, Client, create_category, product_body, variant_body

ANON, A, B, STAFF, ADMIN, KEY = (
    "anonymous", "customer_a", "customer_b", "staff", "admin", "api_key",
)  # fmt: skip
PEOPLE = (A, B, STAFF, ADMIN)
Json = dict[str, Any]


@dataclass
class World:
    """Objects owned by customer A (and the catalog), and every caller's headers."""

    headers: dict[str, dict[str, str]]
    ids: dict[str, str]
    a_email: str
    a_spare_refresh: str


@dataclass(frozen=True)
class Expect:
    """Who may succeed (with ``status``); everyone else gets ``denied[caller]``, or 401
    when anonymous and 403 otherwise."""

    allowed: frozenset[str]
    status: int
    body: Callable[[World], Json] | None = None
    denied: dict[str, int] = field(default_factory=dict)

    def expected(self, caller: str) -> int:
        """The status ``caller`` must get."""
        if caller in self.allowed:
            return self.status
        return self.denied.get(caller, 401 if caller == ANON else 403)


def everyone(status: int, body: Callable[[World], Json] | None = None) -> Expect:
    """A public route."""
    return Expect(frozenset({ANON, *PEOPLE, KEY}), status, body)


def signed_in(status: int, body: Callable[[World], Json] | None = None) -> Expect:
    """A route on the caller's own account: every signed-in person."""
    return Expect(frozenset(PEOPLE), status, body)


def owner(status: int, body: Callable[[World], Json] | None = None) -> Expect:
    """A route on one of A's own objects: anyone else's attempt looks like a missing object."""
    return Expect(frozenset({A}), status, body, {B: 404, STAFF: 404, ADMIN: 404})


def staff(status: int, body: Callable[[World], Json] | None = None) -> Expect:
    """A catalog write: staff and admins."""
    return Expect(frozenset({STAFF, ADMIN}), status, body)


def admin(status: int, body: Callable[[World], Json] | None = None) -> Expect:
    """User management: admins only."""
    return Expect(frozenset({ADMIN}), status, body)


ADDRESS = {"name": "Ann", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345",
           "country": "US"}  # fmt: skip

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
    ("POST", f"{API}/auth/logout"): signed_in(204),
    ("GET", f"{API}/auth/sessions"): signed_in(200),
    ("DELETE", f"{API}/auth/sessions/{{session_id}}"): owner(204),
    ("POST", f"{API}/auth/password"): signed_in(
        204, lambda w: {"current_password": PASSWORD, "new_password": OTHER_PASSWORD}
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
    ("GET", f"{API}/categories"): everyone(200),
    ("POST", f"{API}/categories"): staff(201, lambda w: {"name": f"C {uuid.uuid4().hex}"}),
    ("PATCH", f"{API}/categories/{{category_id}}"): staff(200, lambda w: {"description": "d"}),
    ("DELETE", f"{API}/categories/{{category_id}}"): staff(204),
    ("GET", f"{API}/products"): everyone(200),
    ("POST", f"{API}/products"): staff(201, lambda w: product_body(w.ids["category_id"])),
    ("GET", f"{API}/products/{{id_or_slug}}"): everyone(200),
    ("PATCH", f"{API}/products/{{id_or_slug}}"): staff(200, lambda w: {"title": "Renamed"}),
    ("DELETE", f"{API}/products/{{id_or_slug}}"): staff(204),
    ("POST", f"{API}/products/{{id_or_slug}}/variants"): staff(201, lambda w: variant_body()),
    ("PATCH", f"{API}/variants/{{variant_id}}"): staff(200, lambda w: {"title": "Large"}),
    ("DELETE", f"{API}/variants/{{variant_id}}"): staff(204),
    ("GET", f"{API}/products/{{id_or_slug}}/reviews"): everyone(200),
}


def api_key_headers(world: World) -> dict[str, str] | None:
    """HOOK: the headers of an admin-made API key (``X-API-Key``), once API keys exist on
    this branch; None leaves the ``api_key`` caller out. When it returns headers, give each
    entry above that a key may call ``KEY`` in its allowed set (``everyone`` already does)."""
    return None


@dataclass
class Setup:
    """What builds worlds: the test's own sessions (the app's pools live on the test
    client's event loop), the accounts context and one password hash for everyone."""

    sessionmaker: async_sessionmaker[AsyncSession]
    ctx: AccountsContext
    password_hash: str


async def _accounts(setup: Setup) -> tuple[dict[str, dict[str, str]], Json]:
    """A, B, staff and admin, signed in; A has a spare session (to be revoked or refreshed)."""
    ctx, password_hash = setup.ctx, setup.password_hash
    roles = {A: ["customer"], B: ["customer"], STAFF: ["staff"], ADMIN: ["admin", "staff"]}
    headers: dict[str, dict[str, str]] = {ANON: {}}
    extra: Json = {}
    async with setup.sessionmaker() as db, db.begin():
        for caller, caller_roles in roles.items():
            email = new_email(caller)
            user = await account_service.create_account(
                db, ctx, email=email, roles=caller_roles, password_hash=password_hash
            )
            pair = await account_sessions.open_session(db, ctx, user, device="matrix", ip=None)
            headers[caller] = {"Authorization": f"Bearer {pair.access_token}"}
            if caller == A:
                spare = await account_sessions.open_session(db, ctx, user, device="x", ip=None)
                extra = {"a_email": email, "user_id": str(user.id), "spare": spare}
    return headers, extra


async def _world(client: Client, setup: Setup) -> World:
    headers, extra = await _accounts(setup)
    staff_headers = headers[STAFF]
    address = await client.post(f"{API}/users/me/addresses", json=ADDRESS, headers=headers[A])
    category = await create_category(client, staff_headers)
    empty_category = await create_category(client, staff_headers)
    body = product_body(category["id"], variants=[variant_body(), variant_body()])
    product = await client.post(f"{API}/products", json=body, headers=staff_headers)
    sessions = await client.get(f"{API}/auth/sessions", headers=headers[A])
    spare_id = next(s["id"] for s in sessions.json() if not s["current"])
    ids = {
        "address_id": address.json()["id"],
        "category_id": empty_category["id"],
        "id_or_slug": product.json()["id"],
        "variant_id": product.json()["variants"][1]["id"],
        "user_id": extra["user_id"],
        "session_id": spare_id,
    }
    world = World(headers, ids, extra["a_email"], extra["spare"].refresh_token)
    key = api_key_headers(world)
    if key is not None:
        headers[KEY] = key
    return world


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
    """The app, without the general per-client limit (the matrix makes ~1,000 calls)."""
    return create_app(settings.model_copy(update={"rate_limit_general": ""}))


def _check_coverage(operations: list[tuple[str, str]]) -> None:
    """Every documented route has an expectation, and every expectation a route."""
    missing = [op for op in operations if op not in EXPECTATIONS]
    entries = "; ".join(f'("{m}", "{p}"): everyone|signed_in|owner|staff|admin(...)'
                        for m, p in missing)  # fmt: skip
    assert not missing, f"routes without an access expectation; add to EXPECTATIONS: {entries}"
    stale = sorted(set(EXPECTATIONS) - set(operations))
    assert not stale, f"EXPECTATIONS entries for routes that no longer exist: {stale}"


async def _call(client: Client, world: World, method: str, template: str, caller: str) -> str:
    """Call one route as one caller; a description of the mismatch, or "" when as expected."""
    expect = EXPECTATIONS[(method, template)]
    response = await client.request(
        method,
        template.format(**world.ids),
        headers=world.headers[caller],
        json=expect.body(world) if expect.body else None,
    )
    status = response.status_code
    if 200 <= status < 300 and template.startswith((f"{API}/auth", f"{API}/users")):
        assert response.headers.get("cache-control") == "no-store", template
    if status == expect.expected(caller):
        return ""
    return (
        f"{method} {template} as {caller}: {status} (expected {expect.expected(caller)}) "
        + response.text[:120]
    )


async def test_every_route_answers_every_caller_as_the_table_says(
    matrix_app: Litestar, settings: Settings
) -> None:
    """Each (route, caller) runs in a fresh world, so destructive calls do not interfere."""
    engine = create_engine(settings)
    try:
        async with AsyncTestClient(app=matrix_app) as client:
            operations = _operations((await client.get("/openapi.json")).json())
            _check_coverage(operations)
            ctx: AccountsContext = matrix_app.state.accounts
            setup = Setup(create_sessionmaker(engine), ctx, await ctx.hasher.hash(PASSWORD))
            wrong: list[str] = []
            for method, template in operations:
                for caller in (ANON, *PEOPLE, KEY):
                    world = await _world(client, setup)
                    if caller in world.headers:
                        wrong.append(await _call(client, world, method, template, caller))
    finally:
        await engine.dispose()
    wrong = [w for w in wrong if w]
    unexpected_2xx = [w for w in wrong if ": 2" in w]
    assert not unexpected_2xx, "UNEXPECTED SUCCESS:\n" + "\n".join(unexpected_2xx)
    assert not wrong, "\n".join(wrong)
