"""An ``emporium worker`` with ``EMPORIUM_WORKER_METRICS_PORT`` answers ``/metrics`` on
loopback: the shared queue (what it has not run yet, what is dead), its own job runs and
its database pool; other paths are 404."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import update

from emporium.core.clock import utcnow
from emporium.core.config import Settings
from emporium.core.db.base import create_engine, create_sessionmaker
from emporium.jobs.models import DEAD, Job
from emporium.jobs.outbox import enqueue
from metricsupport import Samples, samples, value
from servers import EMPORIUM, free_port, server_env

LATER = "webhooks.deliver"


async def _arrange(settings: Settings, failing: str) -> None:
    """Two jobs due in an hour, one dead, and one with no handler that the worker runs."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            for _ in range(2):
                await enqueue(session, LATER, {}, run_at=utcnow() + timedelta(hours=1))
            await enqueue(session, LATER, {}, dedupe_key="dead")
            await session.execute(update(Job).where(Job.dedupe_key == "dead").values(status=DEAD))
            await enqueue(session, failing, {}, max_attempts=1)
    finally:
        await engine.dispose()


def _scrape_until(url: str, proc: subprocess.Popen[bytes], done: str) -> Samples:
    """Scrape ``url`` until the sample named ``done`` shows up (60 s at most)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the worker exited"
        try:
            response = httpx.get(url, timeout=5)
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        assert response.status_code == 200, response.text
        found = samples(response.text)
        if any(name == done for name, _ in found):
            return found
        time.sleep(0.2)
    raise AssertionError(f"{url} never showed {done}")


def test_a_worker_serves_its_metrics_on_loopback(settings: Settings, tmp_path: Path) -> None:
    failing = f"test.unhandled_{uuid.uuid4().hex[:8]}"
    asyncio.run(_arrange(settings, failing))
    port = free_port()
    env = server_env(
        settings.database_url,
        settings.key_file,
        worker_metrics_port=str(port),
        jobs_poll_seconds="0.1",
        mail_dir=str(tmp_path / "mail"),
    )
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([EMPORIUM, "worker"], env=env, stdout=out, stderr=out)
        try:
            base = f"http://127.0.0.1:{port}"
            found = _scrape_until(f"{base}/metrics", proc, "emporium_job_failures_total")
            assert httpx.get(f"{base}/", timeout=5).status_code == 404
            assert httpx.post(f"{base}/metrics", timeout=5).status_code == 405
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    assert value(found, "emporium_probe_success", probe="jobs") == 1
    assert value(found, "emporium_jobs", status="queued", kind=LATER) == 2
    assert value(found, "emporium_jobs", status="dead", kind=LATER) == 1
    assert value(found, "emporium_job_failures_total", kind=failing, outcome="dead") == 1
    assert value(found, "emporium_db_pool_size", engine="primary") > 0
    assert f"worker metrics on http://127.0.0.1:{port}/metrics" in log.read_text()
    assert proc.returncode == 0
