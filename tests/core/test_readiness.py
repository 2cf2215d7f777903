"""Readiness follows the services a node depends on: the database and, when set, Redis."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from emporium.app import create_app
from emporium.core.config import Settings

REDIS_URL = os.environ.get("EMPORIUM_TEST_REDIS_URL")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(not REDIS_URL, reason="EMPORIUM_TEST_REDIS_URL is not set")
async def test_ready_with_a_reachable_redis(settings: Settings) -> None:
    """A node configured with a live Redis reports ready."""
    app = create_app(settings.model_copy(update={"redis_url": REDIS_URL}))
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "redis": "up", "rate_limits": "shared"}


async def test_still_ready_when_redis_is_down(settings: Settings) -> None:
    """A Redis outage does not take the node out of rotation (it would take every node at
    once): /readyz stays 200 and says that limits count per process."""
    dead = f"redis://127.0.0.1:{_closed_port()}/0"
    app = create_app(settings.model_copy(update={"redis_url": dead}))
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "redis": "down", "rate_limits": "per_process"}


async def test_not_ready_when_the_database_is_unreachable(key_file: Path) -> None:
    """A node whose PostgreSQL is unreachable reports 503, while /healthz stays 200."""
    url = f"postgresql+asyncpg://nobody@127.0.0.1:{_closed_port()}/none"
    app = create_app(Settings(database_url=url, log_level="ERROR", key_file=key_file))
    async with AsyncTestClient(app=app) as client:
        ready = await client.get("/readyz")
        alive = await client.get("/healthz")
    assert ready.status_code == 503
    assert "database" in ready.json()["detail"]
    assert alive.status_code == 200
