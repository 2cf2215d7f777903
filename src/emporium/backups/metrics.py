"""Prometheus metrics of backups, per destination (label ``destination``: its URL).

Served on ``/metrics`` with the others. They describe what the processes of this node did
since they started; ``GET /backups`` is the record across nodes and restarts.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

LAST_SUCCESS = Gauge(
    "emporium_backup_last_success_timestamp_seconds",
    "Unix time of the last backup copied completely to the destination",
    ["destination"],
    multiprocess_mode="max",
)
LAST_SIZE = Gauge(
    "emporium_backup_last_size_bytes",
    "Size in bytes of the last backup copied to the destination (all parts)",
    ["destination"],
    multiprocess_mode="mostrecent",
)
FAILURES = Counter(
    "emporium_backup_failures_total",
    "Failed attempts to copy a backup to the destination",
    ["destination"],
)


def copied(destination: str, size_bytes: int, at_unix: float) -> None:
    """Record a complete copy."""
    LAST_SUCCESS.labels(destination).set(at_unix)
    LAST_SIZE.labels(destination).set(size_bytes)


def failed(destination: str) -> None:
    """Record a failed copy attempt."""
    FAILURES.labels(destination).inc()
