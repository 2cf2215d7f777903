"""Tracing (``core.tracing``) with the SDK's in-memory exporter: a checkout's trace runs from
the HTTP request through the outbox into the e-mail job and the webhook jobs, whose HTTP call
carries ``traceparent``; a failed attempt is an error span; log lines inside a span carry its
ids. Tracing off (the default): ``test_tracing_off.py``."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, Sequence

import pytest
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import SignIn
from emporium.core.config import Settings
from emporium.core.db.base import create_engine, create_sessionmaker
from emporium.core.logging import configure_logging
from emporium.core.tracing import configure_tracing, stop_tracing
from emporium.jobs.models import Job, OutboxEvent
from emporium.jobs.runner import Runner
from factories import API, Client
from orders.support import order, stocked_variants
from receiver import running_receiver
from runjobs import drain

_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on in this process, into an in-memory exporter (one provider per process:
    OpenTelemetry sets the global provider once); off again after the test."""
    _EXPORTER.clear()
    assert configure_tracing(Settings(tracing=True), role="test", provider=_PROVIDER)
    try:
        yield _EXPORTER
    finally:
        stop_tracing()
        _EXPORTER.clear()


@pytest.fixture
def settings(settings: Settings, spans: InMemorySpanExporter) -> Settings:
    """The test settings with tracing on (before the app is built) and webhooks allowed to
    reach the loopback receiver."""
    return settings.model_copy(update={"tracing": True, "webhooks_allow_private": True})


def _named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def _one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    found = _named(spans, name)
    assert len(found) == 1, (name, sorted(s.name for s in spans))
    return found[0]


def _child(spans: Sequence[ReadableSpan], name: str, parent: ReadableSpan) -> ReadableSpan:
    """The one span ``name`` whose parent is ``parent`` (other events make spans too)."""
    (found,) = [s for s in _named(spans, name) if _parent_of(s) == _id(parent)]
    return found


def _parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def _id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def _trace(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


async def _checkout_with_webhook(
    client: Client, sign_in: SignIn, admin_headers: dict[str, str], hook_url: str
) -> str:
    """Register ``hook_url`` for ``order.created``, then a customer places an order."""
    staff = await sign_in(roles=["staff"])
    customer = await sign_in()
    (variant,) = await stocked_variants(client, staff, 5)
    body = {"url": hook_url, "events": ["order.created"]}
    created = await client.post(f"{API}/webhooks", json=body, headers=admin_headers)
    assert created.status_code == 201, created.text
    placed = await order(client, customer, [(variant["id"], 1)])
    assert placed.status_code == 201, placed.text
    return str(created.json()["secret"])


async def test_a_checkout_trace_reaches_the_email_and_webhook_jobs(
    client: Client,
    sign_in: SignIn,
    admin_headers: dict[str, str],
    spans: InMemorySpanExporter,
    settings: Settings,
) -> None:
    """POST /orders -> ``order.created publish`` -> ``job mail.order_confirmation`` and
    ``job webhooks.deliver`` (fanned out when the event was dispatched, no job of its own)
    -> the httpx POST, one trace; the receiver gets a ``traceparent`` naming that trace and
    the httpx span."""
    with running_receiver() as receiver:
        receiver.secret = await _checkout_with_webhook(client, sign_in, admin_headers, receiver.url)
        assert await drain(client) >= 2
        (got,) = receiver.requests
    finished = spans.get_finished_spans()
    request = _one(finished, "POST /api/v1/orders")
    assert request.kind is SpanKind.SERVER
    assert request.attributes is not None
    assert request.attributes["http.route"] == "/api/v1/orders"
    publish = _one(finished, "order.created publish")
    assert publish.kind is SpanKind.PRODUCER
    assert _parent_of(publish) == _id(request)
    mail = _child(finished, "job mail.order_confirmation", publish)
    deliver = _child(finished, "job webhooks.deliver", publish)
    assert not [s for s in finished if s.name == "job webhooks.fanout"]
    assert {s.kind for s in (mail, deliver)} == {SpanKind.CONSUMER}
    assert _one(finished, "job webhooks.deliver") is deliver  # one endpoint, one delivery
    post = _child(finished, "POST", deliver)  # httpx names its span by the method
    assert post.kind is SpanKind.CLIENT
    traced = [request, publish, mail, deliver, post]
    assert {_trace(s) for s in traced} == {_trace(request)}
    version, trace_id, parent_id, _flags = got.headers["traceparent"].split("-")
    assert (version, trace_id, parent_id) == (
        "00",
        format(_trace(request), "032x"),
        format(_id(post), "016x"),
    )
    assert got.verified  # the added header leaves the signature intact
    if settings.database_url.startswith("postgresql"):  # asyncpg instrumented
        queries = [s for s in finished if _parent_of(s) == _id(request) and s is not publish]
        assert any((s.attributes or {}).get("db.system") == "postgresql" for s in queries)


async def test_probes_and_metrics_make_no_spans(
    client: Client, admin_headers: dict[str, str], spans: InMemorySpanExporter
) -> None:
    """Load balancers poll ``/readyz`` and Prometheus scrapes ``/metrics`` all day long: no
    spans for them (or for ``/healthz``), while an API call makes one."""
    spans.clear()  # the fixtures' own database calls
    for path in ("/healthz", "/readyz", "/metrics", "/readyz?full=1"):
        assert (await client.get(path, headers=admin_headers)).status_code == 200, path
    assert spans.get_finished_spans() == ()  # no server span, no database span
    assert (await client.get(f"{API}/categories")).status_code == 200
    served = [s.name for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert served == ["GET /api/v1/categories"]


async def test_a_running_runner_polls_without_spans_and_runs_jobs_in_theirs(
    client: Client,
    sign_in: SignIn,
    admin_headers: dict[str, str],
    settings: Settings,
    spans: InMemorySpanExporter,
) -> None:
    """``Runner.run`` (as in ``serve`` and ``worker``) polls the database many times a
    second: those statements make no spans (no orphan traces); every span left is a job's
    or inside one."""
    await _checkout_with_webhook(client, sign_in, admin_headers, "http://hooks.example.com/")
    spans.clear()
    engine = create_engine(settings)
    polling = settings.model_copy(update={"jobs_poll_seconds": 0.05})
    runner = Runner(client.app.state.job_runner.registry, create_sessionmaker(engine), polling)
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(3)
    runner.stop()
    await task
    await engine.dispose()
    finished = spans.get_finished_spans()
    roots = [s for s in finished if s.parent is None]
    assert roots
    assert {s.name.split(" ")[0] for s in roots} == {"job"}
    assert any(s.name == "job webhooks.deliver" for s in finished)
    if settings.database_url.startswith("postgresql"):  # instrumented again inside a job
        jobs = {_id(s) for s in finished if s.name.startswith("job ")}
        queries = [s for s in finished if (s.attributes or {}).get("db.system") == "postgresql"]
        assert any(_parent_of(q) in jobs for q in queries)


async def test_a_failed_job_attempt_is_an_error_span_under_the_same_trace(
    client: Client,
    sign_in: SignIn,
    admin_headers: dict[str, str],
    spans: InMemorySpanExporter,
) -> None:
    """The webhook receiver answers 500: the delivery job's span is marked as an error,
    still in the checkout's trace (its retry later is another span of that trace)."""
    with running_receiver() as receiver:
        receiver.status = 500
        receiver.secret = await _checkout_with_webhook(client, sign_in, admin_headers, receiver.url)
        await drain(client)
    finished = spans.get_finished_spans()
    request = _one(finished, "POST /api/v1/orders")
    deliver = _one(finished, "job webhooks.deliver")
    assert deliver.status.status_code is trace.StatusCode.ERROR
    assert deliver.status.description == "answered 500"
    assert _trace(deliver) == _trace(request)


async def test_events_and_jobs_store_the_trace_context(
    client: Client,
    sign_in: SignIn,
    admin_headers: dict[str, str],
    session: AsyncSession,
    spans: InMemorySpanExporter,
) -> None:
    """The stored carrier is the W3C one: the event names its publish span, and the jobs
    made from it carry the same context (the webhook delivery's too, made at dispatch)."""
    await _checkout_with_webhook(client, sign_in, admin_headers, "http://hooks.example.com/")
    event = (
        await session.scalars(select(OutboxEvent).where(OutboxEvent.type == "order.created"))
    ).one()
    publish = _one(spans.get_finished_spans(), "order.created publish")
    assert publish.context is not None
    flags = publish.context.trace_flags  # sampled (and "random trace id", W3C level 2)
    assert flags.sampled
    assert event.trace_context == {
        "traceparent": f"00-{_trace(publish):032x}-{_id(publish):016x}-{flags:02x}"
    }
    await drain(client)
    key = f"{event.id}:mail.order_confirmation"
    job = (await session.scalars(select(Job).where(Job.dedupe_key == key))).one()
    assert job.trace_context == event.trace_context
    deliver = (await session.scalars(select(Job).where(Job.kind == "webhooks.deliver"))).one()
    assert deliver.trace_context == event.trace_context


def test_log_lines_carry_the_current_trace_and_span_ids(
    spans: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    """Inside a span, structlog lines and standard-library lines (uvicorn, libraries) carry
    ``trace_id`` and ``span_id`` as W3C writes them; outside any span they carry neither."""
    configure_logging(Settings(tracing=True, log_format="json", log_level="INFO"))
    log = structlog.get_logger("emporium.test_tracing")
    capsys.readouterr()
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("outer") as span:
        log.info("inside", order_id="o-1")
        logging.getLogger("library").warning("from the standard library")
    log.info("outside")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    ids = {
        "trace_id": format(span.get_span_context().trace_id, "032x"),
        "span_id": format(span.get_span_context().span_id, "016x"),
    }
    inside, library, outside = lines
    assert inside["event"] == "inside"
    assert inside.items() >= ids.items()
    assert library["event"] == "from the standard library"
    assert library.items() >= ids.items()
    assert outside["event"] == "outside"
    assert "trace_id" not in outside
    assert "span_id" not in outside
