"""CI: schemathesis against a live ``emporium serve --demo``, driven by the server's own
OpenAPI document, once as an anonymous caller and once as a signed-in customer.

Checks: no server error (5xx) and every response conforms to its documented schema. The
server's log must hold no ``unhandled_exception`` either. Rate limits are off for the run
(one client sends thousands of requests; the limits have their own tests).

Usage: ``.venv/bin/python .ci/fuzz.py [MAX_EXAMPLES]`` (default 25 per operation).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from emporium.core.config import Settings

BIN = Path(sys.executable).parent
PASSWORD = "Quartz lantern drifts over 9 fjords"
CHECKS = "not_a_server_error,response_schema_conformance"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(url: str, body: dict[str, str]) -> dict[str, str]:
    response = httpx.post(url, json=body, timeout=10)
    response.raise_for_status()
    answer: dict[str, str] = response.json()
    return answer


def _wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit("fuzz: the server exited early")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.3)
    sys.exit("fuzz: the server did not become ready")


def _schemathesis(base: str, max_examples: str, *extra: str) -> int:
    command = [
        str(BIN / "schemathesis"),
        "run",
        f"{base}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        max_examples,
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "2",
        *extra,
    ]
    return subprocess.run(command, check=False).returncode


def main() -> int:
    """Run both passes; non-zero when either fails or the server logged a crash."""
    max_examples = sys.argv[1] if len(sys.argv) > 1 else "25"
    with tempfile.TemporaryDirectory(prefix="emporium-fuzz-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMPORIUM_")}
        env |= {
            f"EMPORIUM_{name.upper()}": ""
            for name in Settings.model_fields
            if name.startswith("rate_limit_")
        }
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [str(BIN / "emporium"), "serve", "--demo", "--port", str(port)],
                cwd=tmp,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_ready(base, server)
            email = "fuzz.customer@example.com"
            _post(f"{base}/api/v1/auth/register", {"email": email, "password": PASSWORD})
            token = _post(f"{base}/api/v1/auth/login", {"email": email, "password": PASSWORD})
            print("fuzz: anonymous caller", flush=True)
            anonymous = _schemathesis(base, max_examples)
            print("fuzz: signed-in customer", flush=True)
            customer = _schemathesis(
                base,
                max_examples,
                "--header",
                f"Authorization: Bearer {token['access_token']}",
                # These would end the run's own session (schemathesis reuses the session id
                # it read from GET /auth/sessions), leaving the rest of the pass anonymous.
                "--exclude-path",
                "/api/v1/auth/logout",
                "--exclude-path",
                "/api/v1/auth/sessions/{session_id}",
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
        crashes = [line for line in log_path.read_text().splitlines() if "unhandled_exc" in line]
        for line in crashes:
            print(f"fuzz: server crash: {line[:2000]}", file=sys.stderr)
    return 1 if anonymous or customer or crashes else 0


if __name__ == "__main__":
    sys.exit(main())
