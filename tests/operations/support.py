"""The shipped deployment files, rendered for a test: nginx with free loopback ports and a
self-signed certificate, systemd units pointing at this checkout, real node processes.

Rendering changes only addresses, ports and paths; every other line of the shipped file is
what runs. Each replacement must hit, so a change of the file's shape fails the tests.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from servers import EMPORIUM, free_port

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
NGINX_CONF = DEPLOY / "nginx" / "emporium.conf"
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None
)
NODE_LINE = re.compile(
    r"^(\s*)server \S+:\d+ ((?:max_fails|fail_timeout)\S+ \S+);\s*# node-\d+\n", re.M
)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``localhost`` and ``127.0.0.1`` (P-256, one day) and its
    key, as PEM files in ``folder``; the certificate is also the CA a client trusts."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"deploy/nginx/emporium.conf no longer has {old!r}"
    return text.replace(old, new)


@dataclass
class Nginx:
    """nginx running ``deploy/nginx/emporium.conf`` from ``folder``, in front of ``nodes``
    (loopback ports); ``down`` lists nodes marked ``down`` (taken out of rotation)."""

    folder: Path
    nodes: list[int]
    cert: Path
    key: Path
    https_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    down: set[int] = field(default_factory=set)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def main_conf(self) -> Path:
        return self.folder / "nginx.conf"

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def render(self) -> Path:
        """Write the site file (the shipped one, addresses and paths replaced) and a main
        configuration that includes it; returns the main configuration."""
        text = NGINX_CONF.read_text()
        nodes = NODE_LINE.findall(text)
        assert len(nodes) >= 2, "the shipped upstream should list several nodes"
        indent, params = nodes[0]
        lines = "".join(
            f"{indent}server 127.0.0.1:{port} {params}{' down' if port in self.down else ''};\n"
            for port in self.nodes
        )
        text = NODE_LINE.sub("", text, count=len(nodes) - 1)
        text = NODE_LINE.sub(lines, text)
        text = _replace(text, "    listen [::]:80;\n", "")
        text = _replace(text, "    listen [::]:443 ssl http2;\n", "")
        text = _replace(text, "listen 80;", f"listen 127.0.0.1:{self.http_port};")
        text = _replace(text, "listen 443 ssl", f"listen 127.0.0.1:{self.https_port} ssl")
        text = _replace(text, "/etc/ssl/emporium/fullchain.pem", str(self.cert))
        text = _replace(text, "/etc/ssl/emporium/privkey.pem", str(self.key))
        (self.folder / "emporium.conf").write_text(text)
        temp = "\n".join(
            f"    {kind}_temp_path {self.folder / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read this folder
        self.main_conf.write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {self.folder / 'nginx.pid'};\n"
            f"error_log {self.folder / 'error.log'} warn;\n"
            "events { worker_connections 512; }\n"
            f"http {{\n    access_log {self.folder / 'access.log'};\n{temp}\n"
            f"    include {self.folder / 'emporium.conf'};\n}}\n"
        )
        return self.main_conf

    def command(self, *args: str) -> list[str]:
        assert NGINX is not None
        return [
            NGINX,
            "-p",
            str(self.folder),
            "-c",
            str(self.main_conf),
            "-e",
            str(self.folder / "error.log"),
            *args,
        ]

    def check(self) -> subprocess.CompletedProcess[str]:
        """``nginx -t`` on the rendered configuration."""
        self.render()
        return subprocess.run(self.command("-t"), capture_output=True, text=True)

    def start(self) -> None:
        self.render()
        self.proc = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.folder / "error.log").read_text()
            try:
                httpx.get(f"http://127.0.0.1:{self.http_port}/", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError("nginx did not start")

    def reload(self, down: set[int]) -> None:
        """Mark ``down`` nodes down, check the configuration and reload it (SIGHUP), as an
        operator would (``nginx -t && nginx -s reload``); wait for the new workers."""
        assert self.proc is not None
        self.down = down
        checked = self.check()
        assert checked.returncode == 0, checked.stderr
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)  # new workers take over; old ones finish their requests

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@contextmanager
def nginx_running(folder: Path, nodes: list[int]) -> Iterator[Nginx]:
    """nginx with the shipped site file in front of ``nodes``; stopped on the way out."""
    cert, key = self_signed(folder)
    server = Nginx(folder=folder, nodes=nodes, cert=cert, key=key)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@dataclass
class Node:
    """One ``emporium serve`` (or ``emporium worker``) process of a test cluster."""

    env: dict[str, str]
    cwd: Path
    port: int = field(default_factory=free_port)
    args: tuple[str, ...] = ("serve",)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *extra: str, ready_within: float = 120) -> None:
        argv = [EMPORIUM, *self.args]
        if self.args == ("serve",):
            argv += ["--port", str(self.port), *extra]
        log = (self.cwd / f"node-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(argv, cwd=self.cwd, env=self.env, stdout=log, stderr=log)
        log.close()
        if self.args != ("serve",):
            return
        deadline = time.monotonic() + ready_within
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.cwd / f"node-{self.port}.log").read_text()
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.base} was not ready within {ready_within} s")

    def terminate(self) -> None:
        """SIGTERM (what ``systemctl stop`` sends) and wait for the exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL: the node dies with requests in hand."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)
