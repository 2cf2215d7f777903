"""End to end over OTLP/HTTP: a real ``emporium serve`` and a real ``emporium worker`` with
``EMPORIUM_TRACING=true`` export to an OTLP receiver this test runs on 127.0.0.1 (decoding
``ExportTraceServiceRequest`` with ``opentelemetry-proto``). A checkout sent with a client's
``traceparent`` continues that trace in the server, through the outbox, into the worker's
e-mail and webhook jobs and the webhook's HTTP call; both processes' JSON log lines carry the
trace id."""

from __future__ import annotations

import gzip
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from conftest import SignIn
from emporium.core.config import Settings
from factories import API, product_body, variant_body
from orders.support import ADDRESS
from receiver import running_receiver
from servers import EMPORIUM, server_env, serving

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


@dataclass(frozen=True)
class Exported:
    """One span as the receiver decoded it (ids in lower-case hex)."""

    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    resource: dict[str, str]


@dataclass
class Collector:
    """What the OTLP receiver got: spans, and the paths and content types of the requests."""

    url: str
    spans: list[Exported] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def named(self, name: str) -> list[Exported]:
        """The spans called ``name`` received so far."""
        with self.lock:
            return [s for s in self.spans if s.name == name]


def _decode(body: bytes) -> list[Exported]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    Exported(
                        span.name,
                        span.kind,
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.parent_span_id.hex(),
                        resource,
                    )
                )
    return spans


@contextmanager
def otlp_receiver() -> Iterator[Collector]:
    """An OTLP/HTTP trace receiver (``POST /v1/traces``, protobuf) on a free loopback port."""
    collector = Collector(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if self.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            spans = _decode(body)
            with collector.lock:
                collector.requests.append((self.path, self.headers.get("content-type", "")))
                collector.spans.extend(spans)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    collector.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield collector
    finally:
        server.shutdown()
        server.server_close()


def _env(settings: Settings, tmp_path: Path, collector: Collector) -> dict[str, str]:
    """Server and worker environment: tracing on, OTLP to the receiver, JSON logs at INFO."""
    env = server_env(
        settings.database_url,
        settings.key_file,
        route_limits=False,
        tracing="true",
        jobs_embedded="false",
        jobs_poll_seconds="0.2",
        webhooks_allow_private="true",
        mail_dir=str(tmp_path / "mail"),
        log_level="INFO",
        log_format="json",
    )
    env = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
    return env | {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }


@contextmanager
def running_worker(env: dict[str, str], cwd: Path, log: Path) -> Iterator[None]:
    """An ``emporium worker`` process, stopped with SIGTERM (spans are flushed at exit)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [EMPORIUM, "worker", "--name", "traced"], env=env, cwd=cwd, stderr=out
        )
        try:
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _shop(
    base: str, sign_in: SignIn, admin: dict[str, str], hook_url: str
) -> tuple[str, dict[str, str]]:
    """A product in stock, the webhook endpoint; returns the variant id and a customer."""
    staff = await sign_in(roles=["staff"])
    async with httpx.AsyncClient(base_url=base) as http:
        category = await http.post(f"{API}/categories", json={"name": "Traced"}, headers=staff)
        assert category.status_code == 201, category.text
        body = product_body(category.json()["id"], variants=[variant_body(stock=5)])
        product = await http.post(f"{API}/products", json=body, headers=staff)
        assert product.status_code == 201, product.text
        hook = {"url": hook_url, "events": ["order.created"]}
        created = await http.post(f"{API}/webhooks", json=hook, headers=admin)
        assert created.status_code == 201, created.text
    return str(product.json()["variants"][0]["id"]), await sign_in()


def _wait_for(collector: Collector, *names: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(collector.named(name) for name in names):
            return
        time.sleep(0.1)
    raise AssertionError(f"spans missing: {[n for n in names if not collector.named(n)]}")


def _json_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


@pytest.mark.slow
async def test_a_checkout_is_one_trace_across_server_and_worker_over_otlp(
    settings: Settings,
    sign_in: SignIn,
    admin_headers: dict[str, str],
    tmp_path: Path,
) -> None:
    """The request span continues the client's ``traceparent``; the worker's job spans and
    the webhook's HTTP call are in that trace, each under the span that caused it; the
    receiver of the webhook gets the trace too; server and worker log lines name it."""
    with otlp_receiver() as collector, running_receiver() as hooks:
        env = _env(settings, tmp_path, collector)
        server_log, worker_log = tmp_path / "serve.log", tmp_path / "worker.log"
        with server_log.open("wb") as log, serving(env, tmp_path, log=log) as (base, server):
            variant_id, customer = await _shop(base, sign_in, admin_headers, hooks.url)
            incoming = {"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"}
            body = {
                "shipping_address": ADDRESS,
                "items": [{"variant_id": variant_id, "quantity": 1}],
            }
            async with httpx.AsyncClient(base_url=base) as http:
                placed = await http.post(f"{API}/orders", json=body, headers=customer | incoming)
            assert placed.status_code == 201, placed.text
            with running_worker(env, tmp_path, worker_log):
                hooks.wait_for(1, timeout=60)
                _wait_for(collector, "job webhooks.deliver", "job mail.order_confirmation")
            server.terminate()
            server.wait(timeout=20)
        _wait_for(collector, "POST /api/v1/orders", "order.created publish")
    (request,) = collector.named("POST /api/v1/orders")
    assert request.kind == ProtoSpan.SPAN_KIND_SERVER
    assert (request.trace_id, request.parent_id) == (CLIENT_TRACE, CLIENT_SPAN)
    assert request.resource["service.name"] == "emporium"
    assert request.resource["emporium.process"] == "serve"
    (publish,) = [s for s in collector.named("order.created publish") if s.trace_id == CLIENT_TRACE]
    assert publish.parent_id == request.span_id
    in_trace = [s for s in collector.spans if s.trace_id == CLIENT_TRACE]

    def child(name: str, parent: Exported) -> Exported:
        """The span ``name`` under ``parent`` (the checkout's other events, such as
        ``inventory.low_stock``, make job spans in the same trace)."""
        (found,) = [s for s in in_trace if s.name == name and s.parent_id == parent.span_id]
        return found

    mail = child("job mail.order_confirmation", publish)
    deliver = child("job webhooks.deliver", publish)  # fanned out at dispatch: no job between
    for job in (mail, deliver):
        assert job.kind == ProtoSpan.SPAN_KIND_CONSUMER
        assert job.resource["emporium.process"] == "worker"
    (post,) = [s for s in in_trace if s.name == "POST" and s.parent_id == deliver.span_id]
    assert hooks.requests[0].headers["traceparent"].split("-")[1:3] == [CLIENT_TRACE, post.span_id]
    assert {path for path, _ in collector.requests} == {"/v1/traces"}
    assert {kind for _, kind in collector.requests} == {"application/x-protobuf"}
    _assert_logs_name_the_trace(server_log, worker_log, request, deliver)


def _assert_logs_name_the_trace(
    server_log: Path, worker_log: Path, request: Exported, deliver: Exported
) -> None:
    """The server's request line and the worker's job line: same JSON shape, each with the
    trace id and the id of the span it was written in."""
    (access,) = [
        line
        for line in _json_lines(server_log)
        if line.get("event") == "http_request" and line.get("path") == f"{API}/orders"
    ]
    assert (access["trace_id"], access["span_id"]) == (CLIENT_TRACE, request.span_id)
    done = [
        line
        for line in _json_lines(worker_log)
        if line.get("event") == "job_done" and line.get("kind") == "webhooks.deliver"
    ]
    assert [(d["trace_id"], d["span_id"]) for d in done] == [(CLIENT_TRACE, deliver.span_id)]
    shape = {"event", "level", "timestamp", "trace_id", "span_id"}
    assert shape <= access.keys()
    assert shape <= done[0].keys()


@pytest.mark.parametrize("command", [["worker"], ["serve", "--port", "1"]])
def test_an_unusable_exporter_setting_is_refused_at_start(
    tmp_path: Path, settings: Settings, command: list[str]
) -> None:
    """``OTEL_TRACES_EXPORTER=zipkin`` (not shipped) stops ``worker`` and ``serve`` before
    they start, with one clear line."""
    env = server_env(settings.database_url, settings.key_file, tracing="true")
    env = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
    env["OTEL_TRACES_EXPORTER"] = "zipkin"
    done = subprocess.run(
        [EMPORIUM, *command], env=env, cwd=tmp_path, capture_output=True, timeout=120
    )
    assert done.returncode == 1
    assert b"OTEL_TRACES_EXPORTER: unknown exporter zipkin" in done.stderr
