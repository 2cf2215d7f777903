"""Real ``emporium serve`` processes for tests that need several nodes or real clients."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

EMPORIUM = str(Path(sys.executable).parent / "emporium")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(base: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
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
            _wait_ready(base, proc, deadline)
        yield [base for base, _ in procs]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=20)
