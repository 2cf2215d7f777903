"""Summarise a ``py-spy record --format raw`` profile (collapsed stacks) of a server worker.

Only the event-loop thread counts (uvicorn's supervisor ping thread is left out). Every
sample is put in one bucket, first rule that matches, so the buckets add up to 100%:

    DB connect/close     a new PostgreSQL connection being opened or closed (pool churn)
    BEGIN/COMMIT         asyncpg transaction start and commit round trips
    asyncpg execute      the driver sending a query and decoding its rows
    JSON columns         stdlib ``json`` decoding the ``json`` columns for SQLAlchemy
    SQLAlchemy           statement building, cache keys, compiling, executing, result rows
    Emporium             Emporium's own frames (rows to msgspec Structs, middleware, ...)
    response encoding    msgspec encoding the response body
    Litestar             routing, dependency injection, parameter parsing, responses
    metrics/logging      prometheus_client and structlog
    uvicorn              HTTP protocol (httptools) and ASGI plumbing
    event loop/native    uvloop and C code below no Python frame (I/O, callbacks)

then the top functions by self time (the leaf frame of the sample).

    .venv/bin/python bench/pyspy_summary.py bench/results/profile-product_read.txt
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "DB connect/close (pool churn)",
        (
            "asyncpg/connect_utils.py",
            "Connection.close (asyncpg",
            "_ConnectionRecord.__connect",
            "PGDialect_asyncpg.on_connect",
            "AsyncAdapt_asyncpg_dbapi.connect",
            "_ConnectionRecord.close",
            "_finalize_fairy",
            "Pool._close_connection",
        ),
    ),
    ("BEGIN/COMMIT round trips", ("asyncpg/transaction.py",)),
    ("asyncpg execute + row decoding", ("asyncpg/",)),
    ("JSON columns (stdlib json.loads)", ("json/decoder.py", "json/__init__.py")),
    ("SQLAlchemy (build, cache key, execute, rows)", ("sqlalchemy/",)),
)
LEAF_BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Emporium code (rows -> Structs, middleware)", ("emporium/",)),
    ("response encoding (msgspec)", ("msgspec", "serialization/msgspec_hooks.py")),
    ("metrics/logging", ("prometheus_client/", "structlog/")),
    ("Litestar (routing, DI, params, response)", ("litestar/",)),
    ("uvicorn HTTP", ("uvicorn/", "httptools")),
    ("event loop / native", ("asyncio/", "runners.py", "(no Python frame)", "uvloop")),
)


def function(frame: str) -> str:
    """``func (package/module.py)`` without the line number."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match.group("file")
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match.group('func')} ({path})"


def load(path: Path) -> tuple[list[tuple[list[str], int]], int]:
    """Event-loop-thread stacks (root first) with sample counts, and other threads' samples."""
    stacks: list[tuple[list[str], int]] = []
    other_threads = 0
    # Split on "\n" only: with --nonblocking, py-spy reads the process's memory while it runs
    # and a frame name can come out garbled (even with other line-break characters in it).
    for line in path.read_text(errors="replace").split("\n"):
        stack, _, count = line.strip().rpartition(" ")
        if not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if frames and frames[0].startswith("Thread._bootstrap (threading.py"):
            other_threads += int(count)
            continue
        stacks.append((frames or ["(no Python frame)"], int(count)))
    return stacks, other_threads


def bucket(frames: list[str]) -> str:
    """The one bucket a sample belongs to."""
    for name, needles in BUCKETS:
        if any(n in f for f in frames for n in needles):
            return name
    leaf = frames[-1]
    for name, needles in LEAF_BUCKETS:
        if any(n in leaf for n in needles):
            return name
    # A leaf in the standard library: charge it to the nearest known caller.
    for frame in reversed(frames[:-1]):
        for name, needles in LEAF_BUCKETS:
            if any(n in frame for n in needles):
                return name
    return "other"


def summarise(path: Path, *, top: int = 12) -> str:
    """The report for one raw profile."""
    stacks, other_threads = load(path)
    total = sum(n for _, n in stacks) or 1
    buckets: Counter[str] = Counter()
    self_fn: Counter[str] = Counter()
    for frames, n in stacks:
        buckets[bucket(frames)] += n
        self_fn[function(frames[-1])] += n

    def pct(n: int) -> str:
        return f"{100 * n / total:5.1f}%"

    out = [
        f"{path.name}: {total} samples of the event-loop thread "
        f"({other_threads} of other threads left out)",
        "  where the time goes (each sample in one bucket):",
    ]
    out.extend(f"    {pct(n)}  {name}" for name, n in buckets.most_common())
    out.append(f"  top {top} functions by self time:")
    out.extend(f"    {pct(n)}  {name}" for name, n in self_fn.most_common(top))
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    for profile in args.profiles:
        print(summarise(profile, top=args.top))


if __name__ == "__main__":
    main()
