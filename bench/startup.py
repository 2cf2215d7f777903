"""Start-up bench: how long ``emporium --help`` and ``emporium serve`` take to be useful.

Each figure is measured in the same run as its baseline and printed as a ratio:

- ``emporium --help`` (spawn to exit) against ``python -c pass`` (the interpreter alone);
- ``emporium serve`` (spawn to the first ``200`` from ``/readyz``) against a bare ASGI app
  served by the same uvicorn stack (uvloop, httptools), spawn to its first ``200``; on
  SQLite (a migrated file) and, with ``--pg``, on a fresh migrated PostgreSQL database
  (created and dropped by the bench).

It reports; it asserts no timing. The machine's load average is printed with the figures,
since other processes slow every start::

    .venv/bin/python bench/startup.py --runs 5
    .venv/bin/python bench/startup.py --runs 5 --pg postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

EMPORIUM = str(Path(sys.executable).parent / "emporium")


async def _bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The baseline: answers ``200 {}`` to any HTTP request."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def _serve_bare(port: int) -> None:
    import uvicorn

    uvicorn.run(_bare_app, port=port, loop="uvloop", http="httptools", log_level="warning")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _time_exit(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _time_ready(argv: list[str], port: int, env: dict[str, str], cwd: Path) -> float:
    """Seconds from spawning ``argv`` to the first ``200`` of ``/readyz`` on ``port``."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while time.perf_counter() - start < 120:
            if proc.poll() is not None:
                raise SystemExit(f"{argv} exited with {proc.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return time.perf_counter() - start
            except httpx.TransportError:
                time.sleep(0.02)
        raise SystemExit(f"{argv} was not ready within 120 s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _stats(samples: list[float]) -> str:
    return (
        f"median {statistics.median(samples):6.3f} s  min {min(samples):6.3f}  "
        f"max {max(samples):6.3f}  (n={len(samples)})"
    )


def _compare(name: str, measure: Callable[[], float], base: Callable[[], float], runs: int) -> None:
    ours, theirs = [], []
    for _ in range(runs):  # interleaved, so both see the same machine
        theirs.append(base())
        ours.append(measure())
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"{name}\n  emporium  {_stats(ours)}\n  baseline  {_stats(theirs)}")
    print(f"  ratio     {ratio:.1f}x the baseline (median)")


def _env(database_url: str, key_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPORIUM_")}
    return env | {
        "EMPORIUM_DATABASE_URL": database_url,
        "EMPORIUM_KEY_FILE": str(key_file),
        "EMPORIUM_LOG_LEVEL": "WARNING",
    }


def _prepare(env: dict[str, str], cwd: Path) -> None:
    subprocess.run([EMPORIUM, "db", "upgrade"], env=env, cwd=cwd, check=True, capture_output=True)
    if not Path(env["EMPORIUM_KEY_FILE"]).exists():
        subprocess.run([EMPORIUM, "keys", "init"], env=env, cwd=cwd, check=True)


async def _admin(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _serve_comparison(label: str, env: dict[str, str], cwd: Path, runs: int) -> None:
    def ours() -> float:
        port = _free_port()
        return _time_ready([EMPORIUM, "serve", "--port", str(port)], port, env, cwd)

    def base() -> float:
        port = _free_port()
        argv = [sys.executable, __file__, "--bare-app", str(port)]
        return _time_ready(argv, port, env, cwd)

    _compare(f"serve, spawn to /readyz 200 ({label})", ours, base, runs)


def main() -> None:
    """Measure and print; exit 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pg", help="PostgreSQL server URL (postgresql://...): also measure it")
    parser.add_argument("--bare-app", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_app:
        _serve_bare(args.bare_app)
        return
    print(
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
        f"{os.cpu_count()} cores"
    )
    _compare(
        "emporium --help, spawn to exit",
        lambda: _time_exit([EMPORIUM, "--help"]),
        lambda: _time_exit([sys.executable, "-c", "pass"]),
        args.runs,
    )
    with tempfile.TemporaryDirectory(prefix="emporium-startup-") as tmp:
        cwd = Path(tmp)
        env = _env(f"sqlite+aiosqlite:///{cwd / 'shop.db'}", cwd / "keys.json")
        _prepare(env, cwd)
        _serve_comparison("SQLite", env, cwd, args.runs)
        if args.pg:
            name = f"emporium_startup_{uuid.uuid4().hex[:8]}"
            asyncio.run(_admin(args.pg, f"CREATE DATABASE {name}"))
            try:
                server = args.pg.rsplit("/", 1)[0]
                env = _env(
                    f"postgresql+asyncpg://{server.split('://', 1)[1]}/{name}", cwd / "keys.json"
                )
                _prepare(env, cwd)
                _serve_comparison("PostgreSQL", env, cwd, args.runs)
            finally:
                asyncio.run(_admin(args.pg, f"DROP DATABASE {name} WITH (FORCE)"))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
