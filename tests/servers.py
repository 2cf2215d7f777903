"""Real ``emporium serve`` processes for tests that need several nodes or real clients."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

import httpx

from emporium.core.config import Settings

EMPORIUM = str(Path(sys.executable).parent / "emporium")
ROUTE_LIMITS = [
    name
    for name in Settings.model_fields
    if name.startswith("rate_limit_") and name != "rate_limit_general"
]


def server_env(
    database_url: str, key_file: Path | str, *, route_limits: bool = True, **settings: str
) -> dict[str, str]:
    """The environment of an ``emporium`` process: this process's without any ``EMPORIUM_*``
    setting, plus the database, the key file, WARNING logs and ``settings`` (named as in
    ``Settings``); ``route_limits=False`` turns every per-route rate limit off."""
    values = {"database_url": database_url, "key_file": str(key_file), "log_level": "WARNING"}
    if not route_limits:
        values |= dict.fromkeys(ROUTE_LIMITS, "")
    values |= settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPORIUM_")}
    return env | {f"EMPORIUM_{name.upper()}": value for name, value in values.items()}


def upgrade_database(env: dict[str, str], cwd: Path) -> None:
    """``emporium db upgrade`` with ``env`` (a fresh SQLite file needs its schema)."""
    done = subprocess.run([EMPORIUM, "db", "upgrade"], env=env, cwd=cwd, capture_output=True)
    assert done.returncode == 0, done.stderr.decode(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Wait until ``base``/readyz answers 200; fail if the process exits or time runs out."""
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited early"
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base} did not become ready")


@contextmanager
def servers(count: int, env: dict[str, str], cwd: Path) -> Iterator[list[str]]:
    """``count`` ``emporium serve`` processes; their base URLs once all are ready."""
    with ExitStack() as stack:
        procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        for _ in range(count):
            port = free_port()
            proc = subprocess.Popen(
                [EMPORIUM, "serve", "--port", str(port)],
                cwd=cwd,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            stack.callback(_stop, proc)
            procs.append((f"http://127.0.0.1:{port}", proc))
        deadline = time.monotonic() + 60
        for base, proc in procs:
            wait_ready(base, proc, deadline)
        yield [base for base, _ in procs]


@contextmanager
def serving(
    env: dict[str, str], cwd: Path, port: int | None = None, log: IO[bytes] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """One ``emporium serve`` process (on ``port``, or a free one) for a test that kills it:
    its base URL and process once ready; killed (if still alive) on the way out. Its
    standard error goes to ``log`` when given."""
    port = free_port() if port is None else port
    proc = subprocess.Popen(
        [EMPORIUM, "serve", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if log is None else log,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, proc, time.monotonic() + 60)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=20)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=20)
