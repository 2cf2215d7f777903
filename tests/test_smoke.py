"""The app answers on both databases (a first check that the fixtures work)."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient


async def test_empty_catalog_lists_nothing(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/api/v1/products")
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}
