"""The admin single-page app at ``/admin/``, served whole from this server: no CDN, works offline.

The app (``admin/`` in the repository: TypeScript, react-admin, built by Vite) ships its built
files in ``admin_dist/`` beside this module, so ``pip install`` alone serves it. It talks to the
public API only. Every answer here carries its own Content-Security-Policy, which
``core.http.hardening.SecurityHeaders`` then leaves alone:

- ``index.html`` (answered for ``/admin/`` and every client route under it) is never cached
  (``no-store``) and carries a fresh nonce per answer: in the CSP's ``style-src`` and in the
  page's ``<meta name="csp-nonce">``, from which the app gives it to emotion (MUI's CSS-in-JS),
  so the ``<style>`` elements it injects are allowed while no other inline style or script is.
- hashed assets under ``/admin/assets/`` are cached for a year (``immutable``): a new build
  has new names; any other name answers 404.

CSP Level 3 (nonces), OWASP ASVS 14.4.3.
"""

from __future__ import annotations

import secrets
from functools import cache
from pathlib import Path

from litestar import Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

DIST = Path(__file__).with_name("admin_dist")
_NONCE_MARK = "__CSP_NONCE__"
_MEDIA = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
_IMMUTABLE = "public, max-age=31536000, immutable"


def admin_csp(nonce: str | None) -> str:
    """The admin's Content-Security-Policy: this origin only, no inline script; inline
    ``<style>`` elements only with ``nonce`` (none when ``nonce`` is ``None``: assets, errors)."""
    style = f"'self' 'nonce-{nonce}'" if nonce else "'self'"
    return (
        "default-src 'self'; script-src 'self'; "
        f"style-src {style}; img-src 'self' data:; font-src 'self'; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


@cache
def _index_template() -> str | None:
    path = DIST / "index.html"
    return path.read_text(encoding="utf-8") if path.is_file() else None


@cache
def _assets() -> dict[str, Path]:
    folder = DIST / "assets"
    if not folder.is_dir():
        return {}
    return {p.name: p for p in folder.iterdir() if p.is_file() and p.suffix in _MEDIA}


def _index() -> Response[str]:
    template = _index_template()
    if template is None:
        raise NotFoundException("The admin is not built in this installation.")
    nonce = secrets.token_urlsafe(18)
    return Response(
        template.replace(_NONCE_MARK, nonce),
        media_type="text/html; charset=utf-8",
        headers={"cache-control": "no-store", "content-security-policy": admin_csp(nonce)},
    )


@get("/", include_in_schema=False, sync_to_thread=False)
def admin_root() -> Response[str]:
    """The app's page at ``/admin`` and ``/admin/`` (its routes follow the ``#``)."""
    return _index()


@get("/{path:path}", include_in_schema=False, sync_to_thread=False)
def admin_page(path: FromPath[str]) -> Response[str] | Response[bytes]:
    """A hashed asset (``/admin/assets/<name>``: cached a year, 404 for an unknown name), or
    the app's page for any other path under ``/admin/`` (its client-side routes)."""
    if path.startswith("/assets/"):
        found = _assets().get(path.removeprefix("/assets/"))
        if found is None:
            raise NotFoundException("No such asset.")
        return Response(
            found.read_bytes(),
            media_type=_MEDIA[found.suffix],
            headers={"cache-control": _IMMUTABLE, "content-security-policy": admin_csp(None)},
        )
    return _index()


admin_ui_router = Router(path="/admin", route_handlers=[admin_root, admin_page])
"""Mounted by ``create_app`` beside the API."""
