"""The worker's small ``/metrics`` server answers Prometheus and nothing else: other paths
404, other methods 405, a request that never ends or is too big 400, and a probe that hangs
is left out of the answer after its time limit instead of holding the scrape."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from emporium.core import metrics_server
from emporium.core.metrics import NamedProbe
from emporium.core.metrics_server import MetricsServer
from metricsupport import samples, value


async def _answers() -> list[Metric]:
    return [GaugeMetricFamily("emporium_test_answer", "a probe that answers", value=42)]


async def _hangs() -> list[Metric]:
    await asyncio.sleep(60)
    return []


@pytest.fixture
async def base(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    monkeypatch.setattr(metrics_server, "READ_SECONDS", 0.5)
    probes = [NamedProbe("answers", _answers), NamedProbe("hangs", _hangs)]
    server = MetricsServer(probes, timeout_seconds=0.3, host="127.0.0.1", port=0)
    port = await server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.close()


async def _raw(base: str, data: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(data)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer


async def test_metrics_with_probes_and_nothing_else(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        found = samples(response.text)
        assert value(found, "emporium_test_answer") == 42
        assert value(found, "emporium_probe_success", probe="answers") == 1
        assert value(found, "emporium_probe_success", probe="hangs") == 0
        head = await client.head("/metrics")
        assert (head.status_code, head.content) == (200, b"")
        assert (await client.get("/")).status_code == 404
        assert (await client.get("/metrics/../admin")).status_code == 404
        assert (await client.delete("/metrics")).status_code == 405


async def test_a_request_that_never_ends_or_is_too_big_is_refused(base: str) -> None:
    slow = await _raw(base, b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # no blank line
    assert slow.startswith(b"HTTP/1.1 400 ")
    huge = b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"a" * 20_000 + b"\r\n\r\n"
    assert (await _raw(base, huge)).startswith(b"HTTP/1.1 400 ")
