"""``/metrics`` says what an operator needs to see: the job queue (queued, running, dead,
the oldest due job, the outbox lag), job failures, orders, payments and e-mails, the
database pools, and whether rate limits still count in Redis; a hung database leaves the
queue gauges out instead of hanging the scrape."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from litestar.testing import AsyncTestClient, TestClient
from sqlalchemy import make_url, update
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import NO_ROUTE_RATE_LIMITS
from emporium.app import create_app
from emporium.core.clock import utcnow
from emporium.core.config import Settings
from emporium.jobs.models import DEAD, RUNNING, Job, OutboxEvent
from emporium.jobs.outbox import enqueue
from factories import API, Client, create_category, create_product
from metricsupport import Samples, samples, total, value
from orders.support import order, stocked_variants
from payments.support import guest_order, pay
from runjobs import drain
from tcpproxy import TcpProxy

DELIVER, FANOUT = "webhooks.deliver", "webhooks.fanout"


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


async def scrape(client: Client, headers: dict[str, str]) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(response.text)


async def test_queued_running_and_dead_jobs_show_on_metrics(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    now = utcnow()
    async with session.begin():
        for _ in range(3):
            await enqueue(session, DELIVER, {}, run_at=now - timedelta(seconds=90))
        await enqueue(session, DELIVER, {}, run_at=now + timedelta(hours=1))  # not due
        await enqueue(session, FANOUT, {}, dedupe_key="running")
        await enqueue(session, FANOUT, {}, dedupe_key="dead")
        await session.execute(update(Job).where(Job.dedupe_key == "running").values(status=RUNNING))
        await session.execute(update(Job).where(Job.dedupe_key == "dead").values(status=DEAD))
        session.add(
            OutboxEvent(type="order.created", data={}, occurred_at=now - timedelta(seconds=120))
        )
    found = await scrape(client, admin_headers)
    assert value(found, "emporium_probe_success", probe="jobs") == 1
    assert value(found, "emporium_jobs", status="queued", kind=DELIVER) == 4
    assert value(found, "emporium_jobs", status="running", kind=FANOUT) == 1
    assert value(found, "emporium_jobs", status="dead", kind=FANOUT) == 1
    assert value(found, "emporium_jobs", status="dead", kind=DELIVER) == 0
    kinds = client.app.state.job_runner.registry.handlers
    assert all(("emporium_jobs", _labels(status="dead", kind=k)) in found for k in kinds)
    assert 90 <= value(found, "emporium_jobs_oldest_due_age_seconds") < 90 + 60
    assert 120 <= value(found, "emporium_outbox_lag_seconds") < 120 + 60


async def test_an_empty_queue_reads_zero(
    client: Client, admin_headers: dict[str, str], settings: Settings
) -> None:
    found = await scrape(client, admin_headers)
    assert total(found, "emporium_jobs") == 0
    assert sum(1 for (n, _) in found if n == "emporium_jobs") >= 3  # kinds listed at 0
    assert value(found, "emporium_jobs_oldest_due_age_seconds") == 0
    assert value(found, "emporium_outbox_lag_seconds") == 0
    assert value(found, "emporium_db_pool_size", engine="primary") > 0
    assert value(found, "emporium_db_pool_size", engine="read") > 0
    raw = ("emporium_db_pool_size", _labels(engine="raw"))
    assert (found.get(raw, 0) > 0) is (not settings.is_sqlite)  # asyncpg: PostgreSQL only


async def test_a_job_that_fails_for_good_counts_as_dead(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    kind = f"test.unhandled_{uuid.uuid4().hex[:8]}"  # no handler: every attempt fails
    async with session.begin():
        await enqueue(session, kind, {}, max_attempts=1)
    before = await scrape(client, admin_headers)
    assert value(before, "emporium_jobs", status="queued", kind=kind) == 1
    assert await drain(client) == 1
    after = await scrape(client, admin_headers)
    assert value(after, "emporium_jobs", status="dead", kind=kind) == 1
    assert value(after, "emporium_jobs", status="queued", kind=kind) == 0
    assert value(after, "emporium_job_failures_total", kind=kind, outcome="dead") == 1
    assert value(after, "emporium_job_duration_seconds_count", kind=kind) == 1


async def test_orders_payments_and_emails_are_counted(
    client: Client, admin_headers: dict[str, str], sign_in: Any
) -> None:
    """A placed order counts once; a refused one (short stock) not at all; a card payment
    counts under its provider and result; the confirmation e-mail counts once sent."""
    before = await scrape(client, admin_headers)
    placed, guest = await guest_order(client, admin_headers)
    (scarce,) = await stocked_variants(client, admin_headers, 1)
    refused = await order(client, await sign_in(), [(scarce["id"], 5)])
    assert refused.status_code == 409
    assert (await pay(client, placed["id"], guest, "pm_card_chargeDeclined")).status_code == 201
    assert (await pay(client, placed["id"], guest)).status_code == 201
    middle = await scrape(client, admin_headers)
    assert await drain(client) > 0  # the confirmation e-mail, among others
    after = await scrape(client, admin_headers)

    def grew(found: Samples, name: str, **labels: str) -> float:
        return total(found, name, **labels) - total(before, name, **labels)

    assert grew(middle, "emporium_orders_placed_total") == 1
    assert grew(middle, "emporium_payments_total", provider="test", result="failed") == 1
    assert grew(middle, "emporium_payments_total", provider="test", result="captured") == 1
    assert grew(middle, "emporium_emails_sent_total") == 0
    assert grew(after, "emporium_emails_sent_total") >= 1
    assert grew(after, "emporium_email_failures_total") == 0
    assert grew(after, "emporium_job_duration_seconds_count") >= 1


def _settings(database_url: str, key_file: Path, tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        database_url=database_url,
        key_file=key_file,
        log_level="WARNING",
        jobs_embedded=False,
        mail_dir=tmp_path / "mail",
        metrics_public=True,
        **{**NO_ROUTE_RATE_LIMITS, **extra},
    )


@pytest.fixture
def redis_proxy() -> Iterator[tuple[TcpProxy, str]]:
    """A proxy in front of the tests' Redis; the Redis URL through it."""
    url = os.environ.get("EMPORIUM_TEST_REDIS_URL")
    if not url:
        pytest.skip("EMPORIUM_TEST_REDIS_URL is not set: no Redis to cut")
    parts = urlsplit(url)
    tcp = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 6379))
    tcp.start()
    yield tcp, f"redis://127.0.0.1:{tcp.port}{parts.path}"
    tcp.cut()


def _scrape_sync(client: TestClient[Any]) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    return samples(response.text)


def test_redis_down_shows_rate_limits_degraded(
    redis_proxy: tuple[TcpProxy, str], sqlite_template: Path, key_file: Path, tmp_path: Path
) -> None:
    """Cut Redis: the next scrape shows rate limits counted per process (degraded) and the
    Redis service down; restore it: after the cool-down they are shared again."""
    tcp, redis_url = redis_proxy
    database = tmp_path / "shop.db"
    shutil.copy(sqlite_template, database)
    settings = _settings(
        f"sqlite+aiosqlite:///{database}",
        key_file,
        tmp_path,
        redis_url=redis_url,
        redis_timeout_seconds=0.25,
        redis_retry_seconds=0.5,
    )
    with TestClient(app=create_app(settings)) as client:
        up = _scrape_sync(client)
        assert value(up, "emporium_redis_configured") == 1
        assert value(up, "emporium_rate_limits_shared") == 1
        assert value(up, "emporium_service_up", service="redis") == 1
        tcp.cut()
        down = _scrape_sync(client)
        assert value(down, "emporium_rate_limits_shared") == 0
        assert value(down, "emporium_service_up", service="redis") == 0
        assert client.get("/readyz").json()["rate_limits"] == "per_process"
        tcp.start()
        time.sleep(0.6)  # the breaker's cool-down
        again = _scrape_sync(client)
        assert value(again, "emporium_rate_limits_shared") == 1
        assert value(again, "emporium_service_up", service="redis") == 1


@pytest.fixture
def postgres_proxy(postgres_migrated: str) -> Iterator[tuple[TcpProxy, str]]:
    """A proxy in front of the test PostgreSQL; the URL of the test database through it."""
    url = make_url(postgres_migrated)
    tcp = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    tcp.start()
    yield tcp, url.set(host="127.0.0.1", port=tcp.port).render_as_string(hide_password=False)
    tcp.cut()


def test_a_hung_database_leaves_the_queue_gauges_out_but_the_scrape_answers(
    postgres_proxy: tuple[TcpProxy, str], key_file: Path, tmp_path: Path
) -> None:
    """PostgreSQL accepts connections and never answers: /metrics still answers (after the
    probe's time limit, not the driver's minute) with ``emporium_probe_success{probe="jobs"}
    0``, no queue gauges, and the process metrics."""
    tcp, url = postgres_proxy
    settings = _settings(url, key_file, tmp_path, metrics_probe_timeout_seconds=0.5)
    with TestClient(app=create_app(settings)) as client:
        assert value(_scrape_sync(client), "emporium_probe_success", probe="jobs") == 1
        tcp.hang()
        started = time.monotonic()
        hung = _scrape_sync(client)
        assert time.monotonic() - started < 10  # bounded: 0.5 s limit, generous margin
        assert value(hung, "emporium_probe_success", probe="jobs") == 0
        assert not [n for (n, _) in hung if n == "emporium_jobs"]
        assert ("emporium_db_pool_size", _labels(engine="primary")) in hung
        tcp.restore()
        assert value(_scrape_sync(client), "emporium_probe_success", probe="jobs") == 1


async def test_product_cache_hits_misses_and_evictions_are_counted(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    """A cache of one product, read A, A, B, A: a miss then a hit; B is a miss and pushes
    A out; A is a miss again and pushes B out."""
    if not settings.is_sqlite:
        pytest.skip(
            "on PostgreSQL the change feed's own notices of the new products (and its "
            "forget-all at connect) arrive while the test reads, so exact counts would race; "
            "the counting code is the same"
        )
    small = settings.model_copy(update={"cache_max_entries": 1})
    async with AsyncTestClient(app=create_app(small)) as client:
        category = await create_category(client, admin_headers)
        a = await create_product(client, admin_headers, category["id"])
        b = await create_product(client, admin_headers, category["id"])
        before = await scrape(client, admin_headers)
        for product in (a, a, b, a):
            assert (await client.get(f"{API}/products/{product['id']}")).status_code == 200
        after = await scrape(client, admin_headers)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    lookups, evictions = "emporium_cache_lookups_total", "emporium_cache_evictions_total"
    assert grew(lookups, cache="product", result="miss") == 3
    assert grew(lookups, cache="product", result="hit") == 1
    assert grew(evictions, cache="product", reason="capacity") == 2


async def test_requests_are_counted_and_timed_per_route_template(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """``emporium_requests_*`` per method, route template, status and app name (the labels
    dashboards group by); probes and ``/metrics`` itself are not counted."""
    category = await create_category(client, admin_headers)
    product = await create_product(client, admin_headers, category["id"])
    before = await scrape(client, admin_headers)
    for key in (product["id"], product["id"], "no-such-product"):
        await client.get(f"{API}/products/{key}")
    assert (await client.get("/healthz")).status_code == 200
    after = await scrape(client, admin_headers)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = {"method": "GET", "path": "/api/v1/products/{id_or_slug}", "app_name": "emporium"}
    assert grew("emporium_requests_total", status_code="200", **route) == 2
    assert grew("emporium_requests_total", status_code="404", **route) == 1
    assert grew("emporium_request_duration_seconds_count", status_code="200", **route) == 2
    assert grew("emporium_requests_error_total", status_code="404", **route) == 0
    assert value(after, "emporium_requests_in_progress", status_code="200", **route) == 0
    probes = [labels for name, labels in after if name == "emporium_requests_total"]
    assert not [labels for labels in probes if ("path", "/healthz") in labels]
