"""OPTIONS answers name every method a path supports (what CORS preflights and clients read)."""

from __future__ import annotations

import re
import uuid

from litestar import Litestar
from litestar.routes import HTTPRoute

from factories import Client


def _concrete(path: str) -> str:
    path = re.sub(r"\{\w+:uuid\}", str(uuid.uuid4()), path)
    return re.sub(r"\{\w+:[^}]+\}", "some-slug", path)


async def test_allow_lists_every_method_of_each_path(client: Client, app: Litestar) -> None:
    """For every API route, OPTIONS answers 204 with exactly the methods of that route."""
    routes = [r for r in app.routes if isinstance(r, HTTPRoute) and r.path.startswith("/api/")]
    assert any({"GET", "POST"} <= r.methods for r in routes)
    for route in routes:
        response = await client.options(_concrete(route.path))
        assert response.status_code == 204, route.path
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert allowed == set(route.methods), route.path
