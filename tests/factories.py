"""Test helpers: load the DummyJSON catalog, read its source independently, create catalog
objects through the staff API, and walk keyset pages.

Imported by test modules as ``factories`` (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from anyio.from_thread import BlockingPortal
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from emporium.app import create_app
from emporium.core.config import Settings
from emporium.core.db.base import create_engine, create_sessionmaker
from emporium.core.db.migrate import upgrade
from emporium.importers import dummyjson
from emporium.importers.common import ImportReport, write_catalog

API = "/api/v1"
PRODUCTS_FILE = "dummyjson-products.json"
DATABASES = ["sqlite", "postgresql"]

Json = dict[str, Any]
Client = AsyncTestClient[Litestar]
T = TypeVar("T")


# --- the source data, read without any Emporium code ---------------------------------------


def source_products(datasets_dir: Path) -> list[Json]:
    """The DummyJSON products exactly as the file holds them."""
    data = json.loads((datasets_dir / PRODUCTS_FILE).read_text(encoding="utf-8"))
    products: list[Json] = data["products"] if isinstance(data, dict) else data
    return products


def by_sku(items: list[Json]) -> dict[str, Json]:
    """API products keyed by the SKU of their (single, imported) variant."""
    return {p["variants"][0]["sku"]: p for p in items}


def cents(price: float) -> int:
    """The price of the source file (decimal dollars) in cents."""
    return round(price * 100)


# --- loading the catalog --------------------------------------------------------------------


async def import_dummyjson(session: AsyncSession, datasets_dir: Path) -> ImportReport:
    """Import ``dummyjson-products.json`` the way the CLI does, in one transaction."""
    products, reviews, _ = dummyjson.parse(datasets_dir)
    report = ImportReport()
    async with session.begin():
        await write_catalog(session, products, reviews, currency="USD", report=report)
    return report


async def _import_into(url: str, datasets_dir: Path) -> None:
    engine = create_engine(Settings(database_url=url))
    try:
        async with create_sessionmaker(engine)() as session:
            await import_dummyjson(session, datasets_dir)
    finally:
        await engine.dispose()


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(statement))
    await engine.dispose()


def loaded_database(
    kind: str, name: str, tmp_path_factory: pytest.TempPathFactory, datasets_dir: Path
) -> Iterator[str]:
    """A private database of ``kind`` holding the imported DummyJSON catalog.

    Meant for module-scoped fixtures: read-only tests share one import per database kind.
    PostgreSQL gets its own database (dropped afterwards), so the per-test truncation of
    the shared test database never touches it.
    """
    if kind == "sqlite":
        path = tmp_path_factory.mktemp(name) / "catalog.db"
        url = f"sqlite+aiosqlite:///{path}"
        upgrade(Settings(database_url=url))
        asyncio.run(_import_into(url, datasets_dir))
        yield url
        shutil.rmtree(path.parent, ignore_errors=True)
        return
    base = os.environ.get("EMPORIUM_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("EMPORIUM_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped")
    db_name = f"emporium_test_{os.getpid()}_{name}"
    asyncio.run(_admin(base, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
    asyncio.run(_admin(base, f"CREATE DATABASE {db_name}"))
    url = make_url(base).set(database=db_name).render_as_string(hide_password=False)
    try:
        upgrade(Settings(database_url=url))
        asyncio.run(_import_into(url, datasets_dir))
        yield url
    finally:
        asyncio.run(_admin(base, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))


"""The staff key of the apps made by :func:`app_for`."""


def app_for(url: str, key_file: Path) -> Litestar:
    """An app on the database at ``url`` with the run's key file.

    Building an app costs more than a test's requests, so read-only modules build one per
    database and open a client on it per test.
    """
    settings = Settings(
        database_url=url,
        key_file=key_file,
        log_format="json",
        log_level="WARNING",
        redis_url=None,
        jobs_embedded=False,
    )
    return create_app(settings)


@asynccontextmanager
async def client_for(app: Litestar) -> AsyncIterator[Client]:
    """An in-process client of ``app`` (its lifespan runs for the client's life)."""
    async with AsyncTestClient(app=app) as client:
        yield client


# --- reading the API ------------------------------------------------------------------------


async def walk(
    client: Client, path: str, headers: dict[str, str] | None = None, **params: Any
) -> list[Json]:
    """Every item of a keyset-paginated listing, following ``next_cursor`` to the end.

    Fails the test when a page is not 200, when a page is larger than ``limit``, or when
    a full walk would loop forever.
    """
    items: list[Json] = []
    query = {k: v for k, v in params.items() if v is not None}
    limit = int(query.get("limit", 20))
    for _ in range(1000):
        response = await client.get(path, params=query, headers=headers or {})
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items
        assert page["items"], "a page with a next_cursor must not be empty"
        query["cursor"] = page["next_cursor"]
    raise AssertionError("pagination did not end")


async def all_products(
    client: Client, headers: dict[str, str] | None = None, **params: Any
) -> list[Json]:
    """Every product of ``GET /products`` with ``params``, in listing order."""
    params.setdefault("limit", 100)
    return await walk(client, f"{API}/products", headers, **params)


def assert_problem(response: Any, status: int, code: str | None = None) -> Json:
    """Check an RFC 9457 problem answer and return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: Json = response.json()
    assert {"type", "title", "status", "detail", "code"} <= body.keys(), body
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code, body
    return body


def asgi_transport(
    app: Litestar, portal: BlockingPortal | None = None, **options: Any
) -> httpx.AsyncBaseTransport:
    """An httpx transport that calls ``app`` in this process (``options`` as httpx takes them).

    Give ``portal`` (``AsyncTestClient.blocking_portal``) when the app's lifespan runs there:
    each request then runs on the app's own loop. An app's database connections belong to
    the loop that opened them; driving them from a second loop in another thread at the
    same time corrupts the driver's state (asyncpg crashed the interpreter that way).

    httpx types the app with its own ASGI alias, which Litestar's equally valid ``__call__``
    does not match; this is the one place that says so."""
    transport = httpx.ASGITransport(app=app, **options)  # type: ignore[arg-type]
    return transport if portal is None else _OnPortal(transport, portal)


class _OnPortal(httpx.AsyncBaseTransport):
    """Hands each request to ``inner`` on the portal's loop; the reply is read in full there
    (an ASGI transport buffers it), so the caller's loop only sees bytes."""

    def __init__(self, inner: httpx.ASGITransport, portal: BlockingPortal) -> None:
        self._inner = inner
        self._portal = portal

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        async def send() -> httpx.Response:
            response = await self._inner.handle_async_request(request)
            await response.aread()
            return response

        return self._portal.call(send)


def on_app_loop(client: Client, work: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``await work(*args)`` on the loop where ``client`` runs the app's lifespan, for a test
    that calls the app (or its resources) below the HTTP client."""
    with client.portal() as portal:
        return portal.call(work, *args)


# --- writing through the staff API ----------------------------------------------------------


async def create_category(
    client: Client, headers: dict[str, str], name: str | None = None, **fields: Any
) -> Json:
    """A new category (201 or 200), created by staff."""
    body = {"name": name or f"Category {uuid.uuid4().hex[:8]}", **fields}
    response = await client.post(f"{API}/categories", json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    category: Json = response.json()
    return category


def variant_body(sku: str | None = None, price: int = 1999, stock: int = 5, **fields: Any) -> Json:
    """A valid variant of ``ProductCreate``."""
    return {
        "sku": sku or f"SKU-{uuid.uuid4().hex[:10]}",
        "title": "Default",
        "price": price,
        "stock": stock,
        **fields,
    }


def product_body(category_id: str, **fields: Any) -> Json:
    """A valid ``ProductCreate`` body (published unless told otherwise); ``fields`` replace
    or add keys as given."""
    body: Json = {
        "title": f"Test product {uuid.uuid4().hex[:8]}",
        "category_id": category_id,
        "description": "<p>A product made by the test suite.</p>",
        "tags": ["test"],
        "published": True,
        "variants": [variant_body()],
    }
    body.update(fields)
    return body


async def create_product(
    client: Client, headers: dict[str, str], category_id: str, **fields: Any
) -> Json:
    """A new product created by staff."""
    response = await client.post(
        f"{API}/products", json=product_body(category_id, **fields), headers=headers
    )
    assert response.status_code in (200, 201), response.text
    product: Json = response.json()
    return product


async def at_once(
    client: Client, *calls: tuple[str, str, dict[str, str], Json | None]
) -> list[httpx.Response]:
    """Send ``(method, path, headers, json)`` requests truly concurrently (asyncio.gather).

    ``AsyncTestClient`` hands each request to the app through a blocking portal, so calls
    gathered on the test's own loop run one after the other. These run on the app's loop
    (its lifespan is already running), through an httpx ASGI transport, and interleave.
    """

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
            sends = (c.request(m, f"{API}{p}", headers=h, json=b) for m, p, h, b in calls)
            return list(await asyncio.gather(*sends))

    with client.portal() as portal:
        return portal.call(send_all)
