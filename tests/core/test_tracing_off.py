"""Tracing is off by default (``core.tracing``): a checkout and its jobs store no trace
context, the app is not wrapped in OpenTelemetry's middleware, and log lines carry no ids."""

from __future__ import annotations

import json

import pytest
import structlog
from litestar import Litestar
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import SignIn
from emporium.core.config import Settings
from emporium.core.logging import configure_logging
from emporium.core.tracing import configure_tracing, tracing_active
from emporium.jobs.models import Job, OutboxEvent
from factories import API, Client
from orders.support import order, stocked_variants
from runjobs import drain


async def test_a_checkout_stores_no_trace_context_by_default(
    client: Client,
    app: Litestar,
    sign_in: SignIn,
    admin_headers: dict[str, str],
    session: AsyncSession,
) -> None:
    """Without ``EMPORIUM_TRACING`` the order's events and jobs carry no context and the
    ASGI app is Emporium's own outermost middleware."""
    assert not tracing_active()
    assert "opentelemetry" not in type(app.asgi_handler).__module__
    staff = await sign_in(roles=["staff"])
    (variant,) = await stocked_variants(client, staff, 5)
    body = {"url": "http://hooks.example.com/", "events": ["order.created"]}
    assert (await client.post(f"{API}/webhooks", json=body, headers=admin_headers)).is_success
    placed = await order(client, await sign_in(), [(variant["id"], 1)])
    assert placed.status_code == 201, placed.text
    assert await drain(client) >= 2  # the e-mail and the webhook delivery
    events = list(await session.scalars(select(OutboxEvent)))
    jobs = list(await session.scalars(select(Job)))
    assert events
    assert {"mail.order_confirmation", "webhooks.deliver"} <= {j.kind for j in jobs}
    assert {e.trace_context for e in events} | {j.trace_context for j in jobs} == {None}


def test_otel_sdk_disabled_wins_over_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """``OTEL_SDK_DISABLED=true`` (the standard switch) keeps tracing off even with
    ``EMPORIUM_TRACING=true``."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not configure_tracing(Settings(tracing=True), role="test")
    assert not tracing_active()


def test_log_lines_carry_no_trace_ids_when_off(capsys: pytest.CaptureFixture[str]) -> None:
    """With tracing off the JSON lines keep their shape without ``trace_id``/``span_id``."""
    configure_logging(Settings(log_format="json", log_level="INFO"))
    capsys.readouterr()
    structlog.get_logger("emporium.test_tracing_off").info("plain")
    (line,) = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert line["event"] == "plain"
    assert "trace_id" not in line
    assert "span_id" not in line
