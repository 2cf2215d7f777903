"""The deployment files in ``deploy/`` as an operator runs them (not opt-in).

- ``deploy/nginx/emporium.conf`` passes ``nginx -t``; run by Debian's nginx in front of two
  stand-in upstreams, a POST whose node died with it in hand is never sent to the other node
  (the client gets 502 and retries with its Idempotency-Key), a GET is; the upstream sees
  the client's real address (never the one the client claimed) and ``https``.
- ``deploy/systemd/*.service`` pass ``systemd-analyze verify`` without a warning and score
  as hardened ("OK" or better) by ``systemd-analyze security``.

Each test skips with its reason when the tool is not installed (``.ci/run`` installs nginx).
"""

from __future__ import annotations

import http.server
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from operations.support import DEPLOY, NGINX, Nginx, nginx_running, self_signed
from servers import EMPORIUM

needs_nginx = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (apt-get install nginx)"
)
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (Debian package systemd)"
)
FORGED = "203.0.113.9"


@needs_nginx
def test_shipped_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    checked = Nginx(folder=tmp_path, nodes=[8001, 8002], cert=cert, key=key).check()
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


@dataclass
class Upstream:
    """A stand-in node: records each request (method, path, headers); a ``dying`` one reads
    the request and closes the connection without answering, as a node killed mid-request."""

    dying: bool
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def methods(self) -> list[str]:
        return [method for method, _, _ in self.seen]


@contextmanager
def upstream(dying: bool) -> Iterator[tuple[Upstream, int]]:
    state = Upstream(dying=dying)

    class Handler(http.server.BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            state.seen.append((self.command, self.path, dict(self.headers.items())))
            if state.dying:
                self.close_connection = True
                return
            body = json.dumps(dict(self.headers.items())).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _client(proxy: Nginx) -> httpx.Client:
    return httpx.Client(
        base_url=proxy.base, verify=ssl.create_default_context(cafile=str(proxy.cert)), timeout=10
    )


def _through_a_dying_node(folder: Path, method: str) -> tuple[list[int], Upstream, Upstream]:
    """Send ``method`` requests through a fresh nginx in front of a dying node and a live
    one until the dying node took one (round robin); the statuses and both nodes."""
    folder.mkdir()
    with (
        upstream(dying=True) as (dead, dead_port),
        upstream(dying=False) as (alive, alive_port),
        nginx_running(folder, [dead_port, alive_port]) as proxy,
        _client(proxy) as client,
    ):
        statuses: list[int] = []
        while method not in dead.methods() and len(statuses) < 4:
            body = {"cart_id": "x"} if method == "POST" else None
            statuses.append(client.request(method, "/api/v1/orders", json=body).status_code)
        assert method in dead.methods(), "round robin never chose the dying node"
        return statuses, dead, alive


@needs_nginx
@pytest.mark.slow
def test_nginx_never_resends_a_post_but_retries_a_get(tmp_path: Path) -> None:
    statuses, dead, alive = _through_a_dying_node(tmp_path / "post", "POST")
    # The POST the dying node took got 502 and never reached the other node.
    assert statuses.count(502) == dead.methods().count("POST") == 1
    assert alive.methods().count("POST") == statuses.count(200)

    statuses, dead, alive = _through_a_dying_node(tmp_path / "get", "GET")
    # Every GET answered 200: the one the dying node dropped went on to the next node.
    assert statuses == [200] * len(statuses)
    assert dead.methods().count("GET") == 1
    assert alive.methods().count("GET") == len(statuses)


@needs_nginx
@pytest.mark.slow
def test_nginx_forwards_the_real_client_address_and_scheme(tmp_path: Path) -> None:
    with (
        upstream(dying=False) as (node, port),
        upstream(dying=False) as (other, other_port),
        nginx_running(tmp_path, [port, other_port]) as proxy,
        _client(proxy) as client,
    ):
        answer = client.get("/api/v1/products", headers={"X-Forwarded-For": FORGED})
        assert answer.status_code == 200
        headers = {k.lower(): v for k, v in answer.json().items()}
        # The client's own X-Forwarded-For is replaced by the address nginx saw.
        assert headers["x-forwarded-for"] == "127.0.0.1"
        assert headers["x-forwarded-proto"] == "https"
        assert len(headers["x-request-id"]) == 32
        seen = [headers for _, _, headers in node.seen + other.seen]
        assert [h["X-Forwarded-For"] for h in seen] == ["127.0.0.1"]
        plain = httpx.get(f"http://127.0.0.1:{proxy.http_port}/api/v1/products?x=1")
        assert plain.status_code == 308
        assert plain.headers["location"].startswith("https://127.0.0.1")


def _rendered_units(folder: Path) -> list[Path]:
    """The shipped units with this checkout's ``emporium`` in ``ExecStart`` (verify checks
    that the program exists), as instances ``@8000`` and ``@1``."""
    units = []
    for name, instance in (("emporium-serve@", "8000"), ("emporium-worker@", "1")):
        text = (DEPLOY / "systemd" / f"{name}.service").read_text()
        assert "/opt/emporium/.venv/bin/emporium" in text
        (folder / f"{name}.service").write_text(
            text.replace("/opt/emporium/.venv/bin/emporium", EMPORIUM)
        )
        units.append(folder / f"{name}{instance}.service")
    return units


@needs_systemd
def test_systemd_units_verify_cleanly(tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    for unit in _rendered_units(tmp_path):
        done = subprocess.run(
            [SYSTEMD_ANALYZE, "verify", "--man=no", str(unit)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr.strip() == "", done.stderr
        assert done.stdout.strip() == "", done.stdout


@needs_systemd
def test_systemd_units_are_hardened(tmp_path: Path) -> None:
    """``systemd-analyze security`` rates exposure 0 (locked down) to 10 (none); the units
    must stay at or under 2.0 ("OK"), i.e. keep ProtectSystem=strict, NoNewPrivileges,
    PrivateTmp, no capabilities, a system-call filter, and the rest."""
    assert SYSTEMD_ANALYZE is not None
    for unit in _rendered_units(tmp_path):
        done = subprocess.run(
            [SYSTEMD_ANALYZE, "security", "--offline=yes", "--threshold=20", str(unit)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stdout[-2000:]
        text = unit.with_name(unit.name.split("@")[0] + "@.service").read_text()
        for setting in ("ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes"):
            assert setting in text
        assert "ReadWritePaths=/var/lib/emporium" in text
        assert "EnvironmentFile=/etc/emporium/emporium.env" in text
