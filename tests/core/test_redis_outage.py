"""A Redis that dies or hangs costs little: short timeouts, a circuit breaker, and rate limits
that fall back to per-process counting (and say so) until Redis is back.

Found by failure drills: a paused Redis added 5 s (redis-py's default timeouts) to every
request, and a dead one failed ``/readyz`` on every node at once. These tests run a
``redis-server`` of their own, then kill it and pause it (SIGSTOP).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis
from litestar.testing import TestClient
from structlog.testing import capture_logs

from conftest import NO_ROUTE_RATE_LIMITS
from emporium.app import create_app
from emporium.core.config import Settings
from factories import asgi_transport

Peer = Callable[[str], httpx.AsyncClient]
Drill = Callable[[Peer], Awaitable[None]]

REDIS_SERVER = shutil.which("redis-server")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(REDIS_SERVER is None, reason="no redis-server binary on this machine"),
]
LIMIT = 4
SETTINGS: dict[str, Any] = {
    "rate_limit_general": f"{LIMIT}/minute",
    "redis_timeout_seconds": 0.25,
    "redis_retry_seconds": 0.5,
}


class RedisServer:
    """A ``redis-server`` process on a free port, started, killed, paused at will."""

    def __init__(self, directory: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=0.5).ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc = None

    def stored_keys(self) -> list[bytes]:
        keys = redis.Redis.from_url(self.url, socket_timeout=1).keys("*")
        return cast("list[bytes]", keys)  # bytes: the client does not decode responses


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.proc is not None:
        server.signal(signal.SIGCONT)
        server.kill()


@pytest.fixture
def run_app(
    tmp_path: Path, sqlite_template: Path, key_file: Path, redis_server: RedisServer
) -> Callable[[Drill], None]:
    """``run_app(drill)``: an app counting in ``redis_server`` (lifespan running), and
    ``await drill(peer)`` on the app's own event loop, where ``peer("198.51.100.7")`` is an
    HTTP client whose connections come from that address (Redis connections belong to the
    app's loop, so the requests must run there)."""
    database = tmp_path / "drill.db"
    shutil.copy(sqlite_template, database)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{database}",
        key_file=key_file,
        log_level="WARNING",
        redis_url=redis_server.url,
        jobs_embedded=False,
        mail_dir=tmp_path / "mail",
        **{**NO_ROUTE_RATE_LIMITS, **SETTINGS},
    )
    app = create_app(settings)

    async def with_peers(drill: Drill) -> None:
        clients: list[httpx.AsyncClient] = []

        def peer(address: str) -> httpx.AsyncClient:
            transport = asgi_transport(app, client=(address, 40000))
            clients.append(httpx.AsyncClient(transport=transport, base_url="http://shop"))
            return clients[-1]

        try:
            await drill(peer)
        finally:
            for client in clients:
                await client.aclose()

    def run(drill: Drill) -> None:
        with TestClient(app=app) as client, client.portal() as portal:
            portal.call(with_peers, drill)

    return run


async def _timed_statuses(client: httpx.AsyncClient, count: int) -> list[int]:
    """``count`` requests, each answered within a second; their statuses."""
    statuses = []
    for _ in range(count):
        started = time.monotonic()
        response = await client.get("/api/v1/categories")
        elapsed = time.monotonic() - started
        assert elapsed < 1.0, f"a request took {elapsed:.2f} s"
        statuses.append(response.status_code)
    return statuses


async def _ready(peer: Peer) -> dict[str, str]:
    started = time.monotonic()
    response = await peer("127.0.0.1").get("/readyz")
    assert time.monotonic() - started < 1.0
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


async def _redis_gauge(peer: Peer) -> str:
    metrics = (await peer("127.0.0.1").get("/metrics")).text
    line = next(
        x for x in metrics.splitlines() if x.startswith('emporium_service_up{service="redis"}')
    )
    return line.split()[-1]


async def _limits_still_apply(peer: Peer, address: str) -> None:
    """Over the limit is refused, and every answer is quick."""
    statuses = await _timed_statuses(peer(address), LIMIT + 2)
    assert statuses == [200] * LIMIT + [429, 429], statuses


async def _redis_used_again(peer: Peer, server: RedisServer, address: str) -> None:
    """After the cool-down a probe finds Redis: counters are written there again."""
    await asyncio.sleep(0.6)  # the cool-down
    assert await _timed_statuses(peer(address), 1) == [200]
    assert any(address.encode() in key for key in server.stored_keys())
    assert await _ready(peer) == {"status": "ready", "redis": "up", "rate_limits": "shared"}
    assert await _redis_gauge(peer) == "1.0"


def test_a_paused_redis_costs_one_short_timeout(
    run_app: Callable[[Drill], None], redis_server: RedisServer
) -> None:
    """Redis paused (SIGSTOP): requests stay under a second, limits count per process, the
    outage is logged once and shown by /readyz (still 200) and the gauge; after SIGCONT
    Redis counts again."""

    async def drill(peer: Peer) -> None:
        assert await _timed_statuses(peer("198.51.100.1"), 1) == [200]
        assert any(b"198.51.100.1" in key for key in redis_server.stored_keys())
        redis_server.signal(signal.SIGSTOP)
        with capture_logs() as logs:
            await _limits_still_apply(peer, "198.51.100.2")
            assert await _ready(peer) == {
                "status": "ready",
                "redis": "down",
                "rate_limits": "per_process",
            }
            assert await _redis_gauge(peer) == "0.0"
        outages = [e for e in logs if e["event"] == "service_unavailable"]
        assert len(outages) == 1, logs
        redis_server.signal(signal.SIGCONT)
        with capture_logs() as logs:
            await _redis_used_again(peer, redis_server, "198.51.100.3")
        assert [e["event"] for e in logs if e["event"].startswith("service_")] == [
            "service_restored"
        ]

    run_app(drill)


def test_a_dead_redis_keeps_the_node_in_rotation(
    run_app: Callable[[Drill], None], redis_server: RedisServer
) -> None:
    """Redis killed: requests stay quick, limits count per process, /readyz stays 200; once
    a new redis-server answers on the same port, counters go back to Redis."""

    async def drill(peer: Peer) -> None:
        assert await _timed_statuses(peer("198.51.100.4"), 1) == [200]
        redis_server.kill()
        await _limits_still_apply(peer, "198.51.100.5")
        assert (await _ready(peer))["redis"] == "down"
        redis_server.start()
        await _redis_used_again(peer, redis_server, "198.51.100.6")

    run_app(drill)
