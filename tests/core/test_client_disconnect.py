"""A client that goes away in the middle of sending its body is not a server error: the
request ends as 499 (the status proxies log for it) and nothing is logged as an unhandled
exception, so that an operator's error alerts only fire for the server's own failures."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from emporium.core import errors
from factories import API, on_app_loop

Message = dict[str, Any]


async def _call_and_leave(app: Litestar, path: str) -> list[Message]:
    """POST half a JSON body to ``path``, then disconnect; returns what the app sent."""
    sent: list[Message] = []
    incoming: list[Message] = [
        {"type": "http.request", "body": b'{"email": "half', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", b"200"),
        ],
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    return sent


class Recorder:
    """Stands in for a structlog logger: keeps the events logged."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, **_: self.events.append(f"{level}:{event}")


async def test_a_client_leaving_mid_body_is_a_499_not_a_500(
    app: Litestar, monkeypatch: pytest.MonkeyPatch
) -> None:
    errors_log = Recorder()
    monkeypatch.setattr(errors, "log", errors_log)
    async with AsyncTestClient(app=app) as client:  # the lifespan: engines, rate limiter
        sent = on_app_loop(client, _call_and_leave, app, f"{API}/carts")
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 499
    # No unhandled_exception for the operator to chase, one info line instead.
    assert errors_log.events == ["info:client_disconnected"]
