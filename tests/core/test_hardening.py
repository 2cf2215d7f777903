"""Baseline hygiene, attacked: framing, sniffing, TRACE, tokens in URLs, oversized bodies and
lists, cross-origin calls from a site that is not on the list."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from core.conftest import Peer, Serve
from emporium.core.config import Settings
from factories import API, Client, assert_problem, create_category, product_body, variant_body

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def assert_hardened(response: object) -> None:
    """The response carries every baseline security header and no server banner."""
    headers = response.headers  # type: ignore[attr-defined]
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (name, dict(headers))
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "server" not in headers
    assert "x-powered-by" not in headers


async def test_every_kind_of_answer_carries_the_security_headers(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """Success, 401, 404 (unknown path), 405, 415 and 422, the docs and the OpenAPI document:
    all of them, API answers with a CSP that forbids everything."""
    answers = [
        await client.get(f"{API}/products"),
        await client.get(f"{API}/users/me"),
        await client.get(f"{API}/no-such-thing"),
        await client.put(f"{API}/products"),
        await client.post(f"{API}/categories", content=b"x", headers={"content-type": "text/x"}),
        await client.post(f"{API}/categories", json={"nme": "typo"}, headers=admin_headers),
        await client.get("/healthz"),
        await client.get("/openapi.json"),
    ]
    assert [r.status_code for r in answers] == [200, 401, 404, 405, 415, 422, 200, 200]
    for response in answers:
        assert_hardened(response)
        assert response.headers["content-security-policy"] == API_CSP
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert_hardened(docs)  # the viewer may load its scripts, but may not be framed


async def test_hsts_only_over_tls_or_from_a_trusted_tls_proxy(serve: Serve) -> None:
    """HSTS over https; a plain-http client cannot switch it on by claiming https."""
    async with serve() as peer:
        proxy = peer("127.0.0.1")
        response = await proxy.get("/healthz", headers={"X-Forwarded-Proto": "https"})
        assert response.headers["strict-transport-security"].startswith("max-age=")
        assert "strict-transport-security" not in (await proxy.get("/healthz")).headers
        stranger = peer("198.51.100.2")
        response = await stranger.get("/healthz", headers={"X-Forwarded-Proto": "https"})
        assert "strict-transport-security" not in response.headers
        stranger.base_url = "https://shop"
        response = await stranger.get("/healthz")
        assert "max-age=63072000" in response.headers["strict-transport-security"]


@pytest.mark.parametrize("path", [f"{API}/products", f"{API}/users/me", "/healthz", "/nowhere"])
async def test_trace_is_refused_everywhere(client: Client, path: str) -> None:
    """TRACE (cross-site tracing: echoing the request, credentials included) is a 405."""
    response = await client.request("TRACE", path, headers={"Authorization": "Bearer secret"})
    assert_problem(response, 405, "method_not_allowed")
    assert "secret" not in response.text


@pytest.mark.parametrize("name", ["access_token", "api_key", "X-API-Key", "refresh_token"])
async def test_credentials_in_the_query_string_are_refused(
    client: Client, admin_headers: dict[str, str], name: str
) -> None:
    """A credential in a URL is refused outright (URLs end up in logs and Referer)."""
    token = admin_headers["Authorization"].removeprefix("Bearer ")
    response = await client.get(f"{API}/users", params={name: token})
    assert_problem(response, 400, "credentials_in_url")
    assert (await client.get(f"{API}/products", params={"q": "token"})).status_code == 200


@pytest.fixture
async def small_bodies(serve: Serve) -> AsyncIterator[Peer]:
    """An app that accepts request bodies of up to 2 KiB."""
    async with serve(max_body_bytes=2048) as peer:
        yield peer


async def test_an_oversized_body_is_refused_before_it_is_read(small_bodies: Peer) -> None:
    """413 by Content-Length, and also when the body streams without announcing its size."""
    client = small_bodies("198.51.100.4")
    big = b'{"email": "' + b"a" * 4096 + b'@example.com", "password": "x"}'
    response = await client.post(
        f"{API}/auth/register", content=big, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "payload_too_large")

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 512):
            yield big[start : start + 512]

    response = await client.post(
        f"{API}/auth/register", content=stream(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload_too_large")


async def test_lists_and_maps_in_bodies_are_bounded(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """Too many tags, images, variants or options are a 422 naming the field."""
    category = await create_category(client, admin_headers)
    too_many = {
        "tags": [f"t{n}" for n in range(51)],
        "images": [{"url": f"https://img.example.com/{n}.jpg"} for n in range(51)],
        "variants": [variant_body() for _ in range(101)],
    }
    for field, value in too_many.items():
        body = product_body(category["id"], **{field: value})
        response = await client.post(f"{API}/products", json=body, headers=admin_headers)
        problem = assert_problem(response, 422)
        assert field in str(problem["errors"]), problem
    options = {f"option{n}": "x" for n in range(21)}
    body = product_body(category["id"], variants=[variant_body(options=options)])
    response = await client.post(f"{API}/products", json=body, headers=admin_headers)
    assert "options" in str(assert_problem(response, 422)["errors"])


async def test_cors_answers_only_the_allowed_origins(serve: Serve) -> None:
    """An allowed storefront may call from the browser; any other site gets no CORS grant."""
    shop = "https://shop.example.com"
    async with serve(cors_allow_origins=[shop]) as peer:
        client = peer("198.51.100.11")
        allowed = await client.get(f"{API}/products", headers={"Origin": shop})
        assert allowed.headers["access-control-allow-origin"] == shop
        assert "access-control-allow-credentials" not in allowed.headers
        assert "ratelimit-remaining" in allowed.headers["access-control-expose-headers"].lower()
        evil = await client.get(f"{API}/products", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in evil.headers
        preflight = await client.options(
            f"{API}/users/me",
            headers={
                "Origin": "https://evil.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert "access-control-allow-origin" not in preflight.headers
    async with serve() as peer:
        response = await peer("198.51.100.11").get(f"{API}/products", headers={"Origin": shop})
        assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    ("origins", "credentials"), [("*", True), ("null", False), ("https://a.example,*", True)]
)
def test_dangerous_cors_settings_are_refused(
    origins: str, credentials: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wildcard with credentials, or the ``null`` origin, stops the server at start-up."""
    monkeypatch.setenv("EMPORIUM_CORS_ALLOW_ORIGINS", origins)  # the comma form
    with pytest.raises(ValueError, match=r"(?i)origin"):
        Settings(cors_allow_credentials=credentials)


async def test_the_openapi_document_declares_the_refusals(client: Client) -> None:
    """Schema-driven clients learn that any API call may be throttled (429) and any body
    refused for its size (413)."""
    document = (await client.get("/openapi.json")).json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not path.startswith(API) or method not in {"get", "post", "patch", "delete"}:
                continue
            assert "429" in operation["responses"], (method, path)
            assert ("413" in operation["responses"]) == ("requestBody" in operation), path
