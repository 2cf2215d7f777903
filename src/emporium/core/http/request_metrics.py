"""The HTTP request metrics of ``/metrics``, recorded by one pure-ASGI layer per route.

The same four metrics, names, help texts and labels (``method``, ``path`` = the route
template, ``status_code``, ``app_name``) as Litestar's ``PrometheusMiddleware`` configured with
``group_path=True``, which ``create_app`` used before: that one builds a ``Request``, a URL and
four label dictionaries, and looks each metric and its labelled child up again, on every
request (20% of a cached product read's CPU in process, ``bench/pipeline_micro.py``). Here the
labelled children are looked up once per (method, route, status) and kept.

Not for ``/metrics``, ``/healthz`` and ``/readyz``, like before. The in-progress gauge is
labelled ``status_code="200"`` (its value while the request runs), also like before.
"""

from __future__ import annotations

import re
import time
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter, Gauge, Histogram

APP_NAME = "emporium"
_LABELS = ["method", "path", "status_code", "app_name"]
REQUESTS = Counter("emporium_requests_total", "Total requests", _LABELS)
DURATION = Histogram("emporium_request_duration_seconds", "Request duration, in seconds", _LABELS)
IN_PROGRESS = Gauge(
    "emporium_requests_in_progress",
    "Total requests currently in progress",
    _LABELS,
    multiprocess_mode="livesum",
)
ERRORS = Counter("emporium_requests_error_total", "Total errors in requests", _LABELS)
_UNMEASURED = re.compile("^/metrics$|^/healthz$|^/readyz$")

# Labelled children, kept: (method, route) -> gauge; (method, route, status) -> (count, time).
_IN_PROGRESS: dict[tuple[str, str], Any] = {}
_DONE: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _in_progress(method: str, route: str) -> Any:
    child = _IN_PROGRESS.get((method, route))
    if child is None:
        child = _IN_PROGRESS[method, route] = IN_PROGRESS.labels(method, route, 200, APP_NAME)
    return child


def _record(method: str, route: str, status: int, seconds: float) -> None:
    """Count a finished request and observe its duration (errors: status 500 and above)."""
    children = _DONE.get((method, route, status))
    if children is None:
        labels = (method, route, status, APP_NAME)
        children = _DONE[method, route, status] = (
            REQUESTS.labels(*labels),
            DURATION.labels(*labels),
        )
    if status >= 500:
        ERRORS.labels(method, route, status, APP_NAME).inc()
    children[0].inc()
    children[1].observe(seconds)


def _unmeasured(scope: Scope) -> bool:
    handler = scope.get("route_handler")
    mounted = getattr(handler, "is_mount", False)
    return bool(_UNMEASURED.search(scope["raw_path"].decode() if mounted else scope["path"]))


class RequestMetrics:
    """Route middleware (``Litestar(middleware=[RequestMetrics])``): count each request,
    time it from its start to its last body message, and keep the in-progress gauge."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call, measured unless it is a probe or ``/metrics``."""
        if _unmeasured(scope):
            await self.app(scope, receive, send)
            return
        method: str = scope["method"] if scope["type"] == ScopeType.HTTP else scope["type"]
        route: str = scope["path_template"]
        started = time.perf_counter()
        status, duration = 200, 0.0

        async def measured_send(message: Message) -> None:
            nonlocal status, duration
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                duration = time.perf_counter() - started
            await send(message)

        gauge = _in_progress(method, route)
        gauge.inc()
        try:
            await self.app(scope, receive, measured_send)
        finally:
            gauge.dec()
            _record(method, route, status, duration)
