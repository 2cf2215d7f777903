"""Fixtures of the kernel tests: apps with chosen settings, called from chosen addresses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from emporium.app import create_app
from emporium.core.config import Settings

Peer = Callable[[str], httpx.AsyncClient]
Serve = Callable[..., AbstractAsyncContextManager[Peer]]


@pytest.fixture
def serve(settings: Settings) -> Serve:
    """``async with serve(**setting_overrides) as peer``: an app (lifespan running) behind
    a reverse proxy at 127.0.0.1; ``peer("198.51.100.7")`` is an HTTP client whose
    connections come from that address."""

    @asynccontextmanager
    async def run(**overrides: Any) -> AsyncIterator[Peer]:
        update = {"trusted_proxies": ["127.0.0.1"], **overrides}
        app = create_app(Settings(**{**settings.model_dump(), **update}))
        clients: list[httpx.AsyncClient] = []
        async with AsyncTestClient(app=app):  # runs the lifespan

            def make(address: str) -> httpx.AsyncClient:
                transport = httpx.ASGITransport(app=app, client=(address, 40000))
                clients.append(httpx.AsyncClient(transport=transport, base_url="http://shop"))
                return clients[-1]

            try:
                yield make
            finally:
                for client in clients:
                    await client.aclose()

    return run
