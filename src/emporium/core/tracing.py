"""OpenTelemetry tracing: off unless ``EMPORIUM_TRACING`` is set, then configured by the
standard ``OTEL_*`` variables and initialised once per process (``serve``: by ``create_app``
in each server process; ``worker``: by the command).

Nothing here imports OpenTelemetry at import time, and every function is a flag test when
tracing is off, so the default path pays nothing. When on: the W3C Trace Context
(``traceparent``) of the current span is stored with each outbox event and job
(:func:`current_context`), and each job attempt runs in a span whose parent is that context
(:func:`job_span`), so a trace goes from the HTTP request through the outbox into the jobs and
their outgoing HTTP calls (httpx, which sends ``traceparent`` too). Instrumented: the ASGI
server (:func:`instrument_asgi`), asyncpg (PostgreSQL: ORM and raw pool), httpx and Redis.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, cast

from emporium.core.config import Settings

if TYPE_CHECKING:
    from litestar.types import ASGIApp
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span

TRACER_NAME = "emporium"
DEFAULT_SERVICE_NAME = "emporium"
UNTRACED_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})
UNTRACED_URLS = r"^https?://[^/]+/(metrics|healthz|readyz)/?(\?.*)?$"
"""Probes and scrapes make no spans (``OpenTelemetryMiddleware`` matches its excluded URLs
against the whole request URL, scheme and host included)."""


class _State:
    """The process's tracing state: set once by :func:`configure_tracing`."""

    active = False
    instrumented = False


def tracing_active() -> bool:
    """Whether this process traces (configured, and not turned off again)."""
    return _State.active


def sdk_disabled() -> bool:
    """``OTEL_SDK_DISABLED=true``: the standard switch that turns the SDK off."""
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def _otlp_protocol() -> str:
    return (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()


def exporter_names() -> list[str]:
    """``OTEL_TRACES_EXPORTER`` (default ``otlp``) as a list of names, checked.

    Raises ``ValueError`` for a name other than ``otlp``, ``console`` or ``none``, or for an
    OTLP protocol other than ``http/protobuf`` (the one exporter installed)."""
    raw = os.environ.get("OTEL_TRACES_EXPORTER") or "otlp"
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    unknown = sorted(set(names) - {"otlp", "console", "none"})
    if unknown:
        raise ValueError(
            f"OTEL_TRACES_EXPORTER: unknown exporter {', '.join(unknown)} "
            "(Emporium ships otlp, console and none)"
        )
    if "otlp" in names and _otlp_protocol() != "http/protobuf":
        raise ValueError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={_otlp_protocol()}: Emporium exports OTLP over "
            "http/protobuf only (point it at the collector's port 4318)"
        )
    return [name for name in names if name != "none"]


def _exporters() -> list[SpanExporter]:
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    exporters: list[SpanExporter] = []
    for name in exporter_names():
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())  # endpoint, headers, timeout: OTEL_EXPORTER_*
        else:
            exporters.append(ConsoleSpanExporter())
    return exporters


def build_provider(role: str) -> TracerProvider:
    """A tracer provider from the ``OTEL_*`` variables: resource (``OTEL_SERVICE_NAME``,
    default ``emporium``; ``OTEL_RESOURCE_ATTRIBUTES``), sampler (``OTEL_TRACES_SAMPLER``),
    exporters (``OTEL_TRACES_EXPORTER``: :func:`exporter_names`), each behind a batch
    processor (``OTEL_BSP_*``). ``role`` (``serve``, ``worker``) becomes the resource
    attribute ``emporium.process``. Raises ``ValueError`` like :func:`exporter_names`."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"emporium.process": role})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    for exporter in _exporters():
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def configure_tracing(
    settings: Settings, *, role: str, provider: TracerProvider | None = None
) -> bool:
    """Start tracing in this process when ``settings.tracing`` is on and ``OTEL_SDK_DISABLED``
    is not; returns whether the process traces. Idempotent: the first call sets the global
    tracer provider (``provider``, or :func:`build_provider`) and instruments asyncpg,
    httpx and Redis; later calls change nothing. Raises ``ValueError`` for unusable
    ``OTEL_*`` values (:func:`exporter_names`)."""
    if _State.active or not settings.tracing or sdk_disabled():
        return _State.active
    from opentelemetry import trace

    if provider is None:
        provider = build_provider(role)
    if trace.get_tracer_provider() is not provider:  # set once per process
        trace.set_tracer_provider(provider)
    _instrument_libraries(trace.get_tracer_provider())
    _State.active = True
    return True


def _instrument_libraries(provider: Any) -> None:
    """Patch asyncpg, httpx and Redis (class-level, so clients made before are covered)."""
    if _State.instrumented:
        return
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    RedisInstrumentor().instrument(tracer_provider=provider)
    _State.instrumented = True


def stop_tracing() -> None:
    """Flush the spans still buffered and stop tracing in this process (tests; the SDK also
    flushes at exit). Library patches are removed; the global provider stays (OpenTelemetry
    sets it once per process)."""
    if not _State.active:
        return
    from opentelemetry import trace
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    provider = trace.get_tracer_provider()
    force_flush = getattr(provider, "force_flush", None)
    if callable(force_flush):
        force_flush()
    AsyncPGInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
    HTTPXClientInstrumentor().uninstrument()
    RedisInstrumentor().uninstrument()
    _State.instrumented = False
    _State.active = False


def current_context() -> dict[str, str] | None:
    """The current span's W3C Trace Context as a carrier (``{"traceparent": ...}``, plus
    ``tracestate`` and ``baggage`` when set), to store with an event or a job; None when
    tracing is off or no span is current."""
    if not _State.active:
        return None
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


def publish_context(event_type: str, event_id: uuid.UUID) -> dict[str, str] | None:
    """Record the publication of an outbox event as a ``PRODUCER`` span (``<type> publish``,
    OpenTelemetry messaging conventions) under the current span, and return its context
    (:func:`current_context`) for the event row; None when tracing is off."""
    if not _State.active:
        return None
    from opentelemetry import trace

    tracer = trace.get_tracer(TRACER_NAME)
    attributes = {
        "messaging.system": "emporium.outbox",
        "messaging.operation.type": "send",
        "messaging.destination.name": event_type,
        "messaging.message.id": str(event_id),
    }
    kind = trace.SpanKind.PRODUCER
    with tracer.start_as_current_span(f"{event_type} publish", kind=kind, attributes=attributes):
        return current_context()


_UNTRACED: AbstractContextManager[None] = nullcontext()
"""What :func:`job_span` gives when tracing is off (reusable, yields None)."""


def job_span(
    kind: str, job_id: uuid.UUID, attempt: int, carrier: Mapping[str, str] | None
) -> AbstractContextManager[Span | None]:
    """Run one job attempt in a ``CONSUMER`` span ``job <kind>`` whose parent is the context
    stored with the job (``carrier``; a new trace without one); the block gets the span, or
    None when tracing is off. An exception escaping the block marks the span as an error."""
    if not _State.active:
        return _UNTRACED
    return _job_span(kind, job_id, attempt, carrier)


def background() -> AbstractContextManager[None]:
    """Around a runner's polling (claims, dispatch, schedules): its database statements make
    no spans (one orphan trace per poll otherwise); a job's span (:func:`job_span`) turns
    instrumentation back on inside it."""
    if not _State.active:
        return _UNTRACED
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    return suppress_instrumentation()


def _unsuppressed() -> Any:
    """The current context with instrumentation allowed again (see :func:`background`)."""
    from opentelemetry import context
    from opentelemetry.instrumentation.utils import (  # type: ignore[attr-defined]
        _SUPPRESS_INSTRUMENTATION_KEY,
        _SUPPRESS_INSTRUMENTATION_KEY_PLAIN,
    )

    ctx = context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, False)
    return context.set_value(_SUPPRESS_INSTRUMENTATION_KEY_PLAIN, False, ctx)


@contextmanager
def _job_span(
    kind: str, job_id: uuid.UUID, attempt: int, carrier: Mapping[str, str] | None
) -> Iterator[Span]:
    from opentelemetry import context, propagate, trace

    base = _unsuppressed()
    parent = propagate.extract(carrier, context=base) if carrier else base
    attributes: dict[str, str | int] = {
        "messaging.system": "emporium.jobs",
        "messaging.operation.type": "process",
        "messaging.destination.name": kind,
        "messaging.message.id": str(job_id),
        "emporium.job.attempt": attempt,
    }
    tracer = trace.get_tracer(TRACER_NAME)
    token = context.attach(base)  # the span is made current on top of the current context
    try:
        with tracer.start_as_current_span(
            f"job {kind}", context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes
        ) as span:
            yield span
    finally:
        context.detach(token)


def mark_failed(span: Span | None, error: str) -> None:
    """Set ``span``'s status to error with ``error`` as its description (no-op for None)."""
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    span.set_status(Status(StatusCode.ERROR, error[:500]))


def add_trace_ids(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: add ``trace_id`` (32 hex digits) and ``span_id`` (16) of the
    current span, as W3C Trace Context writes them, when one is current."""
    if not _State.active:
        return event_dict
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


def span_ids() -> dict[str, str]:
    """``{trace_id, span_id}`` of the current span (empty without one): for a log line
    written later, outside the span it describes (the job runner logs results a turn later)."""
    return dict(add_trace_ids(None, "", {}))


class _RouteName:
    """Inside the server span: when the answer starts (the route is known, the span not yet
    ended), name the span after the matched route (``POST /api/v1/orders``, low
    cardinality) and record the request id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Pass the call on, renaming the current span as the response starts."""

        async def naming_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                _name_span(scope)
            await send(message)

        await self.app(scope, receive, naming_send)


def _name_span(scope: Any) -> None:
    from opentelemetry import trace

    if scope.get("type") != "http":
        return
    span = trace.get_current_span()
    template = scope.get("path_template")
    if template:
        span.update_name(f"{scope['method']} {template}")
        span.set_attribute("http.route", template)
    request_id = scope.get("state", {}).get("request_id")
    if request_id:
        span.set_attribute("emporium.request_id", str(request_id))


class _QuietProbes:
    """Probes and scrapes run with instrumentation suppressed: the readiness check's
    database and Redis calls make no orphan spans either."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Pass the call on, quietly for ``/healthz``, ``/readyz`` and ``/metrics``."""
        if scope.get("path") not in UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        with suppress_instrumentation():
            await self.app(scope, receive, send)


def instrument_asgi(app: ASGIApp) -> ASGIApp:
    """``app`` inside OpenTelemetry's ASGI middleware (server spans, ``traceparent`` of
    incoming requests honoured), probes and ``/metrics`` excluded; ``app`` unchanged when
    tracing is off."""
    if not _State.active:
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.util.http import parse_excluded_urls

    wrapped = OpenTelemetryMiddleware(
        _RouteName(app),
        excluded_urls=parse_excluded_urls(UNTRACED_URLS),
        exclude_spans=["receive", "send"],
    )
    return cast("ASGIApp", _QuietProbes(cast("ASGIApp", wrapped)))
