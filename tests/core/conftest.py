"""Fixtures of the kernel tests: apps with chosen settings, called from chosen addresses."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from conftest import NO_ROUTE_RATE_LIMITS
from emporium.app import create_app
from emporium.core.config import Settings
from factories import asgi_transport

Peer = Callable[[str], httpx.AsyncClient]
Serve = Callable[..., AbstractAsyncContextManager[Peer]]


@pytest.fixture
def serve(tmp_path: Path, sqlite_template: Path, key_file: Path) -> Serve:
    """``async with serve(**setting_overrides) as peer``: an app (lifespan running) behind
    a reverse proxy at 127.0.0.1; ``peer("198.51.100.7")`` is an HTTP client whose
    connections come from that address. On SQLite only: what these tests check (addresses,
    limits, headers) happens before any database work."""
    database = tmp_path / "serve.db"
    shutil.copy(sqlite_template, database)
    base = Settings(
        database_url=f"sqlite+aiosqlite:///{database}",
        key_file=key_file,
        log_level="WARNING",
        redis_url=None,
        jobs_embedded=False,
        mail_dir=tmp_path / "mail",
        **NO_ROUTE_RATE_LIMITS,
    )

    @asynccontextmanager
    async def run(**overrides: Any) -> AsyncIterator[Peer]:
        update = {"trusted_proxies": ["127.0.0.1"], **overrides}
        app = create_app(Settings(**{**base.model_dump(), **update}))
        clients: list[httpx.AsyncClient] = []
        async with AsyncTestClient(app=app) as running:  # runs the lifespan

            def make(address: str) -> httpx.AsyncClient:
                transport = asgi_transport(app, running.blocking_portal, client=(address, 40000))
                clients.append(httpx.AsyncClient(transport=transport, base_url="http://shop"))
                return clients[-1]

            try:
                yield make
            finally:
                for client in clients:
                    await client.aclose()

    return run
