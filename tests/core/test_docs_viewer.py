"""``/docs`` works offline: the page loads only same-origin assets, the server serves them,
and the Content-Security-Policy forbids every other origin and inline scripts."""

from __future__ import annotations

from html.parser import HTMLParser

from litestar import Litestar
from litestar.testing import AsyncTestClient


class _Links(HTMLParser):
    """Every URL the page makes the browser load (src, href), and inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.urls += [v for k, v in found.items() if k in ("src", "href") and v]
        self._in_script_without_src = tag == "script" and not found.get("src")

    def handle_data(self, data: str) -> None:
        if self._in_script_without_src and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_script_without_src = False


def _csp(header: str) -> dict[str, list[str]]:
    directives = (part.split() for part in header.split(";") if part.strip())
    return {d[0]: d[1:] for d in directives}


async def test_the_docs_page_loads_only_same_origin_assets_that_are_served(
    client: AsyncTestClient[Litestar],
) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    links = _Links()
    links.feed(page.text)
    assert links.inline_scripts == 0
    assert len(links.urls) == 4
    for url in links.urls:
        assert url.startswith("/"), url  # same origin: a path ...
        assert not url.startswith("//"), url  # ... not a scheme-relative URL
    media = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    for url in links.urls:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert asset.headers["content-type"].startswith(media[suffix]), url
        assert len(asset.content) > 100 or url.endswith("start.js"), url
    bundle = await client.get("/docs/assets/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in bundle.content
    assert b"isOAS31" in bundle.content  # Swagger UI 5: renders OpenAPI 3.1 (4.x shows nothing)
    start = (await client.get("/docs/assets/start.js")).text
    assert '"/openapi.json"' in start
    assert "validatorUrl: null" in start  # no call to swagger.io's validator
    assert (await client.get("/openapi.json")).status_code == 200


async def test_only_the_viewers_own_assets_are_served(client: AsyncTestClient[Litestar]) -> None:
    for name in ("swagger-editor-bundle.js", "..%2F__init__.py", "index.html", "LICENSE"):
        response = await client.get(f"/docs/assets/{name}")
        assert response.status_code == 404, name


async def test_the_docs_csp_forbids_every_other_origin_and_inline_scripts(
    client: AsyncTestClient[Litestar],
) -> None:
    for path in ("/docs", "/docs/assets/start.js"):
        policy = _csp((await client.get(path)).headers["content-security-policy"])
        assert policy["default-src"] == ["'self'"]
        assert policy["script-src"] == ["'self'"]  # no inline script, no eval, no CDN
        assert policy["frame-ancestors"] == ["'none'"]
        assert policy["object-src"] == ["'none'"]
        for directive, sources in policy.items():
            for source in sources:
                assert source in ("'self'", "'none'", "'unsafe-inline'", "data:"), (
                    directive,
                    source,
                )
        assert "'unsafe-inline'" not in policy.get("script-src", [])
