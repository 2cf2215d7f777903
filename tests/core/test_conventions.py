"""The API's conventions as a client sees them: request ids, problem details, operations
endpoints, the OpenAPI document, ids and timestamps."""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Litestar, get
from litestar.routes import HTTPRoute

from emporium.core.http.middleware import new_request_id
from factories import (
    API,
    Client,
    Json,
    assert_problem,
    create_category,
    create_product,
    on_app_loop,
)

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|\+00:00)$")


async def _asgi_get(
    app: Litestar, path: str, headers: list[tuple[bytes, bytes]], client: tuple[str, int]
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """One raw ASGI GET request, for what an HTTP client library would not send as is (run it
    on the app's loop: ``factories.on_app_loop``)."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver.local"), *headers],
        "client": client,
        "server": ("testserver.local", 80),
        "state": {},
    }
    received: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        received.append(message)

    await app(scope, receive, send)  # type: ignore[arg-type]
    start = next(m for m in received if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in received if m["type"] == "http.response.body")
    return start["status"], list(start["headers"]), body


async def _every_kind_of_answer(client: Client, admin_headers: dict[str, str]) -> list[Any]:
    """Responses of each status a client commonly meets (none of them a 500)."""
    key = {**admin_headers, "Content-Type": "application/json"}
    return [
        await client.get(f"{API}/products"),  # 200
        await client.get("/healthz"),  # 200
        await client.get(f"{API}/products/no-such-product"),  # 404
        await client.get("/no/such/route"),  # 404
        await client.get(f"{API}/products", params={"limit": 0}),  # 422
        await client.post(f"{API}/categories", json={"name": "x"}),  # 401
        await client.post(f"{API}/categories", content=b"name=x", headers=admin_headers),  # 415
        await client.post(f"{API}/categories", content=b"{", headers=key),  # 400
        await client.put(f"{API}/products", json={}),  # 405
        await client.post(f"{API}/categories", json={"name": "x"}, headers=admin_headers),  # 201
    ]


async def test_every_response_carries_a_request_id(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """Whatever the status, the response has an X-Request-ID, and each one is different."""
    responses = await _every_kind_of_answer(client, admin_headers)
    statuses = {r.status_code for r in responses}
    assert statuses == {200, 201, 400, 401, 404, 405, 415, 422}
    ids = [r.headers.get("x-request-id") for r in responses]
    assert all(ids), [(r.status_code, r.headers) for r in responses]
    assert len(set(ids)) == len(ids)
    for response in responses:
        assert len(response.headers.get_list("x-request-id")) == 1


async def test_error_bodies_are_problem_details(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """Every error is application/problem+json with type, title, status, detail and a
    snake_case code; none leaks a stack trace."""
    for response in await _every_kind_of_answer(client, admin_headers):
        if response.status_code < 400:
            continue
        body = assert_problem(response, response.status_code)
        assert re.fullmatch(r"[a-z][a-z0-9_]*", body["code"]), body
        assert all(isinstance(body[k], str) for k in ("type", "title", "detail", "code"))
        assert "Traceback" not in response.text
        assert 'File "' not in response.text
    validation = await client.get(f"{API}/products", params={"limit": "many"})
    errors = assert_problem(validation, 422, "validation_error")["errors"]
    assert errors
    assert all(isinstance(e["loc"], list) and isinstance(e["msg"], str) for e in errors)


SANE_IDS = ["abc-123", "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a", "trace.id:42_x", "A" * 128]
INSANE_IDS = ["A" * 129, "has spaces", "semi;colon", "<script>", "tab\there", "ünïcode", "a/b"]
BROKEN_IDS = [b"abc\n", b"abc\r\nSet-Cookie: a=b", b"abc\x00", b"\n", b"abc\ndef", b"abc\r"]


async def test_sane_request_id_is_echoed(client: Client, admin_headers: dict[str, str]) -> None:
    """A client's own X-Request-ID comes back unchanged, on success and on error."""
    for request_id in SANE_IDS:
        for response in [
            await client.get(f"{API}/products", headers={"X-Request-ID": request_id}),
            await client.get(f"{API}/products/none", headers={"X-Request-ID": request_id}),
            await client.post(
                f"{API}/categories",
                content=b"x",
                headers={**admin_headers, "X-Request-ID": request_id, "Content-Type": "text/plain"},
            ),
        ]:
            assert response.headers["x-request-id"] == request_id, response.status_code


async def test_insane_request_id_is_replaced(client: Client) -> None:
    """An X-Request-ID that is too long or holds odd characters is not echoed (it would
    end up in logs and headers); the server makes its own."""
    for request_id in INSANE_IDS:
        response = await client.get(
            f"{API}/products", headers={b"X-Request-ID": request_id.encode("utf-8")}
        )
        echoed = response.headers["x-request-id"]
        assert echoed != request_id
        assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", echoed), echoed


async def test_request_id_with_line_breaks_is_replaced(client: Client, app: Litestar) -> None:
    """A request id carrying a line break or NUL (header injection into logs or responses)
    is never echoed, even when a proxy lets it through."""
    for raw in BROKEN_IDS:
        status, headers, _ = on_app_loop(
            client, _asgi_get, app, "/healthz", [(b"x-request-id", raw)], ("203.0.113.9", 5000)
        )
        assert status == 200
        echoed = [v for k, v in headers if k.lower() == b"x-request-id"]
        assert len(echoed) == 1
        assert re.fullmatch(rb"[A-Za-z0-9._:-]{1,128}", echoed[0]), (raw, echoed)


async def test_a_500_carries_the_request_id_and_no_trace(client: Client, app: Litestar) -> None:
    """If a handler fails, the client gets a 500 problem with the request id (to quote to
    support) and neither a stack trace nor the exception's text."""

    @get("/api/v1/test-only/broken", sync_to_thread=False)
    def broken() -> None:
        raise RuntimeError("secret-internal-detail at /srv/emporium/db.py")

    app.register(broken)
    response = await client.get(f"{API}/test-only/broken", headers={"X-Request-ID": "ticket-1"})
    body = assert_problem(response, 500)
    assert body["request_id"] == "ticket-1"
    assert response.headers["x-request-id"] == "ticket-1"
    assert "secret-internal-detail" not in response.text
    assert "Traceback" not in response.text
    anonymous = await client.get(f"{API}/test-only/broken")
    assert assert_problem(anonymous, 500)["request_id"] == anonymous.headers["x-request-id"]


async def test_health_and_readiness(client: Client) -> None:
    """/healthz says the process runs; /readyz says the database answers."""
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "redis": "not_configured",
        "rate_limits": "per_process",
    }


async def test_metrics_need_loopback_or_the_admin_key(
    client: Client, app: Litestar, admin_headers: dict[str, str]
) -> None:
    """/metrics is Prometheus text for loopback clients and for the admin key, and mentions
    the requests served; anyone else gets 403."""
    await client.get(f"{API}/products")
    await client.get(f"{API}/products/none")

    # The test client calls from host "testclient", which is not a loopback address.
    assert client.app is app
    anonymous = await client.get("/metrics")
    assert_problem(anonymous, 403)
    wrong = await client.get("/metrics", headers={"X-API-Key": "nope"})
    assert_problem(wrong, 403)

    response = await client.get("/metrics", headers=admin_headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE " in text
    assert "# HELP " in text
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert all(re.match(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+", s) for s in samples)
    request_lines = [s for s in samples if s.startswith("emporium_") and "/api/v1/products" in s]
    assert request_lines, "no request metric mentions the products route"
    assert any('status_code="404"' in s for s in request_lines)

    for host in ("127.0.0.1", "::1"):
        status, _, body = on_app_loop(client, _asgi_get, app, "/metrics", [], (host, 40000))
        assert status == 200, host
        assert b"# TYPE " in body
    status, _, _ = on_app_loop(client, _asgi_get, app, "/metrics", [], ("198.51.100.7", 40000))
    assert status == 403


async def test_openapi_describes_every_api_route(client: Client, app: Litestar) -> None:
    """/openapi.json is an OpenAPI 3.1 document listing every route served under /api/v1
    with its methods, and the query parameters of the product listing."""
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    paths: dict[str, Json] = document["paths"]

    served = {
        (route.path_format, method.lower())
        for route in app.routes
        if isinstance(route, HTTPRoute) and route.path.startswith(API)
        for method in route.methods
        if method not in ("HEAD", "OPTIONS")
    }
    assert len(served) >= 12
    described = {(path, method) for path, item in paths.items() for method in item}
    assert served <= described, served - described

    listing = paths[f"{API}/products"]["get"]
    params = {p["name"]: p for p in listing["parameters"] if p["in"] == "query"}
    expected = {
        "category",
        "q",
        "min_price",
        "max_price",
        "in_stock",
        "tag",
        "brand",
        "sort",
        "limit",
        "cursor",
    }
    assert expected <= params.keys()
    assert params["limit"]["schema"].get("maximum") == 100
    assert "#/components/schemas/ProductSort" in str(params["sort"]["schema"])  # named enum
    sort_values = document["components"]["schemas"]["ProductSort"]["enum"]
    for value in ("relevance", "-price", "created_at", "-rating", "title"):
        assert value in sort_values, sort_values


async def test_ids_are_uuids_and_times_are_utc(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """Objects are identified by random UUID strings (not counters) and timestamps are
    RFC 3339 in UTC, close to now."""
    before = datetime.now(UTC) - timedelta(seconds=5)
    category = await create_category(client, admin_headers)
    first = await create_product(client, admin_headers, category["id"])
    second = await create_product(client, admin_headers, category["id"])
    after = datetime.now(UTC) + timedelta(seconds=5)

    ids = [category["id"], first["id"], second["id"], first["variants"][0]["id"]]
    for value in ids:
        assert isinstance(value, str)
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 4
    assert len(set(ids)) == len(ids)
    for product in (first, second):
        assert product["category_id"] == category["id"]
        for field in ("created_at", "updated_at"):
            stamp = product[field]
            assert RFC3339_UTC.match(stamp), stamp
            instant = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            assert instant.utcoffset() == timedelta(0)
            assert before <= instant <= after
    listed = (await client.get(f"{API}/products")).json()["items"]
    assert all(RFC3339_UTC.match(p["created_at"]) for p in listed)


def test_request_ids_are_version_4_uuids_and_a_forked_worker_draws_its_own() -> None:
    """Server-made request ids look like ``uuid4().hex``; a worker forked from a process
    that already drew ids does not repeat the parent's next ones."""
    ids = [new_request_id() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(hex=i).version == 4 and uuid.UUID(hex=i).hex == i for i in ids)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe and exits
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read, "rb") as pipe:
        childs = pipe.read().decode()
    assert len(childs) == 32
    assert childs != new_request_id()
