"""``/admin/`` is served by Emporium itself: the page and its hashed assets from the package,
a strict Content-Security-Policy (nonce for the framework's style elements, no inline script,
no other origin, no framing), the page never cached, the assets cached for good."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from emporium.core.http.admin_ui import DIST

pytestmark = pytest.mark.skipif(
    not (DIST / "index.html").is_file(),
    reason="admin not built (cd admin && npm ci && npm run build)",
)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.nonce: str | None = None
        self._inline = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.urls += [v for k, v in found.items() if k in ("src", "href") and v]
        self._inline = tag == "script" and not found.get("src")
        if tag == "meta" and found.get("name") == "csp-nonce":
            self.nonce = found.get("content")
        assert "style" not in found, f"inline style attribute on <{tag}>"

    def handle_data(self, data: str) -> None:
        if self._inline and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        self._inline = False


def _csp(header: str) -> dict[str, list[str]]:
    directives = (part.split() for part in header.split(";") if part.strip())
    return {d[0]: d[1:] for d in directives}


async def _page(
    client: AsyncTestClient[Litestar], path: str = "/admin/"
) -> tuple[_Page, dict[str, list[str]]]:
    response = await client.get(path)
    assert response.status_code == 200, path
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert len(response.headers.get_list("content-security-policy")) == 1
    page = _Page()
    page.feed(response.text)
    return page, _csp(response.headers["content-security-policy"])


async def test_the_page_has_a_strict_policy_with_a_fresh_nonce(
    client: AsyncTestClient[Litestar],
) -> None:
    first, policy = await _page(client)
    assert first.inline_scripts == 0
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no inline script, no eval, no CDN
    assert policy["style-src"] == ["'self'", f"'nonce-{first.nonce}'"]  # no 'unsafe-inline'
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"]
    for values in policy.values():
        for value in values:
            assert re.fullmatch(r"'[a-z-]+'|'nonce-[\w-]+'|data:", value), value
    second, _ = await _page(client)
    assert first.nonce is not None
    assert second.nonce is not None
    assert first.nonce != second.nonce
    assert len(first.nonce) >= 22  # 128 bits or more


async def test_client_routes_answer_the_page(client: AsyncTestClient[Litestar]) -> None:
    for path in ("/admin", "/admin/orders", "/admin/products/42/show"):
        page, _ = await _page(client, path)
        assert page.urls


async def test_hashed_assets_are_served_and_cached_for_good(
    client: AsyncTestClient[Litestar],
) -> None:
    page, _ = await _page(client)
    assets = [u for u in page.urls if u.startswith("/admin/assets/")]
    assert assets
    for url in page.urls:
        assert url.startswith("/admin/assets/"), url  # same origin, nothing external
    for url in assets:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith("text/javascript")
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert _csp(asset.headers["content-security-policy"])["style-src"] == ["'self'"]


async def test_unknown_assets_are_404_and_files_outside_are_not_reachable(
    client: AsyncTestClient[Litestar],
) -> None:
    for name in (
        "nope.js",
        "..%2Findex.html",
        "..%2F..%2Fadmin_ui.py",
        "%2E%2E/%2E%2E/admin_ui.py",
    ):
        response = await client.get(f"/admin/assets/{name}")
        assert response.status_code == 404, name
        assert b"import" not in response.content


async def test_the_api_keeps_its_own_policy(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/api/v1/categories")
    assert (
        response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    )
