"""A plain webhook receiver on 127.0.0.1: it records each request's body and headers as they
arrived (no verification), so a test can hand them to the code under test."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One delivery: the raw body and the headers (names lower-cased)."""

    body: bytes
    headers: dict[str, str]


@dataclass
class WebhookSink:
    """What the sink got, in arrival order; it answers ``status``."""

    url: str = ""
    status: int = 200
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until ``count`` deliveries arrived; answer them (AssertionError after
        ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} deliveries, got {len(self.received)}")


class _Server(ThreadingHTTPServer):
    sink: WebhookSink
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        sink = self.server.sink
        with sink.lock:
            sink.received.append(Received(body, {k.lower(): v for k, v in self.headers.items()}))
        self.send_response(sink.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@contextmanager
def running_webhook_sink() -> Iterator[WebhookSink]:
    """A :class:`WebhookSink` on a free port of 127.0.0.1 until the block ends."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.sink = WebhookSink(url=f"http://127.0.0.1:{server.server_address[1]}/hooks")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.sink
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
