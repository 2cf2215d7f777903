"""CPU per request of Emporium's request pipeline, in process: no server, no socket.

Drives the ASGI application built by ``create_app`` directly with ``GET
/api/v1/products/{id}`` for one product (the product cache warm after the first call, so no
database work), and reports the process CPU time per request in microseconds: for the whole
application, and for the same application with layers peeled off (``asgi_handler`` replaced by
the layer inside it), next to a bare ASGI app answering the same bytes (the floor). It asserts
nothing; compare the rows of one run.

    .venv/bin/python bench/pipeline_micro.py --db emporium_bench_read   # a seeded bench database
    .venv/bin/python bench/pipeline_micro.py --db emporium_bench_read --profile-only hot \\
        # loops forever, for py-spy
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import seed  # bench/seed.py, next to this file

Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


_EXTRA: dict[str, Any] = {}  # "litestar_app", which Litestar.__call__ sets for its layers


def _scope(path: str) -> dict[str, Any]:
    return {
        **_EXTRA,
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", b"wrk"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _call(app: Asgi, path: str) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope(path), receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


async def _time(app: Asgi, paths: list[str], rounds: int) -> float:
    """Best of ``rounds`` process-CPU microseconds per request over ``paths``."""
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        started = time.process_time()
        for path in paths:
            await _call(app, path)
        best = min(best, (time.process_time() - started) / len(paths) * 1e6)
    return best


def _bare(body: bytes) -> Asgi:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def _layers(app: Any) -> list[tuple[str, Asgi]]:
    """The ASGI layers from the outermost in, each with what it wraps (``.app``)."""
    layers: list[tuple[str, Asgi]] = []
    handler = app.asgi_handler
    while hasattr(handler, "app") and not hasattr(handler, "asgi_handler"):
        layers.append((type(handler).__name__, handler))
        handler = handler.app
    layers.append((type(handler).__name__, handler))
    return layers


async def _baseline(pg: str, database: str) -> Any:
    """``bench/raw_baseline.py``'s application with its pool open (its own lifespan)."""
    import asyncpg
    import raw_baseline

    app = raw_baseline.BaselineApp()
    app.pool = await asyncpg.create_pool(
        seed.dsn(pg, database), min_size=1, max_size=2, init=raw_baseline._init_connection
    )
    return app


async def main(args: argparse.Namespace) -> None:
    """Build the app on the bench database, warm the cache, time each layer and the misses."""
    os.environ.update(seed.emporium_env(args.pg, args.db))
    from emporium.app import create_app
    from emporium.core.config import load_settings

    app = create_app(load_settings())
    _EXTRA["litestar_app"] = app
    baseline = await _baseline(args.pg, args.db)
    async with app.lifespan():
        pool = app.state.resources.raw_pool
        ids = await pool.fetch("SELECT id FROM product WHERE published LIMIT $1", args.n)
        hot = [f"/api/v1/products/{ids[0]['id']}"] * args.n
        status, body = await _call(app, hot[0])
        assert status == 200, (status, body[:200])
        rows: list[tuple[str, Asgi]] = [("bare ASGI (same bytes)", _bare(body))]
        rows += [(f"from {name} in", layer) for name, layer in reversed(_layers(app))]
        rows.append(("whole app", app))
        for _, layer in rows:  # warm every layer once
            await _call(layer, hot[0])
        misses = [f"/api/v1/products/{row['id']}" for row in ids]
        if args.profile_only:
            if args.profile_only == "miss":
                app.state.product_reads.cache.max_entries = 0
            while True:
                await _time(app, hot if args.profile_only == "hot" else misses, 1)
        print(f"GET {hot[0]} x {args.n}, best of {args.rounds}, process CPU per request")
        for name, layer in rows:
            print(f"  {name:40s} {await _time(layer, hot, args.rounds):8.1f} us")
        baseline_paths = [path.removeprefix("/api/v1") for path in misses]
        print(f"{len(ids)} different products, product cache off: every read a miss")
        print(f"  {'raw_baseline.py':40s} {await _time(baseline, baseline_paths, 2):8.1f} us")
        app.state.product_reads.cache.max_entries = 0
        for name, layer in rows[1:]:
            print(f"  {name:40s} {await _time(layer, misses, 2):8.1f} us")
        print(f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    await baseline.pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default="emporium_bench")
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--profile-only",
        choices=["hot", "miss"],
        help="loop the whole app forever on cache hits or misses (for py-spy)",
    )
    asyncio.run(main(parser.parse_args()))
