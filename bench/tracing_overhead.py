"""What tracing costs on the paths it touches, off (the default) and on, next to a baseline
without the call in the same run. Prints per-call microseconds and ratios; asserts nothing.

    .venv/bin/python bench/tracing_overhead.py [--rounds N]

- ``job_span``: the context manager the runner puts around each job attempt, against a
  ``nullcontext`` (the baseline); off, then on (spans into a no-op exporter).
- ``publish_context`` / ``current_context``: what ``emit_event`` and ``enqueue`` call.
- a JSON log line written by structlog (to /dev/null) with tracing off (no processor) and on
  inside a span (the processor adds ``trace_id`` and ``span_id``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import timeit
import uuid
from collections.abc import Callable

import structlog
from opentelemetry.sdk.trace import TracerProvider

from emporium.core.config import Settings
from emporium.core.logging import configure_logging
from emporium.core.tracing import (
    configure_tracing,
    current_context,
    job_span,
    publish_context,
    stop_tracing,
)

JOB_ID = uuid.uuid4()


def per_call_us(fn: Callable[[], object], number: int, rounds: int) -> float:
    """The best of ``rounds`` runs of ``number`` calls, in microseconds per call."""
    return min(timeit.repeat(fn, number=number, repeat=rounds)) / number * 1e6


def with_job_span() -> None:
    with job_span("bench", JOB_ID, 1, None):
        pass


def with_null() -> None:
    with contextlib.nullcontext():
        pass


def measure(
    label: str, rounds: int, log: structlog.typing.FilteringBoundLogger
) -> dict[str, float]:
    """Every measured call under the current tracing state."""
    n = 20_000
    results = {
        "job_span": per_call_us(with_job_span, n, rounds),
        "publish_context": per_call_us(lambda: publish_context("bench.event", JOB_ID), n, rounds),
        "current_context": per_call_us(current_context, n, rounds),
        "log line": per_call_us(lambda: log.info("bench", job_id="j"), n // 4, rounds),
    }
    print(f"\n{label}")
    for name, value in results.items():
        print(f"  {name:<16} {value:8.2f} us/call")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    sink = open(os.devnull, "w")  # noqa: SIM115 - lives for the run
    baseline = per_call_us(with_null, 20_000, rounds)
    print(f"baseline: nullcontext around nothing {baseline:.2f} us/call (load: {os.getloadavg()})")

    configure_logging(Settings(log_format="json", log_level="INFO"))
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sink))
    off = measure("tracing off (default)", rounds, structlog.get_logger("bench.off"))

    configure_tracing(Settings(tracing=True), role="bench", provider=TracerProvider())
    configure_logging(Settings(log_format="json", log_level="INFO", tracing=True))
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sink))
    log_on = structlog.get_logger("bench.on")
    from opentelemetry import trace

    with trace.get_tracer("bench").start_as_current_span("request"):
        on = measure("tracing on, inside a span (no exporter)", rounds, log_on)
    stop_tracing()

    print("\nratios")
    print(f"  job_span off / nullcontext     {off['job_span'] / baseline:6.2f}")
    print(f"  log line on / off              {on['log line'] / off['log line']:6.2f}")
    print(f"  job_span on / off              {on['job_span'] / off['job_span']:6.2f}")


if __name__ == "__main__":
    main()
