"""A database outage answers ``503 service_unavailable`` with ``Retry-After``, logs one line
per kind of failure instead of a traceback per request, and ends by itself.

Found by failure drills: with PostgreSQL stopped every request answered 500 and logged a
traceback. PostgreSQL is cut off through a TCP proxy the test controls (connections dropped,
new ones refused); SQLite is locked by another writer, as a long admin transaction would.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import make_url
from structlog.testing import capture_logs

from conftest import NO_ROUTE_RATE_LIMITS
from emporium.app import create_app
from emporium.core.config import Settings
from emporium.core.db.outages import RETRY_AFTER_SECONDS, reset_outage_log
from tcpproxy import TcpProxy

pytestmark = pytest.mark.slow
LOGIN = {"email": "nobody@example.com", "password": "Quartz lantern drifts over 9 fjords"}


@pytest.fixture(autouse=True)
def _fresh_outage_log() -> None:
    reset_outage_log()


def _settings(database_url: str, key_file: Path, tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        database_url=database_url,
        key_file=key_file,
        log_level="WARNING",
        jobs_embedded=False,
        mail_dir=tmp_path / "mail",
        **{**NO_ROUTE_RATE_LIMITS, **extra},
    )


def _assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "service_unavailable"
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)


def _outage_lines(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    lines = [e for e in logs if e["event"] == "database_unavailable"]
    assert all("exc_info" not in e and "exception" not in e for e in lines)
    return lines


@pytest.fixture
def proxy(postgres_migrated: str) -> Iterator[tuple[TcpProxy, str]]:
    """A proxy in front of the test PostgreSQL; the URL of the test database through it."""
    url = make_url(postgres_migrated)
    tcp = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    tcp.start()
    yield tcp, url.set(host="127.0.0.1", port=tcp.port).render_as_string(hide_password=False)
    tcp.cut()


def test_postgres_outage_is_a_503_and_recovers(
    proxy: tuple[TcpProxy, str], key_file: Path, tmp_path: Path
) -> None:
    """PostgreSQL gone: reads (ORM, reader, raw asyncpg pool), sign-in and readiness answer
    503 with Retry-After, /healthz 200, one log line per kind; back: answers as before."""
    tcp, url = proxy
    app = create_app(_settings(url, key_file, tmp_path))
    unknown = f"/api/v1/products/{uuid.uuid4()}"
    with TestClient(app=app) as client:
        assert client.get("/api/v1/products").status_code == 200
        assert client.get(unknown).status_code == 404
        tcp.cut()
        with capture_logs() as logs:
            for _ in range(3):
                for path in ("/api/v1/products", unknown, "/api/v1/categories"):
                    _assert_unavailable(client.get(path))
                _assert_unavailable(client.post("/api/v1/auth/login", json=LOGIN))
            assert client.get("/readyz").status_code == 503
            assert client.get("/healthz").status_code == 200
        lines = _outage_lines(logs)
        kinds = {e["kind"] for e in lines}
        assert lines, logs
        assert len(lines) == len(kinds), lines  # one line per kind, not one per request
        assert kinds <= {"database_unreachable", "database_connection_lost"}
        tcp.restore()
        assert client.get("/api/v1/products").status_code == 200
        assert client.get(unknown).status_code == 404
        assert client.post("/api/v1/auth/login", json=LOGIN).status_code == 401
        assert client.get("/readyz").status_code == 200


def test_hung_postgres_is_a_quick_503(
    proxy: tuple[TcpProxy, str], key_file: Path, tmp_path: Path
) -> None:
    """PostgreSQL accepts connections but never answers (a paused or unreachable host):
    each request gives up after the connect timeout with a 503, not asyncpg's 60 s."""
    tcp, url = proxy
    app = create_app(_settings(url, key_file, tmp_path, database_connect_timeout_seconds=0.5))
    with TestClient(app=app) as client:
        assert client.get("/api/v1/products").status_code == 200
        tcp.hang()
        with capture_logs() as logs:
            for path in ("/api/v1/products", f"/api/v1/products/{uuid.uuid4()}"):
                started = time.monotonic()
                _assert_unavailable(client.get(path))
                assert time.monotonic() - started < 3
        assert {e["kind"] for e in _outage_lines(logs)} <= {
            "database_timeout",
            "database_connection_lost",
        }
        tcp.restore()
        assert client.get("/api/v1/products").status_code == 200


def test_locked_sqlite_is_a_503_and_recovers(
    sqlite_template: Path, key_file: Path, tmp_path: Path
) -> None:
    """Another process holds SQLite's write lock past the busy timeout: writes answer 503
    with Retry-After (reads go on, WAL), nothing is half-written; once the lock is released
    the same write succeeds."""
    database = tmp_path / "locked.db"
    shutil.copy(sqlite_template, database)
    settings = _settings(
        f"sqlite+aiosqlite:///{database}", key_file, tmp_path, sqlite_busy_timeout_seconds=0.2
    )
    app = create_app(settings)
    body = {"email": f"locked.{uuid.uuid4().hex[:8]}@example.com", "password": LOGIN["password"]}
    with TestClient(app=app) as client:
        assert client.get("/api/v1/products").status_code == 200  # a pooled reader
        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the write lock, as a long transaction holds it
        with capture_logs() as logs:
            for _ in range(3):
                _assert_unavailable(client.post("/api/v1/auth/register", json=body))
            assert client.get("/api/v1/products").status_code == 200
        assert [e["kind"] for e in _outage_lines(logs)] == ["database_locked"]
        holder.execute("ROLLBACK")
        holder.close()
        created = client.post("/api/v1/auth/register", json=body)
        assert created.status_code == 201, created.text
