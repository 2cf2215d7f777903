"""Two real server processes on one database: signing out on one is honoured by the other
at once, because every node checks the session in the shared database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from accounts.support import PASSWORD
from emporium.core.config import Settings

EMPORIUM = str(Path(sys.executable).parent / "emporium")


def _free_port() -> int:
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
def _servers(count: int, env: dict[str, str], cwd: Path) -> Iterator[list[str]]:
    """``count`` ``emporium serve`` processes; their base URLs once all are ready."""
    with ExitStack() as stack:
        procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        for _ in range(count):
            port = _free_port()
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


def test_logout_on_one_node_is_honoured_by_the_other(
    settings: Settings, key_file: Path, tmp_path: Path
) -> None:
    """Sign in on node 1, read the profile on node 2; after logout on node 1 the same token
    is refused on node 2 at once, and so is the refresh token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPORIUM_")}
    env["EMPORIUM_DATABASE_URL"] = settings.database_url
    env["EMPORIUM_KEY_FILE"] = str(key_file)
    env["EMPORIUM_LOG_LEVEL"] = "WARNING"
    if settings.is_sqlite:
        upgrade = subprocess.run(
            [EMPORIUM, "db", "upgrade"], env=env, cwd=tmp_path, capture_output=True, check=False
        )
        assert upgrade.returncode == 0, upgrade.stderr.decode(errors="replace")

    email = f"two.nodes.{uuid.uuid4().hex[:8]}@example.com"
    with _servers(2, env, tmp_path) as (one, two):
        response = httpx.post(
            f"{one}/api/v1/auth/register", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        response = httpx.post(
            f"{one}/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        pair = response.json()
        headers = {"Authorization": f"Bearer {pair['access_token']}"}

        response = httpx.get(f"{two}/api/v1/users/me", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["email"] == email

        response = httpx.post(f"{one}/api/v1/auth/logout", headers=headers)
        assert response.status_code == 204, response.text
        response = httpx.get(f"{two}/api/v1/users/me", headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        response = httpx.post(
            f"{two}/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert response.status_code == 401, response.text
        response = httpx.get(f"{one}/api/v1/users/me", headers=headers)
        assert response.status_code == 401, response.text
