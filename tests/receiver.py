"""A real HTTP receiver of webhooks on 127.0.0.1, run in a thread, that verifies every
request with the Standard Webhooks reference library and records what it got.

Imported by tests as ``receiver`` (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    """One request: its Standard Webhooks id, whether the signature verified, the parsed
    body, when it arrived and was answered (monotonic seconds), and its headers (names in
    lower case)."""

    webhook_id: str
    verified: bool
    body: Any
    started: float
    ended: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Receiver:
    """What the receiver saw; ``secret`` is set by the test once the endpoint exists."""

    url: str
    secret: str | None = None
    status: int = 200
    delay: float = 0.0
    hold: Callable[[Received], None] | None = None
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> list[str]:
        """The webhook ids received, in order."""
        with self.lock:
            return [r.webhook_id for r in self.requests]

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        """Block until ``count`` requests arrived (AssertionError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return
            time.sleep(0.05)
        raise AssertionError(f"expected {count} requests, got {len(self.requests)}")


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            got = Received(headers.get("webhook-id", ""), False, None, time.monotonic())
            got.headers = headers
            try:
                if receiver.secret is None:
                    raise WebhookVerificationError("no secret")
                got.body = Webhook(receiver.secret).verify(body, headers)
                got.verified = True
            except WebhookVerificationError:
                got.verified = False
            with receiver.lock:
                receiver.requests.append(got)
            if receiver.hold is not None:
                receiver.hold(got)
            time.sleep(receiver.delay)
            got.ended = time.monotonic()
            self.send_response(receiver.status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    return Handler


@contextmanager
def running_receiver(host: str = "127.0.0.1") -> Iterator[Receiver]:
    """A receiver listening on a free port of ``host`` until the block ends."""
    server_class = ThreadingHTTPServer
    if ":" in host:

        class V6Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6

        server_class = V6Server
    server = server_class((host, 0), _handler(Receiver(url="")))
    port = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    receiver = Receiver(url=f"http://{shown}:{port}/hooks")
    server.RequestHandlerClass = _handler(receiver)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
