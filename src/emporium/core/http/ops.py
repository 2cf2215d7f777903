"""Operations endpoints outside ``/api/v1``: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import ipaddress
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.connection import ASGIConnection
from sqlalchemy import text

from emporium.core.errors import problem, problem_responses
from emporium.core.http.clientip import client_ip
from emporium.core.metrics import CONTENT_TYPE, NamedProbe, exposition
from emporium.core.resources import ResourcesDep


@get("/healthz", tags=["operations"], summary="Liveness")
async def healthz() -> dict[str, str]:
    """``200 {"status": "ok"}`` while the process runs."""
    return {"status": "ok"}


@get("/readyz", tags=["operations"], summary="Readiness", responses=problem_responses(503))
async def readyz(resources: ResourcesDep) -> Response[Any]:
    """``200 {"status": "ready", "redis": ..., "rate_limits": ...}`` when the database
    answers, else ``503`` problem (``not_ready``).

    Redis does not decide readiness (contract): its outage would take every node out of
    rotation at once. The body reports it instead: ``redis`` is ``up``, ``down`` or
    ``not_configured``; ``rate_limits`` is ``shared`` (counted in Redis) or ``per_process``.
    """
    try:
        async with resources.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:  # any failure means "not ready"
        return problem(503, "not_ready", "Not ready: database unreachable.")
    redis = await resources.rate_limiter.check_redis()
    return Response(
        {
            "status": "ready",
            "redis": {None: "not_configured", True: "up", False: "down"}[redis],
            "rate_limits": "shared" if resources.rate_limiter.shared else "per_process",
        }
    )


def loopback_client(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """True when the client (behind trusted proxies: the address they forwarded, so a proxy
    on the same host does not make every caller "local") is on the loopback network."""
    host = client_ip(connection) or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class MetricsController(Controller):
    """``GET /metrics`` in Prometheus text format (0.0.4); the app sets who may read it
    (guards). The app's scrape-time probes (``app.state.metric_probes``, a list of
    :class:`emporium.core.metrics.NamedProbe`) each run within
    ``EMPORIUM_METRICS_PROBE_TIMEOUT_SECONDS``."""

    path = "/metrics"
    include_in_schema = False

    @get()
    async def metrics(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        """The node's metrics, then the probes' (see ``core.metrics``)."""
        state = request.app.state
        probes: list[NamedProbe] = state.get("metric_probes", [])
        timeout = state.settings.metrics_probe_timeout_seconds
        body = await exposition(probes, timeout_seconds=timeout)
        return Response(body, media_type=CONTENT_TYPE)
