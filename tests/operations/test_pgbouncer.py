"""A node behind PgBouncer in transaction pooling (opt-in, slow: ``EMPORIUM_TEST_DEPLOY=1``).

Debian's PgBouncer (1.18) runs on a free loopback port in front of the test PostgreSQL server,
``pool_mode = transaction``, 8 server connections for the node's 13 client ones. The node
sets ``EMPORIUM_DATABASE_PGBOUNCER=true`` and sends its change feed's ``LISTEN`` straight to
PostgreSQL (``EMPORIUM_DATABASE_LISTEN_URL``); the migration also runs straight against
PostgreSQL, as docs/operations.md says. Concurrent guests' checkouts and catalog reads
through it all succeed, and a catalog change made by another process reaches the node's
cache through the direct ``LISTEN``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from operations.clients import call, checkout, stocked_variants
from operations.support import Node
from operations.test_cluster import OPTED_IN, POSTGRES_URL, admin
from servers import EMPORIUM, free_port, server_env, upgrade_database

PGBOUNCER = shutil.which("pgbouncer") or (
    "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None
)

GUESTS = 5
"""Concurrent guests, below the write pool (2 x EMPORIUM_DATABASE_POOL_SIZE = 6): a keyed
checkout holds two write connections at once (the request's session, and the
Idempotency-Key claim's), so more concurrent checkouts than that in one process can wait for
each other until the pool timeout (30 s), with or without PgBouncer: seen here with 12."""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not OPTED_IN, reason="opt-in deployment suite: set EMPORIUM_TEST_DEPLOY=1"),
    pytest.mark.skipif(
        PGBOUNCER is None, reason="pgbouncer is not installed (apt-get install pgbouncer)"
    ),
    pytest.mark.skipif(not POSTGRES_URL, reason="needs EMPORIUM_TEST_POSTGRES_URL"),
]


@pytest.fixture
def pgbouncer() -> Iterator[int]:
    """PgBouncer in transaction pooling in front of the test server; its port."""
    assert POSTGRES_URL is not None
    assert PGBOUNCER is not None
    server = make_url(POSTGRES_URL)
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="emporium-pgbouncer-"))
    folder.chmod(0o755)  # readable by the unprivileged user PgBouncer runs as
    (folder / "users.txt").write_text(f'"{server.username}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={server.host} port={server.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 8\nmax_client_conn = 200\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    for path in folder.iterdir():
        path.chmod(0o644)
    user = ["-u", "nobody"] if os.geteuid() == 0 else []  # it refuses to run as root
    proc = subprocess.Popen(
        [PGBOUNCER, *user, str(folder / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert proc.poll() is None, "pgbouncer exited"
            try:
                asyncio.run(_port_open(port))
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


async def _port_open(port: int) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize("through", ["postgresql", "pgbouncer"])
def test_a_node_behind_pgbouncer_in_transaction_pooling(
    pgbouncer: int, tmp_path: Path, through: str
) -> None:
    assert POSTGRES_URL is not None
    name = f"emporium_pgbouncer_{os.getpid()}"
    asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    asyncio.run(admin(f"CREATE DATABASE {name}"))
    direct = make_url(POSTGRES_URL).set(database=name)
    pooled = direct.set(host="127.0.0.1", port=pgbouncer) if through == "pgbouncer" else direct
    try:
        keys = tmp_path / "emporium-keys.json"
        migrate_env = server_env(direct.render_as_string(hide_password=False), keys)
        subprocess.run([EMPORIUM, "keys", "init"], env=migrate_env, cwd=tmp_path, check=True)
        upgrade_database(migrate_env, tmp_path)
        env = server_env(
            pooled.render_as_string(hide_password=False),
            keys,
            route_limits=False,
            rate_limit_general="",
            database_pgbouncer=str(through == "pgbouncer").lower(),
            database_listen_url=direct.render_as_string(hide_password=False),
            mail_dir=str(tmp_path / "mail"),
        )
        node = Node(env, tmp_path)
        try:
            node.start("--demo")
            orders = asyncio.run(_shop(node.base, GUESTS))
        finally:
            node.terminate()
        assert len({order["id"] for order in orders}) == GUESTS
        log = (tmp_path / f"node-{node.port}.log").read_text()
        assert "prepared statement" not in log, log[-3000:]
    finally:
        asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def _shop(base: str, guests: int) -> list[dict[str, object]]:
    """``guests`` concurrent checkouts, each with catalog reads beside it."""
    async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30) as http:
        variants = await stocked_variants(http, 10)

        async def guest(n: int) -> dict[str, object]:
            for query in ("?q=shirt", "?sort=price", f"?limit={n + 1}"):
                await call(http, "GET", f"/products{query}", 200, retry=False)
            order, _ = await checkout(
                http, variants[n % len(variants)], f"b{n}@example.com", retry=False
            )
            return order

        return list(await asyncio.gather(*(guest(n) for n in range(guests))))
