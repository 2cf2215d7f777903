"""Catalog read benchmark: Emporium against a raw ASGI + asyncpg baseline, on PostgreSQL.

One command does everything::

    .venv/bin/python bench/catalog_reads.py                 # seed, serve, measure, clean up
    .venv/bin/python bench/catalog_reads.py --keep-db       # ... and keep the database
    .venv/bin/python bench/catalog_reads.py --skip-seed     # reuse the kept database

1. (unless ``--skip-seed``) a fresh database with the dummyjson catalog and 100,000 generated
   products (``bench/seed.py``);
2. ``emporium serve --workers 2`` and the baseline (``bench/raw_baseline.py``, same uvicorn,
   uvloop and httptools, 2 workers) as separate processes;
3. ``wrk`` (64 connections, ``bench/rotate_paths.lua``) on each scenario after a warm-up;
4. a table with requests/s, p50 and p99 next to the bars of the performance issue, also
   written to ``bench/results/catalog_reads.json``.

The bench reports; it asserts nothing about timings. It exits non-zero when a response was
not 2xx, a socket error happened, or a sanity check (same JSON as the baseline, cursor
built like the server builds it) failed. ``--profile`` adds a pass per Emporium and
baseline scenario with ``py-spy record`` on one worker (numbers from that pass are not
reported), so the buckets of the two can be compared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

# ``seed`` and ``emporium`` are imported where used: with --ref, this process only exports the
# source and runs itself again on it, so it must not need the working tree's code.

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
LUA = BENCH / "rotate_paths.lua"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432"
DEFAULT_DB = "emporium_bench"
API = "/api/v1"

# The bars of the performance issue (18): (key, label, (scenario, reference, metric), op, bar).
# ``server_cpu_ms_per_request`` is the server's CPU per request (app ms).
RATIO_BARS: list[tuple[str, str, tuple[str, str, str], str, float]] = [
    (
        "product_read_vs_baseline",
        "product read req/s / baseline",
        ("product_read", "product_read_baseline", "rps"),
        ">=",
        0.60,
    ),
    (
        "product_read_cpu_vs_baseline",
        "product read app CPU / baseline",
        ("product_read", "product_read_baseline", "server_cpu_ms_per_request"),
        "<=",
        2.0,
    ),
    (
        "first_page_vs_baseline",
        "first page req/s / baseline",
        ("first_page", "first_page_baseline", "rps"),
        ">=",
        0.40,
    ),
    (
        "category_vs_baseline",
        "category page req/s / baseline",
        ("category", "category_baseline", "rps"),
        ">=",
        0.40,
    ),
    (
        "deep_vs_first_rps",
        "deep page req/s / first page",
        ("deep_page", "first_page", "rps"),
        ">=",
        0.9,
    ),
    (
        "deep_vs_first_p99",
        "deep page p99 / first page",
        ("deep_page", "first_page", "p99_ms"),
        "<=",
        1.3,
    ),
    (
        "search_common_vs_first_page",
        "q=cotton req/s / first page",
        ("search_common", "first_page", "rps"),
        ">=",
        0.50,
    ),
    (
        "search_every_vs_first_page",
        "q=everyday req/s / first page",
        ("search_every", "first_page", "rps"),
        ">=",
        0.25,
    ),
    (
        "sqlite_search_every_vs_first_page",
        "SQLite q=everyday req/s / its first page (info)",
        ("sqlite_search_every", "sqlite_first_page", "rps"),
        ">=",
        0.25,
    ),
    (
        "sqlite_search_common_vs_first_page",
        "SQLite q=cotton req/s / its first page (info)",
        ("sqlite_search_common", "sqlite_first_page", "rps"),
        ">=",
        0.5,
    ),
]

BUSY_WARNING_PCT = 15.0  # warn when other processes use more of the machine than this
DEEP_POSITION = 50_000
HOT_PRODUCTS = 1_000  # ids of the "hot" product read: fit any per-process product cache
DEFAULT_CATEGORY = "apparel"  # generated root category: 3 sub-categories, 30,000 products
DEFAULT_LEAF = "apparel-t-shirts"  # one generated leaf category: 10,000 products
COMMON_WORD = "cotton"  # ~8% of the generated products
EVERY_WORD = "everyday"  # in every generated description
RARE_WORD = "mascara"  # one dummyjson product


class BenchError(Exception):
    """A sanity check failed: the numbers would not mean what they say."""


@dataclass
class Scenario:
    key: str
    label: str
    server: str  # "emporium" or "baseline"
    paths: list[str]
    note: str = ""
    shuffle: bool = False  # a new random order of the paths for every wrk run
    result: dict[str, Any] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A server started in its own session, so it and its workers stop together."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], port: int) -> None:
        self.name, self.cmd, self.env, self.port = name, cmd, env, port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = RESULTS / f"{name}-server.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.cmd,
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def wait_ready(self, path: str = "/readyz", timeout: float = 60.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"{self.name} exited with {self.proc.returncode}; see {self.log_path}"
                )
            # The URL is http://127.0.0.1:PORT/..., built here.
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(self.base + path, timeout=2) as response,  # noqa: S310
            ):
                if response.status == 200:
                    return
            time.sleep(0.25)
        raise BenchError(f"{self.name} not ready after {timeout:.0f} s; see {self.log_path}")

    def worker_pids(self) -> list[int]:
        """The uvicorn worker processes (children running ``spawn_main``)."""
        assert self.proc is not None
        pid = self.proc.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return []
        workers = []
        for child in children:
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
                if b"spawn_main" in cmdline:
                    workers.append(int(child))
        return workers

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server's processes (supervisor and workers)."""
        assert self.proc is not None
        ticks = 0
        for pid in [self.proc.pid, *self.worker_pids()]:
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def wait_idle(self, timeout: float = 120.0) -> float:
        """Wait until requests left over by the load generator are done; return the wait.

        wrk closes its connections when the time is up, but the server finishes the requests
        it had started; the next scenario must not share the CPU with them.
        """
        started = time.monotonic()
        last = self.cpu_seconds()
        while time.monotonic() - started < timeout:
            time.sleep(0.5)
            now = self.cpu_seconds()
            if now - last < 0.05:  # under 10% of one core
                return time.monotonic() - started
            last = now
        return time.monotonic() - started

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


class LoopProbe:
    """``GET /healthz`` (no database) every 20 ms on its own connection during a run: its
    latency is how long a cheap request waits for a server's event loop. A read holding the
    loop (a search run on it) shows as a latency as long as that read."""

    def __init__(self, base: str) -> None:
        self.url = base + "/healthz"
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            # The URL is http://127.0.0.1:PORT/healthz, built here.
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(self.url, timeout=30) as response,  # noqa: S310
            ):
                response.read()
            self.latencies.append(1000 * (time.perf_counter() - started))
            self._stop.wait(0.02)

    def __enter__(self) -> LoopProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies) or [0.0]
        return {
            "probe_requests": len(self.latencies),
            "probe_p50_ms": round(ordered[len(ordered) // 2], 1),
            "probe_p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
            "probe_max_ms": round(ordered[-1], 1),
        }


def machine_busy_pct(seconds: float = 1.0) -> float:
    """Machine-wide CPU use (% of all cores) over ``seconds``, from /proc/stat.

    Taken while both servers are idle, it is the load of other processes on the machine,
    which the numbers of the next scenario share the cores with.
    """

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values) - idle, sum(values)

    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return float("nan")
    return round(100 * (busy1 - busy0) / max(1, total1 - total0), 1)


def _process_ticks() -> dict[int, tuple[int, str, int, int]]:
    """pid -> (ppid, command name, CPU ticks used, CPU ticks of its reaped children)."""
    table: dict[int, tuple[int, str, int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            f = stat[stat.rindex(")") + 2 :].split()
            table[int(entry)] = (int(f[1]), name, int(f[11]) + int(f[12]), int(f[13]) + int(f[14]))
    return table


def _descendants(table: dict[int, tuple[int, str, int, int]], root: int) -> set[int]:
    found = {root}
    grew = True
    while grew:
        grew = False
        for pid, (ppid, *_) in table.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grew = True
    return found


class CpuAccounting:
    """CPU used during a run, by whom: the server under test (supervisor and workers),
    PostgreSQL (live processes plus the backends that exited, via the postmaster's reaped
    children), and other processes on the machine (neither this bench's descendants nor
    PostgreSQL: other work sharing the cores)."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.seconds: dict[str, float] = {}
        self.other_pct = float("nan")

    def __enter__(self) -> CpuAccounting:
        self.before = _process_ticks()
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        after = _process_ticks()
        elapsed = time.monotonic() - self.started
        server = _descendants(after, self.server_pid)
        mine = _descendants(after, os.getpid())
        ticks = {"server": 0, "postgres": 0, "other": 0}
        for pid, (_, name, used, reaped) in after.items():
            _, _, used0, reaped0 = self.before.get(pid, (0, "", 0, 0))
            if pid in server:
                ticks["server"] += used - used0
            elif name.startswith("postgres"):
                ticks["postgres"] += (used - used0) + (reaped - reaped0)
            elif pid not in mine:
                ticks["other"] += used - used0
        hz = os.sysconf("SC_CLK_TCK")
        self.seconds = {k: v / hz for k, v in ticks.items()}
        cpus = os.cpu_count() or 1
        self.other_pct = round(100 * self.seconds["other"] / max(elapsed * cpus, 1e-9), 1)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


# --------------------------------------------------------------------------- HTTP helpers


def http_get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (our http URL)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:500]


def expect_ok(url: str) -> Any:
    status, body = http_get(url)
    if status != 200:
        raise BenchError(f"GET {url} answered {status}: {body!r}")
    return body


# --------------------------------------------------------------------------- inputs


async def gather_inputs(pg: str, database: str, sample: int) -> dict[str, Any]:
    """Product ids, the deep-page cursor and catalog facts, straight from the database."""
    import seed

    from emporium.core.db.pagination import encode_cursor

    conn = await asyncpg.connect(seed.dsn(pg, database))
    try:
        published = await conn.fetchval("SELECT count(*) FROM product WHERE published")
        if published < DEEP_POSITION + 100:
            raise BenchError(
                f"only {published} published products in {database!r}: seed it first "
                "(run without --skip-seed)"
            )
        ids = [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM product WHERE published ORDER BY random() LIMIT $1",
                sample or None,
            )
        ]

        async def nth_cursor(n: int) -> str:
            # The default sort is -created_at, ties by id descending; Emporium's cursor holds
            # [sort, created_at.isoformat() in UTC, id] of the last row of the page.
            row = await conn.fetchrow(
                "SELECT created_at, id FROM product WHERE published "
                "ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1",
                n - 1,
            )
            return encode_cursor(
                "-created_at", row["created_at"].astimezone(UTC).isoformat(), row["id"]
            )

        deep_cursor = await nth_cursor(DEEP_POSITION)
        page1_cursor = await nth_cursor(20)

        async def subtree_count(slug: str) -> int:
            count: int = await conn.fetchval(
                """
                WITH RECURSIVE subtree(id) AS (
                    SELECT id FROM category WHERE slug = $1
                    UNION ALL SELECT c.id FROM category c JOIN subtree s ON c.parent_id = s.id)
                SELECT count(*) FROM product
                WHERE published AND category_id IN (SELECT id FROM subtree)
                """,
                slug,
            )
            return count

        async def matches(word: str) -> int:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM product WHERE published AND "
                "search_vector @@ websearch_to_tsquery('english', $1)",
                word,
            )
            return count

        return {
            "products": await conn.fetchval("SELECT count(*) FROM product"),
            "published": published,
            "variants": await conn.fetchval("SELECT count(*) FROM variant"),
            "categories": await conn.fetchval("SELECT count(*) FROM category"),
            "ids": ids,
            "deep_cursor": deep_cursor,
            "page1_cursor": page1_cursor,
            "category_count": await subtree_count(DEFAULT_CATEGORY),
            "leaf_count": await subtree_count(DEFAULT_LEAF),
            "word_counts": {w: await matches(w) for w in (COMMON_WORD, EVERY_WORD, RARE_WORD)},
            "postgres": await conn.fetchval("SHOW server_version"),
            "database_size": await conn.fetchval(
                "SELECT pg_size_pretty(pg_database_size(current_database()))"
            ),
        }
    finally:
        await conn.close()


async def db_sessions(pg: str, database: str) -> int | None:
    """Sessions ever opened on ``database`` (pg_stat_database.sessions, PostgreSQL 14+):
    the difference over a run is how many new connections the server opened (pool churn).
    None when it cannot be read (older server, no free connection slot)."""
    try:
        conn = await asyncpg.connect(f"{pg.rstrip('/')}/postgres")
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"  (cannot count database sessions: {exc})", flush=True)
        return None
    try:
        count = await conn.fetchval(
            "SELECT sessions FROM pg_stat_database WHERE datname = $1", database
        )
        return int(count or 0)
    except asyncpg.PostgresError:
        return None
    finally:
        await conn.close()


def build_scenarios(inputs: dict[str, Any]) -> list[Scenario]:
    ids = [str(i) for i in inputs["ids"]]
    hot = ids[:HOT_PRODUCTS]
    words = inputs["word_counts"]
    listing = f"{API}/products?limit=20"
    return [
        Scenario(
            "product_read",
            "a  GET /products/{id}, all ids, shuffled",
            "emporium",
            [f"{API}/products/{i}" for i in ids],
            f"{len(ids):,} ids: mostly product-cache misses",
            shuffle=True,
        ),
        Scenario(
            "product_read_baseline",
            "a  GET /products/{id}, all ids, shuffled",
            "baseline",
            [f"/products/{i}" for i in ids],
            "raw ASGI + asyncpg, 1 query, no cache",
            shuffle=True,
        ),
        Scenario(
            "product_read_hot",
            f"a2 GET /products/{{id}}, {len(hot):,} hot ids",
            "emporium",
            [f"{API}/products/{i}" for i in hot],
            "fit the product cache: mostly hits",
            shuffle=True,
        ),
        Scenario(
            "category",
            f"b  ?category={DEFAULT_CATEGORY}&limit=20",
            "emporium",
            [f"{listing}&category={DEFAULT_CATEGORY}"],
            f"{inputs['category_count']:,} products in the subtree",
        ),
        Scenario(
            "category_leaf",
            f"b2 ?category={DEFAULT_LEAF}&limit=20",
            "emporium",
            [f"{listing}&category={DEFAULT_LEAF}"],
            f"{inputs['leaf_count']:,} products, leaf category",
        ),
        Scenario(
            "category_baseline",
            f"b  ?category={DEFAULT_CATEGORY}&limit=20",
            "baseline",
            [f"/products?limit=20&category={DEFAULT_CATEGORY}"],
            "raw ASGI + asyncpg, same keyset statement",
        ),
        Scenario("first_page", "c  ?limit=20 (first page)", "emporium", [listing]),
        Scenario(
            "first_page_baseline",
            "c  ?limit=20 (first page)",
            "baseline",
            ["/products?limit=20"],
            "raw ASGI + asyncpg, same keyset statement",
        ),
        Scenario(
            "deep_page",
            f"c  ?limit=20&cursor=<after {DEEP_POSITION:,}>",
            "emporium",
            [f"{listing}&cursor={urllib.parse.quote(inputs['deep_cursor'])}"],
            "sort -created_at (default)",
        ),
        Scenario(
            "search_common",
            f"d  ?q={COMMON_WORD}&limit=20",
            "emporium",
            [f"{listing}&q={COMMON_WORD}"],
            f"{words[COMMON_WORD]:,} matches",
        ),
        Scenario(
            "search_every",
            f"d2 ?q={EVERY_WORD}&limit=20",
            "emporium",
            [f"{listing}&q={EVERY_WORD}"],
            f"{words[EVERY_WORD]:,} matches",
        ),
        Scenario(
            "sqlite_first_page",
            "e  ?limit=20 (first page), SQLite",
            "sqlite",
            [listing],
            "embedded default: SQLite, same catalog",
        ),
        Scenario(
            "sqlite_search_every",
            f"e  ?q={EVERY_WORD}&limit=20, SQLite FTS5",
            "sqlite",
            [f"{listing}&q={EVERY_WORD}"],
            "FTS5; probe: GET /healthz latency meanwhile",
        ),
        Scenario(
            "sqlite_search_common",
            f"e  ?q={COMMON_WORD}&limit=20, SQLite FTS5",
            "sqlite",
            [f"{listing}&q={COMMON_WORD}"],
            "FTS5; probe: GET /healthz latency meanwhile",
        ),
        Scenario(
            "search_rare",
            f"d  ?q={RARE_WORD}&limit=20",
            "emporium",
            [f"{listing}&q={RARE_WORD}"],
            f"{words[RARE_WORD]:,} matches",
        ),
    ]


def sanity_checks(
    servers: dict[str, Server], inputs: dict[str, Any], scenarios: list[Scenario]
) -> None:
    """Every scenario answers 200; the baseline answers the same document; cursors match."""
    emporium, baseline = servers["emporium"], servers["baseline"]
    if "sqlite" in servers and expect_ok(
        f"{servers['sqlite'].base}{API}/products?limit=20"
    ) != expect_ok(f"{emporium.base}{API}/products?limit=20"):
        raise BenchError("the SQLite copy answers another first page than PostgreSQL")
    for scenario in scenarios:
        if scenario.server not in servers:
            continue
        for path in scenario.paths[:3]:
            expect_ok(servers[scenario.server].base + path)
    for product_id in inputs["ids"][:5]:
        ours = expect_ok(f"{emporium.base}{API}/products/{product_id}")
        theirs = expect_ok(f"{baseline.base}/products/{product_id}")
        if ours != theirs:
            raise BenchError(f"baseline and Emporium documents differ for product {product_id}")
    first = expect_ok(f"{emporium.base}{API}/products?limit=20")
    if first.get("next_cursor") != inputs["page1_cursor"]:
        raise BenchError(
            "the cursor built by the bench differs from the server's next_cursor: "
            f"{inputs['page1_cursor']!r} != {first.get('next_cursor')!r}"
        )
    cursor = urllib.parse.quote(inputs["deep_cursor"])
    for query in (
        "limit=20",
        f"limit=20&category={DEFAULT_CATEGORY}",
        f"limit=20&cursor={cursor}",
        f"limit=20&category={DEFAULT_LEAF}&cursor={cursor}",
    ):
        if expect_ok(f"{emporium.base}{API}/products?{query}") != expect_ok(
            f"{baseline.base}/products?{query}"
        ):
            raise BenchError(f"baseline and Emporium pages differ for ?{query}")
    deep_path = next(s for s in scenarios if s.key == "deep_page").paths[0]
    deep = expect_ok(emporium.base + deep_path)
    if (
        len(deep["items"]) != 20
        or deep["items"][0]["created_at"] >= first["items"][-1]["created_at"]
    ):
        raise BenchError("the deep page does not look like a page after 50,000 products")


# --------------------------------------------------------------------------- wrk


_RESULT = re.compile(r"^BENCH_RESULT (\{.*\})$", re.MULTILINE)


def wrk(
    base: str,
    paths_file: Path,
    *,
    seconds: float,
    connections: int,
    threads: int,
    script: Path = LUA,
    script_args: list[str] | None = None,
) -> tuple[dict[str, Any], str]:
    """Run wrk with ``script`` (``rotate_paths.lua`` over ``paths_file`` unless
    ``script_args`` are given) and return its BENCH_RESULT line as a dict, and its output.
    A script that counts response statuses adds them as ``statuses`` ({code: count})."""
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "30s",
        "-s",
        str(script),
        base,
        "--",
        *(script_args if script_args is not None else [str(paths_file), str(threads)]),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    match = _RESULT.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise BenchError(f"wrk failed ({done.returncode}):\n{output}")
    raw = json.loads(match.group(1))
    seconds_run = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    extra = (
        {"statuses": {int(k): v for k, v in raw["statuses"].items()}} if "statuses" in raw else {}
    )
    return {
        "requests": raw["requests"],
        "seconds": round(seconds_run, 2),
        "rps": round(raw["requests"] / seconds_run, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p90_ms": round(raw["p90_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "mean_ms": round(raw["mean_us"] / 1000, 2),
        "non_2xx": raw["status_errors"],
        "socket_errors": errors,
        "kb_per_response": round(raw["bytes"] / max(1, raw["requests"]) / 1024, 2),
        **extra,
    }, output


def run_scenario(
    scenario: Scenario,
    server: Server,
    workdir: Path,
    args: argparse.Namespace,
) -> None:
    paths_file = workdir / f"{scenario.key}.paths"

    def write_paths() -> None:
        paths = scenario.paths
        if scenario.shuffle:
            paths = list(paths)
            random.shuffle(paths)
        paths_file.write_text("\n".join(paths) + "\n")

    write_paths()
    server.wait_idle()
    background = machine_busy_pct()
    waited = 0.0
    while background > BUSY_WARNING_PCT and waited < args.wait_quiet:
        if waited == 0:
            print(
                f"  (machine {background:.0f}% busy: waiting up to {args.wait_quiet:g} s "
                "for other processes to finish)",
                flush=True,
            )
        time.sleep(2)
        waited += 3
        background = machine_busy_pct()
    print(f"  {scenario.key:<22} warm-up {args.warmup:.0f} s ...", end="", flush=True)
    wrk(
        server.base,
        paths_file,
        seconds=args.warmup,
        connections=args.connections,
        threads=args.threads,
    )
    server.wait_idle()
    write_paths()
    print(f" measuring {args.duration:.0f} s ...", end="", flush=True)
    assert server.proc is not None
    sessions_before = asyncio.run(db_sessions(args.pg, args.db))
    probe = LoopProbe(server.base) if scenario.server == "sqlite" else None
    with CpuAccounting(server.proc.pid) as cpu, probe or contextlib.nullcontext():
        result, output = wrk(
            server.base,
            paths_file,
            seconds=args.duration,
            connections=args.connections,
            threads=args.threads,
        )
    if probe is not None:
        result.update(probe.summary())
    result["drain_s"] = round(server.wait_idle(), 1)
    result["background_cpu_pct"] = background
    sessions_after = asyncio.run(db_sessions(args.pg, args.db))
    sessions = (
        None
        if sessions_before is None or sessions_after is None
        else sessions_after - sessions_before
    )
    result["other_cpu_pct"] = cpu.other_pct
    result["db_connections_opened"] = sessions
    served = max(1, result["requests"])
    result["server_cpu_ms_per_request"] = round(1000 * cpu.seconds["server"] / served, 3)
    result["postgres_cpu_ms_per_request"] = round(1000 * cpu.seconds["postgres"] / served, 3)
    (RESULTS / "wrk").mkdir(exist_ok=True)
    suffix = f"-round{len(scenario.runs) + 1}" if args.rounds > 1 else ""
    (RESULTS / "wrk" / f"{scenario.key}{suffix}.txt").write_text(output)
    scenario.runs.append(result)
    # The reported run is the median one by throughput (the only one with one round).
    ranked = sorted(scenario.runs, key=lambda r: r["rps"])
    scenario.result = ranked[(len(ranked) - 1) // 2]
    flag = ""
    if result["non_2xx"] or result["socket_errors"]:
        flag = f"  !!! {result['non_2xx']} non-2xx, {result['socket_errors']} socket errors"
    if cpu.other_pct > BUSY_WARNING_PCT:
        flag += f"  (other processes used {cpu.other_pct:.0f}% of the machine meanwhile)"
    print(
        f" {result['rps']:>8.1f} req/s  p50 {result['p50_ms']:>7.1f} ms  "
        f"p99 {result['p99_ms']:>7.1f} ms{flag}",
        flush=True,
    )


def profile_scenario(
    scenario: Scenario, server: Server, workdir: Path, args: argparse.Namespace
) -> Path | None:
    """Re-run ``scenario`` with py-spy recording one worker; return the raw profile."""
    pyspy = Path(sys.executable).parent / "py-spy"
    if not pyspy.exists():
        found = shutil.which("py-spy")
        if found is None:
            print("  py-spy not found: .venv/bin/pip install py-spy", flush=True)
            return None
        pyspy = Path(found)
    workers = server.worker_pids()
    if not workers:
        print("  no worker pid found", flush=True)
        return None
    paths_file = workdir / f"{scenario.key}.paths"
    out = RESULTS / f"profile-{scenario.key}.txt"
    seconds = max(4, round(args.duration))
    load = subprocess.Popen(
        [
            "wrk",
            f"-t{args.threads}",
            f"-c{args.connections}",
            f"-d{seconds + 2}s",
            "--timeout",
            "30s",
            "-s",
            str(LUA),
            server.base,
            "--",
            str(paths_file),
            str(args.threads),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1)
        subprocess.run(
            [
                str(pyspy),
                "record",
                "--pid",
                str(workers[0]),
                "--duration",
                str(seconds),
                "--rate",
                "200",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(out),
            ],
            check=True,
            capture_output=True,
        )
    finally:
        load.wait()
    return out


# --------------------------------------------------------------------------- report


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(scenarios: list[Scenario], inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    by_key = {s.key: s for s in scenarios}
    lines = [
        "",
        f"{'scenario':<44} {'server':<9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'app ms':>6} {'db ms':>6} {'conns':>5} {'errors':>6} {'other%':>6}  note",
        "-" * 136,
    ]
    for s in scenarios:
        r = s.result
        if not r:
            continue
        lines.append(
            f"{s.label:<44} {s.server:<9} {r['rps']:>9.1f} {r['p50_ms']:>8.1f} "
            f"{r['p99_ms']:>8.1f} {r['server_cpu_ms_per_request']:>6.2f} "
            f"{r['postgres_cpu_ms_per_request']:>6.2f} "
            f"{'?' if r['db_connections_opened'] is None else r['db_connections_opened']:>5} "
            f"{r['non_2xx'] + r['socket_errors']:>6} "
            f"{r['other_cpu_pct']:>6.0f}  {s.note}"
        )
    lines.append(
        "app ms / db ms: CPU milliseconds per request used by the server's processes / by "
        "PostgreSQL (all its processes);\nconns: new database connections opened during the "
        "run (pool churn); errors: non-2xx responses + socket errors/timeouts; "
        "other%: CPU used during the run by processes other than the servers, wrk and "
        "PostgreSQL (% of all cores)"
    )
    busy = [s.key for s in scenarios if s.result and s.result["other_cpu_pct"] > BUSY_WARNING_PCT]
    if busy:
        lines.append(
            f"WARNING: other processes used > {BUSY_WARNING_PCT:g}% of the machine during "
            f"{', '.join(busy)}: those numbers share the cores with other work; "
            "rerun on a quiet machine"
        )
    bars: dict[str, Any] = {}

    def result(key: str) -> dict[str, Any]:
        return by_key[key].result if key in by_key else {}

    lines += ["", "bars of the issue (reported, not asserted):"]
    for key, label, (top, bottom, metric), op, bar in RATIO_BARS:
        a, b = result(top), result(bottom)
        if not (a and b and b[metric]):
            continue
        value = a[metric] / b[metric]
        met = value >= bar if op == ">=" else value <= bar
        bars[key] = {"value": round(value, 3), "bar": f"{op} {bar:g}", "met": met}
        lines.append(
            f"  {label:<44} {value:>7.3f}   bar {op} {bar:<5g}  {'met' if met else 'NOT MET'}"
        )
    base, hot = result("product_read_baseline"), result("product_read_hot")
    if hot and base:
        lines.append(
            f"  {'hot product read (cache) / baseline req/s':<44} "
            f"{hot['rps'] / base['rps']:>7.3f}   (info: the baseline has no cache)"
        )
    others = [
        f"{s.key} {s.result['p99_ms']:.0f}"
        for s in scenarios
        if s.server != "baseline" and s.result
    ]
    if others:
        lines.append("  p99 (ms) of the Emporium scenarios (info): " + ", ".join(others))
    for s in scenarios:
        if s.result.get("probe_requests"):
            r = s.result
            lines.append(
                f"  {s.key}: GET /healthz meanwhile (event loop wait) p50 {r['probe_p50_ms']} ms, "
                f"p99 {r['probe_p99_ms']} ms, max {r['probe_max_ms']} ms "
                f"over {r['probe_requests']} probes"
            )
    return "\n".join(lines), bars


def git_commit() -> str | None:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "src"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return None
    return done.stdout.strip() + ("+dirty-src" if dirty.stdout.strip() else "")


def wrk_version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return (done.stdout + done.stderr).splitlines()[0] if (done.stdout + done.stderr) else "?"


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Catalog read benchmark (Emporium vs raw ASGI baseline) on PostgreSQL."
    )
    parser.add_argument("--pg", default=DEFAULT_PG, help="server DSN without database")
    parser.add_argument("--db", default=DEFAULT_DB, help="bench database name")
    parser.add_argument("--count", type=int, default=100_000, help="generated products")
    parser.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument(
        "--ref",
        help="benchmark this git commit/branch of src/ (exported to a temporary directory and "
        "put first on PYTHONPATH) instead of the working tree",
    )
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    parser.add_argument(
        "--no-sqlite",
        action="store_true",
        help="skip the SQLite (embedded default) scenarios and their copy of the catalog",
    )
    parser.add_argument(
        "--skip-seed", action="store_true", help="reuse the existing database (implies --keep-db)"
    )
    parser.add_argument("--duration", type=float, default=12, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per scenario")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every scenario this many times, interleaved; report the median run",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=120,
        metavar="SECONDS",
        help="before each scenario, wait up to this long for other processes to go quiet",
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="server workers (both servers)")
    parser.add_argument(
        "--sample",
        type=int,
        default=0,
        help="product ids to rotate over in the product read (0: every published product)",
    )
    parser.add_argument(
        "--only", help="comma-separated scenario keys to run (product_read,category,...)"
    )
    parser.add_argument(
        "--emporium-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the Emporium server (e.g. EMPORIUM_DATABASE_POOL_SIZE=32)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="then profile each scenario (baselines too)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "catalog_reads.json")
    return parser.parse_args()


def run_at_ref(ref: str, argv: list[str]) -> int:
    """Export ``ref``'s ``src/`` and run this script again with it first on PYTHONPATH."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", f"{ref}^{{commit}}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if commit.returncode != 0:
        print(f"unknown git ref {ref!r}: {commit.stderr.strip()}", file=sys.stderr)
        return 2
    snapshot = Path(tempfile.mkdtemp(prefix="emporium-bench-src-"))
    try:
        archive = subprocess.run(
            ["git", "archive", commit.stdout.strip(), "src"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(snapshot)], input=archive, check=True)
        path = [str(snapshot / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(path),
            "BENCH_SOURCE": f"{ref} = {commit.stdout.strip()} (git archive)",
        }
        rest, skip = [], False
        for arg in argv:
            if skip:
                skip = False
            elif arg == "--ref":
                skip = True
            elif not arg.startswith("--ref="):
                rest.append(arg)
        child = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *rest], env=env)

        def forward(signum: int, frame: Any) -> None:
            # A terminal's Ctrl-C reaches the child too; a kill of this pid alone does not.
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        return child.wait()  # the child stops its servers and cleans up
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)


def main() -> int:
    args = parse_args()
    if args.ref:
        return run_at_ref(args.ref, sys.argv[1:])
    import seed

    import emporium as emporium_package

    source = os.environ.get("BENCH_SOURCE") or f"working tree ({git_commit()})"
    print(f"emporium from {Path(emporium_package.__file__).parent}: {source}", flush=True)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)
    RESULTS.mkdir(exist_ok=True)
    seeded: dict[str, Any] | None = None
    created_db = False
    servers: list[Server] = []
    failures: list[str] = []
    metrics_dir = tempfile.TemporaryDirectory(prefix="emporium-bench-metrics-")
    workdir = Path(tempfile.mkdtemp(prefix="emporium-bench-"))
    try:
        if not args.skip_seed:
            created_db = True
            seeded = seed.prepare(args.pg, args.db, count=args.count, datasets=args.datasets)
        else:
            seed.ensure_key_file(args.pg, args.db, fresh=False)
        inputs = asyncio.run(gather_inputs(args.pg, args.db, args.sample))
        all_scenarios = build_scenarios(inputs)
        scenarios = all_scenarios
        if args.only:
            wanted = set(args.only.split(","))
            unknown = wanted - {s.key for s in all_scenarios}
            if unknown:
                raise BenchError(f"unknown scenario(s) {sorted(unknown)} for --only")
            scenarios = [s for s in all_scenarios if s.key in wanted]

        env = seed.emporium_env(args.pg, args.db)
        env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir.name
        for item in args.emporium_env:
            key, _, value = item.partition("=")
            env[key] = value
        emporium_port, baseline_port = free_port(), free_port()
        emporium = Server(
            "emporium",
            [
                *seed.emporium_command(),
                "serve",
                "--port",
                str(emporium_port),
                "--workers",
                str(args.workers),
            ],
            env,
            emporium_port,
        )
        baseline = Server(
            "baseline",
            [
                sys.executable,
                str(BENCH / "raw_baseline.py"),
                "--port",
                str(baseline_port),
                "--workers",
                str(args.workers),
            ],
            {**os.environ, "BASELINE_DSN": seed.dsn(args.pg, args.db)},
            baseline_port,
        )
        servers = [emporium, baseline]
        if not args.no_sqlite and any(s.server == "sqlite" for s in scenarios):
            sqlite_file = seed.sqlite_path(args.db)
            if not (args.skip_seed and sqlite_file.exists()):
                seed.seed_sqlite(args.pg, args.db)
            sqlite_port = free_port()
            servers.append(
                Server(
                    "sqlite",
                    [
                        *seed.emporium_command(),
                        "serve",
                        "--port",
                        str(sqlite_port),
                        "--workers",
                        str(args.workers),
                    ],
                    {**env, "EMPORIUM_DATABASE_URL": f"sqlite+aiosqlite:///{sqlite_file}"},
                    sqlite_port,
                )
            )
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
        print(
            f"servers ready: emporium {emporium.base} (pids {emporium.worker_pids()}), "
            f"baseline {baseline.base} (pids {baseline.worker_pids()})",
            flush=True,
        )
        by_name = {s.name: s for s in servers}
        sanity_checks(by_name, inputs, all_scenarios)
        print(
            f"catalog: {inputs['products']:,} products, {inputs['variants']:,} variants, "
            f"{inputs['categories']} categories; sanity checks passed",
            flush=True,
        )
        print(
            f"wrk: {args.connections} connections, {args.threads} threads, "
            f"{args.warmup:g} s warm-up + {args.duration:g} s per scenario",
            flush=True,
        )
        for round_number in range(1, args.rounds + 1):
            if args.rounds > 1:
                print(f" round {round_number}/{args.rounds}", flush=True)
            for scenario in scenarios:
                if scenario.server not in by_name:
                    continue
                run_scenario(scenario, by_name[scenario.server], workdir, args)
                r = scenario.runs[-1]
                if r["requests"] == 0:
                    failures.append(
                        f"{scenario.key}: no request completed (try a longer --duration)"
                    )
                if r["non_2xx"] or r["socket_errors"]:
                    failures.append(
                        f"{scenario.key}: {r['non_2xx']} non-2xx responses, "
                        f"{r['socket_errors']} socket errors/timeouts"
                    )

        text, bars = report(scenarios, inputs)
        print(text)
        document = {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": source,
            "commit": git_commit(),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "postgres": inputs["postgres"],
                "wrk": wrk_version(),
            },
            "settings": {
                "connections": args.connections,
                "wrk_threads": args.threads,
                "workers": args.workers,
                "duration_s": args.duration,
                "rounds": args.rounds,
                "warmup_s": args.warmup,
                "emporium_env": args.emporium_env,
                "baseline_pool_size_per_worker": int(os.environ.get("BASELINE_POOL_SIZE", "20")),
            },
            "catalog": {
                k: inputs[k]
                for k in (
                    "products",
                    "published",
                    "variants",
                    "categories",
                    "database_size",
                    "category_count",
                    "leaf_count",
                    "word_counts",
                )
            },
            "seed": seeded,
            "scenarios": [
                {
                    "key": s.key,
                    "label": s.label.strip(),
                    "server": s.server,
                    "note": s.note,
                    "path_example": s.paths[0],
                    "distinct_paths": len(s.paths),
                    **s.result,
                    "rounds_rps": [r["rps"] for r in s.runs],
                }
                for s in scenarios
                if s.result
            ],
            "bars": bars,
            "failures": failures,
        }
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(document, indent=2) + "\n")
        shown = args.output.relative_to(REPO) if args.output.is_relative_to(REPO) else args.output
        print(f"\nwritten: {shown}")

        if args.profile:
            print("\nprofiling (py-spy on one worker per server; numbers of this pass not used):")
            import pyspy_summary

            for scenario in scenarios:
                if scenario.server not in ("emporium", "baseline"):
                    continue
                out = profile_scenario(scenario, by_name[scenario.server], workdir, args)
                if out is not None:
                    print(pyspy_summary.summarise(out, top=12))
        if failures:
            print("\n!!! FAILED: " + "; ".join(failures), file=sys.stderr)
            return 1
        return 0
    except BenchError as exc:
        print(f"\n!!! BENCH ERROR: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        metrics_dir.cleanup()
        if created_db and not args.keep_db:
            asyncio.run(seed.drop_database(args.pg, args.db))
            seed.key_file(args.db).unlink(missing_ok=True)
            print(f"dropped database {args.db!r} (--keep-db keeps it)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
