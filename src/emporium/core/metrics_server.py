"""A minimal HTTP/1.1 server for ``GET /metrics`` inside a process that serves no API
(``emporium worker``), on its own event loop, so that scrape-time probes run as on a node.

It answers ``GET /metrics`` (200, Prometheus text format) and ``HEAD``; any other path is a
404 and any other method a 405; every connection is closed after one answer. A request
must arrive within :data:`READ_SECONDS` and fit in :data:`MAX_HEAD_BYTES`. No
authentication: it listens on ``127.0.0.1`` unless ``EMPORIUM_WORKER_METRICS_HOST`` says
otherwise, so put it on a private network only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from emporium.core.metrics import CONTENT_TYPE, NamedProbe, exposition

READ_SECONDS = 5.0
MAX_HEAD_BYTES = 8192


def _answer(status: str, body: bytes, content_type: str, *, head: bool = False) -> bytes:
    """An HTTP/1.1 response that closes the connection."""
    lines = [
        f"HTTP/1.1 {status}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + (b"" if head else body)


class MetricsServer:
    """Serves ``/metrics`` of this process plus ``probes`` on ``host:port``."""

    def __init__(
        self, probes: Sequence[NamedProbe], *, timeout_seconds: float, host: str, port: int
    ) -> None:
        self.probes = probes
        self.timeout = timeout_seconds
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen; returns the bound port (useful with ``port=0``). Raises OSError when the
        address is taken."""
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=MAX_HEAD_BYTES
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and wait for the connections in progress."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _respond(self, reader: asyncio.StreamReader) -> bytes:
        """The answer to one request read from ``reader``."""
        text = "text/plain; charset=utf-8"
        try:
            async with asyncio.timeout(READ_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return _answer("400 Bad Request", b"bad request\n", text)
        method, _, rest = head.decode("latin-1").partition(" ")
        path = rest.partition(" ")[0].partition("?")[0]
        if path != "/metrics":
            return _answer("404 Not Found", b"not found: try /metrics\n", text)
        if method not in ("GET", "HEAD"):
            return _answer("405 Method Not Allowed", b"method not allowed\n", text)
        body = await exposition(self.probes, timeout_seconds=self.timeout)
        return _answer("200 OK", body, CONTENT_TYPE, head=method == "HEAD")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(await self._respond(reader))
            await writer.drain()
        except ConnectionError:
            pass  # the client went away
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
