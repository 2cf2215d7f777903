"""Operations endpoints outside ``/api/v1``: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import ipaddress
from typing import Any

from litestar import Request, Response, get
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins.prometheus import PrometheusController
from sqlalchemy import text

from emporium.core.auth import is_staff
from emporium.core.config import Settings
from emporium.core.errors import Forbidden, problem, problem_responses


@get("/healthz", tags=["operations"], summary="Liveness")
async def healthz() -> dict[str, str]:
    """``200 {"status": "ok"}`` while the process runs."""
    return {"status": "ok"}


@get("/readyz", tags=["operations"], summary="Readiness", responses=problem_responses(503))
async def readyz(request: Request[Any, Any, Any]) -> Response[Any]:
    """``200`` when the database (and Redis, when configured) answer; else ``503`` problem."""
    state = request.app.state
    failed: list[str] = []
    try:
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:  # any failure means "not ready"
        failed.append("database")
    if state.redis is not None:
        try:
            await state.redis.ping()
        except Exception:
            failed.append("redis")
    if failed:
        return problem(503, "not_ready", "Not ready: " + ", ".join(failed) + " unreachable.")
    return Response({"status": "ready"})


def _metrics_allowed(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    settings: Settings = connection.app.state.settings
    if settings.metrics_public or is_staff(connection):
        return
    host = connection.client.host if connection.client else ""
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise Forbidden("Metrics are served to loopback clients or with the admin key.")


class MetricsController(PrometheusController):
    """``GET /metrics`` in Prometheus text format: loopback, admin key, or public by setting."""

    path = "/metrics"
    guards = [_metrics_allowed]
    include_in_schema = False
