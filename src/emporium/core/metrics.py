"""Prometheus metrics: the exposition of ``/metrics`` (servers and workers), scrape-time
probes, counters that count only what committed, and database pool gauges.

Two kinds of metric:

- *Process metrics* (counters, histograms, pool gauges) live in ``prometheus_client``'s
  default registry. Under ``emporium serve --workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set)
  each process writes its own files and a scrape adds them up, so a node reports itself.
- *Probes* are computed when ``/metrics`` is scraped (the job queue, the outbox lag): each
  probe is an async function returning metric families, bounded by a time limit so a slow
  database never hangs a scrape (a probe that fails or times out reports
  ``emporium_probe_success{probe} 0`` and its metrics are left out).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import REGISTRY, CollectorRegistry, Gauge, generate_latest, multiprocess
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format, version 0.0.4."""

Probe = Callable[[], Awaitable[Iterable[Metric]]]
"""A scrape-time measurement: returns metric families (``prometheus_client.metrics_core``)."""

log = structlog.get_logger("emporium.metrics")


@dataclass(frozen=True)
class NamedProbe:
    """A probe with the name it reports under in ``emporium_probe_success{probe}``."""

    name: str
    probe: Probe


class _Families(Collector):
    """A one-shot collector over families computed beforehand."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def _process_exposition() -> bytes:
    """This process's metrics, or every process's of this node in multi-process mode."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


async def _run(probe: NamedProbe, timeout_seconds: float) -> list[Metric] | None:
    """The probe's families, or None when it failed or ran out of time (logged)."""
    try:
        async with asyncio.timeout(timeout_seconds):
            return list(await probe.probe())
    except Exception as exc:  # a failed probe must not fail the scrape
        log.warning("metrics_probe_failed", probe=probe.name, error=repr(exc))
        return None


async def exposition(probes: Sequence[NamedProbe], *, timeout_seconds: float) -> bytes:
    """The ``/metrics`` body (Prometheus text format 0.0.4): process metrics, then each
    probe's, run concurrently, each within ``timeout_seconds``; never raises for a probe."""
    results = await asyncio.gather(*(_run(p, timeout_seconds) for p in probes))
    success = GaugeMetricFamily(
        "emporium_probe_success",
        "1 when the scrape-time probe (label probe) answered within its time limit, else 0",
        labels=["probe"],
    )
    families: list[Metric] = [success]
    for probe, found in zip(probes, results, strict=True):
        success.add_metric([probe.name], 0 if found is None else 1)
        families.extend(found or ())
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return _process_exposition() + generate_latest(registry)


# Counting what committed ---------------------------------------------------------------

_PENDING = "emporium.metrics.pending"


def count_on_commit(session: AsyncSession, increment: Callable[[], None]) -> None:
    """Call ``increment`` once ``session``'s transaction commits; drop it on rollback, so a
    counter of business facts (orders placed) never counts what was rolled back."""
    session.sync_session.info.setdefault(_PENDING, []).append(increment)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    for increment in session.info.pop(_PENDING, ()):
        increment()


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)


# Database pools --------------------------------------------------------------------------

POOL_CHECKED_OUT = Gauge(
    "emporium_db_pool_checked_out",
    "Database connections in use (checked out of the pool), per engine, summed over the "
    "node's live processes",
    ["engine"],
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "emporium_db_pool_size",
    "Database connections the pool may open (size plus overflow), per engine, summed over "
    "the node's live processes",
    ["engine"],
    multiprocess_mode="livesum",
)


def watch_pool(engine: AsyncEngine | Engine, name: str) -> Callable[[], None]:
    """Count ``engine``'s checked-out connections and capacity in ``emporium_db_pool_*``
    (label ``engine=name``); returns the function that stops counting (call it before
    disposing of the engine)."""
    sync = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    pool = sync.pool
    capacity = pool.size() + pool._max_overflow if isinstance(pool, QueuePool) else 1
    POOL_SIZE.labels(name).inc(capacity)
    checked_out = POOL_CHECKED_OUT.labels(name)
    held = [0]  # checked out now, as counted here

    def checkout(*_: Any) -> None:
        held[0] += 1
        checked_out.inc()

    def checkin(*_: Any) -> None:
        held[0] -= 1
        checked_out.dec()

    event.listen(sync, "checkout", checkout)
    event.listen(sync, "checkin", checkin)

    def stop() -> None:
        event.remove(sync, "checkout", checkout)
        event.remove(sync, "checkin", checkin)
        checked_out.dec(held[0])
        POOL_SIZE.labels(name).dec(capacity)

    return stop


RAW_POOL_SAMPLE_SECONDS = 5.0
"""How often :func:`sample_raw_pool` reads an asyncpg pool (it has no check-out events)."""


async def sample_raw_pool(pool: Any, name: str, *, max_size: int) -> None:
    """Report an asyncpg ``pool`` (``max_size`` connections) in ``emporium_db_pool_*``
    (label ``engine=name``): its capacity at once, its connections in use every
    :data:`RAW_POOL_SAMPLE_SECONDS`, until cancelled (then both are taken back)."""
    POOL_SIZE.labels(name).inc(max_size)
    checked_out = POOL_CHECKED_OUT.labels(name)
    try:
        while True:
            checked_out.set(pool.get_size() - pool.get_idle_size())
            await asyncio.sleep(RAW_POOL_SAMPLE_SECONDS)
    finally:
        checked_out.set(0)
        POOL_SIZE.labels(name).dec(max_size)
