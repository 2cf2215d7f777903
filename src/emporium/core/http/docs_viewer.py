"""The API viewer at ``/docs``, served whole from this server: no CDN, works offline.

Swagger UI's compiled assets come from the ``swagger-ui-py`` package (pinned in the lock
files), which ships them as package data; this module serves the few it needs under
``/docs/assets/`` and a page whose only scripts are those assets plus a small start-up
script of ours, so the ``/docs`` Content-Security-Policy (``core.http.hardening``) can forbid
every other origin and every inline script.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.params import FromPath

ASSETS = "/docs/assets"
_MEDIA = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
_START = b"""window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/start.js"></script>
</body>
</html>
"""


@cache
def static_dir() -> Path:
    """Where ``swagger-ui-py`` keeps Swagger UI's compiled files (found without importing
    the package, which would load its web-framework adapters)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: reinstall from requirements.lock")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


@cache
def _asset(name: str) -> tuple[bytes, str]:
    if name == "start.js":
        return _START, _MEDIA[".js"]
    if name not in _FILES:
        raise NotFoundException("No such asset.")
    path = static_dir() / name
    return path.read_bytes(), _MEDIA[path.suffix]


@get("/assets/{name:str}", include_in_schema=False, sync_to_thread=False)  # under /docs
def docs_asset(name: FromPath[str]) -> Response[bytes]:
    """One asset of the viewer (``swagger-ui-bundle.js``, ``swagger-ui.css``, the icon, and
    ``start.js``); 404 for any other name. Cached for a day by browsers."""
    body, media_type = _asset(name)
    return Response(body, media_type=media_type, headers={"cache-control": "public, max-age=86400"})


class OfflineSwaggerPlugin(OpenAPIRenderPlugin):
    """Litestar render plugin: the ``/docs`` page of Swagger UI from same-origin assets."""

    def __init__(self, *, path: str = "/", **kwargs: Any) -> None:
        super().__init__(path=path, **kwargs)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The HTML page; it loads the document from ``/openapi.json``."""
        title = str(openapi_schema.get("info", {}).get("title", "API"))
        return _PAGE.format(title=title.replace("<", "&lt;"), assets=ASSETS).encode()

    def receive_router(self, router: Router) -> None:
        """Serve the assets beside the page."""
        router.register(docs_asset)
