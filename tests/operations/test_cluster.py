"""The shipped nginx configuration in front of two real nodes and a worker, on PostgreSQL and
Redis: what ``docs/operations.md`` tells an operator to run (opt-in, slow).

Run with ``EMPORIUM_TEST_DEPLOY=1`` plus ``EMPORIUM_TEST_POSTGRES_URL`` and
``EMPORIUM_TEST_REDIS_URL`` (each run creates and drops its own database), with Debian's
nginx installed (``apt-get install nginx``). Not run by ``.ci/run``.

- a guest's checkout through nginx (TLS): the order, its payment, the confirmation e-mail
  the worker sends (the nodes run no jobs), HSTS (nginx's ``X-Forwarded-Proto`` believed);
- a node killed (SIGKILL) under load: clients retry with their ``Idempotency-Key`` and every
  order is placed exactly once, and the database never sees more connections than the
  README's formula allows;
- a rolling restart of both nodes as ``docs/operations.md`` describes it (mark down, reload
  nginx, stop, start, wait for ``/readyz``, mark up): not one request fails.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from emporium.core.config import Settings
from operations.clients import Failed, call, checkout, stocked_variants
from operations.support import NGINX, Nginx, Node, nginx_running
from servers import EMPORIUM, server_env, upgrade_database

Json = dict[str, Any]
POSTGRES_URL = os.environ.get("EMPORIUM_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("EMPORIUM_TEST_REDIS_URL")
OPTED_IN = os.environ.get("EMPORIUM_TEST_DEPLOY") == "1"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not OPTED_IN, reason="opt-in deployment suite: set EMPORIUM_TEST_DEPLOY=1"),
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)"),
    pytest.mark.skipif(
        not (POSTGRES_URL and REDIS_URL),
        reason="needs EMPORIUM_TEST_POSTGRES_URL and EMPORIUM_TEST_REDIS_URL",
    ),
]


def plain_dsn(url: str) -> str:
    """An asyncpg DSN from an SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def admin(statement: str) -> None:
    assert POSTGRES_URL is not None
    conn = await asyncpg.connect(plain_dsn(POSTGRES_URL))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def scalar(url: str, query: str, *args: object) -> int:
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        return int(await conn.fetchval(query, *args))
    finally:
        await conn.close()


@dataclass
class Cluster:
    nodes: list[Node]
    worker: Node
    proxy: Nginx
    database_url: str
    database: str
    folder: Path

    def client(self, *, keepalive: bool = True) -> httpx.AsyncClient:
        limits = httpx.Limits(max_keepalive_connections=None if keepalive else 0)
        return httpx.AsyncClient(
            base_url=f"{self.proxy.base}/api/v1",
            verify=ssl.create_default_context(cafile=str(self.proxy.cert)),
            timeout=30,
            limits=limits,
        )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A fresh database, two nodes (the first loads the demo shop), one worker, nginx."""
    assert POSTGRES_URL is not None
    assert REDIS_URL is not None
    folder = tmp_path_factory.mktemp("cluster")
    name = f"emporium_deploy_{os.getpid()}"
    asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    asyncio.run(admin(f"CREATE DATABASE {name}"))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    env = server_env(
        url,
        folder / "emporium-keys.json",
        route_limits=False,
        redis_url=REDIS_URL,
        jobs_embedded="false",
        trusted_proxies="127.0.0.1",
        mail_dir=str(folder / "mail"),
        rate_limit_general="",
    )
    with ExitStack() as stack:
        stack.callback(lambda: asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        subprocess.run([EMPORIUM, "keys", "init"], env=env, cwd=folder, check=True)
        upgrade_database(env, folder)
        nodes = [Node(env, folder), Node(env, folder)]
        for node in nodes:
            stack.callback(node.terminate)
        nodes[0].start("--demo")
        nodes[1].start()
        worker = Node(env, folder, args=("worker", "--name", "w1"))
        stack.callback(worker.terminate)
        worker.start()
        proxy_folder = folder / "nginx"
        proxy_folder.mkdir()
        proxy = stack.enter_context(nginx_running(proxy_folder, [n.port for n in nodes]))
        yield Cluster(nodes, worker, proxy, url, name, folder)


def test_a_guest_checks_out_through_nginx_and_the_worker_mails_them(cluster: Cluster) -> None:
    async def scenario() -> tuple[Json, Json, httpx.Response]:
        async with cluster.client() as http:
            (variant, *_) = await stocked_variants(http, 3)
            order, _ = await checkout(http, variant, "smoke@example.com", retry=False)
            guest = {"Order-Token": order["order_token"]}
            pay = {"provider": "test", "payment_method": "pm_card_visa"}
            payment = await call(
                http,
                "POST",
                f"/orders/{order['id']}/payments",
                201,
                retry=False,
                headers=guest,
                json=pay,
            )
            read = await http.get(f"/orders/{order['id']}", headers=guest)
            return order, payment, read

    order, payment, read = asyncio.run(scenario())
    assert payment["status"] == "captured"
    assert read.status_code == 200
    assert read.json()["status"] == "paid"
    # The node saw https through nginx's X-Forwarded-Proto, so it answers with HSTS.
    assert "max-age" in read.headers["strict-transport-security"]
    # Only the worker runs jobs: the confirmation e-mail is its work.
    deadline = time.monotonic() + 60
    subject = f"Order {order['number']} confirmed"
    while time.monotonic() < deadline:
        mails = [p.read_text(errors="replace") for p in (cluster.folder / "mail").glob("*.eml")]
        if any(subject in mail and "smoke@example.com" in mail for mail in mails):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"no e-mail {subject!r} from the worker")


class ConnectionWatch:
    """Samples how many connections the cluster's database has, in a thread."""

    def __init__(self, url: str, database: str) -> None:
        self.url, self.database = url, database
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1"
        while not self._stop.is_set():
            self.most = max(self.most, asyncio.run(scalar(self.url, query, self.database)))
            time.sleep(0.2)

    def __enter__(self) -> ConnectionWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def test_a_node_killed_under_load_loses_no_order_and_duplicates_none(cluster: Cluster) -> None:
    clients, each = 8, 5
    killed_at: list[int] = []

    async def scenario() -> list[tuple[Json, str]]:
        async with cluster.client() as http:
            variants = await stocked_variants(http, 10)
        assert variants, "the demo shop has no variant with 10 units"
        done: list[tuple[Json, str]] = []
        under_way = asyncio.Event()  # some orders placed, most to come

        async def shopper(n: int) -> None:
            async with cluster.client() as http:
                for i in range(each):
                    variant = variants[(n * each + i) % len(variants)]
                    done.append(await checkout(http, variant, f"k{n}.{i}@example.com", retry=True))
                    if len(done) >= clients:
                        under_way.set()

        async def killer() -> None:
            await under_way.wait()
            killed_at.append(len(done))
            await asyncio.to_thread(cluster.nodes[0].kill)

        await asyncio.gather(killer(), *(shopper(n) for n in range(clients)))
        return done

    before = asyncio.run(scalar(cluster.database_url, "SELECT count(*) FROM customer_order"))
    with ConnectionWatch(cluster.database_url, cluster.database) as watch:
        placed = asyncio.run(scenario())
    after = asyncio.run(scalar(cluster.database_url, "SELECT count(*) FROM customer_order"))
    cluster.nodes[0].start()  # back for the next test

    assert killed_at, "the node was not killed"
    assert killed_at[0] < clients * each, "the node died after the load"
    assert len(placed) == clients * each  # 0 failed orders
    assert len({order["id"] for order, _ in placed}) == clients * each
    assert after - before == clients * each  # no order placed twice
    # Pools: two nodes (4 x 3 + 1 each), one worker (2 x 3), this watch (1).
    settings = Settings()
    allowed = 2 * settings.connections_per_server + settings.connections_per_worker + 1
    assert 0 < watch.most <= allowed, watch.most


def test_a_rolling_restart_fails_no_request(cluster: Cluster) -> None:
    failures: list[str] = []
    served: list[int] = []
    stop = asyncio.Event()

    async def shopper(n: int) -> None:
        # New connections for every request, as many clients behave: a reload of nginx
        # closes idle kept-alive client connections, and that is not what is measured here.
        async with cluster.client(keepalive=False) as http:
            variants = await stocked_variants(http, 10)
            i = 0
            while not stop.is_set():
                try:
                    await call(http, "GET", "/products?limit=5", 200, retry=False)
                    await checkout(
                        http,
                        variants[(n + i) % len(variants)],
                        f"r{n}.{i}@example.com",
                        retry=False,
                    )
                    served.append(1)
                except Failed as exc:
                    failures.append(str(exc))
                i += 1

    def restart_each_node() -> None:
        for node in cluster.nodes:
            cluster.proxy.reload(down={node.port})  # out of rotation, in-flight ones finish
            node.terminate()  # what systemctl stop does: SIGTERM, graceful
            node.start()  # back when /readyz answers 200
            cluster.proxy.reload(down=set())

    async def scenario() -> None:
        shoppers = [asyncio.create_task(shopper(n)) for n in range(4)]
        await asyncio.sleep(1)
        await asyncio.to_thread(restart_each_node)
        await asyncio.sleep(1)
        stop.set()
        await asyncio.gather(*shoppers)

    asyncio.run(scenario())
    assert failures == []
    assert len(served) >= 10, len(served)
