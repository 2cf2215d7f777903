"""The application factory: ``create_app(settings)`` returns the ASGI app.

Settings are injected, never read at import time, so tests can build two apps side by side.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any, get_args

import asyncpg
from litestar import Litestar, Request, Router, get
from litestar.config.compression import CompressionConfig
from litestar.config.cors import CORSConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme, Server
from litestar.response import Response
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from emporium import __version__
from emporium.accounts.identity import identify, role
from emporium.accounts.protect import AccountsContext, build_context, provide_accounts
from emporium.accounts.routes import accounts_router
from emporium.accounts.schemas import ApiScope, Role
from emporium.audit.routes import audit_router
from emporium.backups.routes import backups_router
from emporium.catalog.cache import CategoryTree, ProductCache
from emporium.catalog.changes import install_change_tracking
from emporium.catalog.reads import ProductReads, provide_product_reads
from emporium.catalog.routes import catalog_router
from emporium.catalog.schemas import ProductSort
from emporium.core.clock import SYSTEM_CLOCK, Clock, ClockMiddleware
from emporium.core.config import Settings, load_settings
from emporium.core.crypto.keys import load_key_file
from emporium.core.db.base import create_engine, create_read_engine, create_sessionmaker
from emporium.core.db.changes import ChangeFeed
from emporium.core.db.fair_pool import FairPool
from emporium.core.db.uow import provide_reader, provide_session
from emporium.core.errors import Forbidden, handle_exception
from emporium.core.http.admin_ui import admin_ui_router
from emporium.core.http.clientip import ProxyTrust
from emporium.core.http.docs_viewer import OfflineSwaggerPlugin
from emporium.core.http.hardening import RequestGate, SecurityHeaders
from emporium.core.http.middleware import ConventionsMiddleware, check_json_body
from emporium.core.http.openapi import (
    API_KEY_SCHEME,
    declare_api_keys,
    declare_closed_bodies,
    declare_one_of,
    declare_refusals,
    name_enums,
    operation_id,
)
from emporium.core.http.ops import MetricsController, healthz, loopback_client, readyz
from emporium.core.http.ratelimit import RateLimiter, backend_probe
from emporium.core.http.request_metrics import RequestMetrics
from emporium.core.logging import configure_logging
from emporium.core.metrics import sample_raw_pool, watch_pool
from emporium.core.resources import Resources, provide_resources
from emporium.core.tracing import configure_tracing, instrument_asgi
from emporium.fulfilment.routes import fulfilment_router
from emporium.fulfilment.schemas import FulfillmentStatus as ParcelStatus
from emporium.giftcards.routes import giftcards_router
from emporium.giftcards.schemas import GiftCardStatus
from emporium.giftcards.schemas import MovementKind as GiftCardMovementKind
from emporium.importers.routes import importers_router
from emporium.inventory.ledger import install_ledger_hook
from emporium.inventory.routes import inventory_router
from emporium.inventory.schemas import MovementKind
from emporium.jobs.metrics import queue_probe
from emporium.jobs.routes import Status as JobStatus
from emporium.jobs.routes import jobs_router
from emporium.jobs.runner import Runner
from emporium.jobwork import build_registry as build_registry  # re-exported for tests
from emporium.orders import idempotency
from emporium.orders import queries as orders_queries
from emporium.orders import service as orders_service
from emporium.orders.cart_routes import carts_router
from emporium.orders.routes import orders_router
from emporium.orders.schemas import (
    FulfillmentStatus,
    OrderStatus,
    PaymentStatus,
    TransitionTarget,
)
from emporium.payments import queries as payments_queries
from emporium.payments.providers import build_providers
from emporium.payments.providers.stripe import StripeProvider
from emporium.payments.routes import payments_router
from emporium.payments.schemas import PaymentStatus as PaymentState
from emporium.payments.schemas import RefundStatus
from emporium.payments.service import PaymentsContext
from emporium.promotions.routes import promotions_router
from emporium.promotions.schemas import PromotionType
from emporium.returns import service as returns_service
from emporium.returns.routes import returns_router
from emporium.returns.schemas import ReturnStatus
from emporium.reviews import queries as reviews_queries
from emporium.reviews import writing as reviews_writing
from emporium.reviews.routes import reviews_router
from emporium.reviews.schemas import ReviewStatus
from emporium.shipping.routes import shipping_router
from emporium.webhooks.delivery import WebhooksContext
from emporium.webhooks.routes import webhooks_router
from emporium.webhooks.schemas import EventType

API_PREFIX = "/api/v1"


def _start_runner(app: Litestar, settings: Settings) -> list[asyncio.Task[None]]:
    """The embedded job runner (``EMPORIUM_JOBS_EMBEDDED``), on ``app.state.job_runner``."""
    state = app.state
    resources: Resources = state.resources
    state.webhooks = WebhooksContext(ring=state.accounts.vault.ring)
    registry = build_registry(settings, state.accounts, state.webhooks)
    state.job_runner = Runner(registry, resources.sessionmaker, settings, clock=resources.clock)
    if not settings.jobs_embedded:
        return []
    return [asyncio.create_task(state.job_runner.run(), name="emporium-job-runner")]


def _open_redis(settings: Settings, limiter: RateLimiter) -> Any:
    """Redis when configured (else None), sharing the rate-limit counters of every node."""
    if not settings.redis_url:
        return None
    from redis.asyncio import Redis

    timeout = settings.redis_timeout_seconds
    redis = Redis.from_url(
        settings.redis_url, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    # Rate-limit counters shared by every node (closed with the resources' redis).
    limiter.share_through_redis(
        redis, timeout_seconds=timeout, cooldown_seconds=settings.redis_retry_seconds
    )
    return redis


def _raw_dsn(url: str) -> str:
    """A database URL as asyncpg and the change feed's listener take it."""
    dsn = make_url(url).set(drivername="postgresql")
    return dsn.render_as_string(hide_password=False)


async def _open(app: Litestar, settings: Settings) -> list[asyncio.Task[None]]:
    """Open the application's ``Resources`` (engines, change feed, raw pool, Redis) and the
    product read on ``app.state``; start the job runner and the change feed's listener."""
    state = app.state
    engine = create_engine(settings)
    cache = ProductCache(
        max_entries=settings.cache_max_entries, ttl_seconds=settings.cache_ttl_seconds
    )
    state.accounts = build_context(
        settings,
        load_key_file(settings.key_file),
        erasure_steps=(
            reviews_writing.anonymise_author,
            idempotency.erase_customer,
            orders_service.erase_customer,
        ),
        export_sections=(
            orders_queries.export_customer,
            payments_queries.export_customer,
            returns_service.export_customer,
            reviews_queries.export_author,
        ),
    )
    raw_pool = await _open_raw_pool(settings)
    resources = state.resources = Resources(
        settings=settings,
        clock=state.clock,
        engine=engine,
        read_engine=create_read_engine(settings),
        sessionmaker=create_sessionmaker(engine),
        change_feed=ChangeFeed(),
        rate_limiter=state.rate_limiter,
        raw_pool=raw_pool,
        redis=_open_redis(settings, state.rate_limiter),
    )
    categories = CategoryTree(ttl_seconds=settings.cache_ttl_seconds)
    resources.change_feed.subscribe(cache.invalidate)
    resources.change_feed.subscribe(categories.invalidate)
    state.product_reads = ProductReads(resources.read_engine, cache, categories, raw_pool)
    state.payments = PaymentsContext(
        state.accounts.vault,
        build_providers(settings, state.accounts.vault.ring, resources.sessionmaker),
        settings.payments_capture,
    )
    tasks = _start_runner(app, settings)
    _watch_metrics(app, settings)
    if settings.is_sqlite:
        return tasks
    # LISTEN needs a session of its own: never through a transaction-pooling PgBouncer.
    listen = resources.change_feed.run(
        _raw_dsn(settings.database_listen_url or settings.database_url)
    )
    tasks.append(asyncio.create_task(listen, name="emporium-change-feed"))
    if raw_pool is not None:
        sample = sample_raw_pool(raw_pool, "raw", max_size=settings.database_pool_size)
        tasks.append(asyncio.create_task(sample, name="emporium-raw-pool-metrics"))
    return tasks


async def _open_raw_pool(settings: Settings) -> FairPool | None:
    """The asyncpg pool of the catalog reads on PostgreSQL, serving its callers in arrival
    order (``core.db.fair_pool``); ``None`` on SQLite and behind a transaction-pooling
    PgBouncer, where those reads go through SQLAlchemy instead, whose statements then run
    inside transactions (core.db.base.create_engine)."""
    if settings.is_sqlite or settings.database_pgbouncer:
        return None
    pool = await asyncpg.create_pool(
        _raw_dsn(settings.database_url),
        min_size=0,
        max_size=settings.database_pool_size,
        timeout=settings.database_connect_timeout_seconds,
        reset=_keep_session,
    )
    return FairPool(pool)


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The raw pool's reset on release: nothing beyond what asyncpg always does (roll back
    an open transaction, drop listeners). Its connections only run single ``SELECT``s (the
    catalog reads), which change no session state, so asyncpg's default reset statement
    (``RESET ALL; CLOSE ALL; UNLISTEN *; pg_advisory_unlock_all()``) would be a second round
    trip per read with nothing to undo: 20% of a worker's samples on cache misses."""


def _watch_metrics(app: Litestar, settings: Settings) -> None:
    """The pool gauges of both engines and the scrape-time probes of ``/metrics``."""
    state = app.state
    resources: Resources = state.resources
    state.pool_watches = [
        watch_pool(resources.engine, "primary"),
        watch_pool(resources.read_engine, "read"),
    ]
    state.metric_probes = [
        queue_probe(
            resources.sessionmaker,
            state.job_runner.registry.handlers,
            timeout_seconds=settings.metrics_probe_timeout_seconds,
        ),
        backend_probe(resources.rate_limiter),
    ]


RUNNER_STOP_SECONDS = 10.0


async def _close(app: Litestar, tasks: list[asyncio.Task[None]]) -> None:
    runners = [t for t in tasks if t.get_name() == "emporium-job-runner"]
    if runners:  # let jobs in hand finish (a job cut short is retried after its lease)
        app.state.job_runner.stop()
        await asyncio.wait(runners, timeout=RUNNER_STOP_SECONDS)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.to_thread(app.state.job_runner.registry.close)
    for provider in app.state.payments.providers.values():
        if isinstance(provider, StripeProvider):
            await provider.aclose()
    for stop_watching in app.state.pool_watches:
        stop_watching()
    resources: Resources = app.state.resources
    if resources.raw_pool is not None:
        await resources.raw_pool.close()
    if resources.redis is not None:
        await resources.redis.aclose()
    await resources.engine.dispose()
    if isinstance(resources.read_engine, AsyncEngine):
        await resources.read_engine.dispose()
    else:
        resources.read_engine.dispose()


def _lifespan(settings: Settings) -> Any:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncGenerator[None, None]:
        tasks = await _open(app, settings)
        # Everything alive now (modules, routes, compiled statements) lives as long as the
        # process: move it out of the collector's sight, so full collections under load
        # traverse only request garbage (measured: full-GC time per 10 s from 2.0 s to 0.07 s).
        gc.freeze()
        try:
            yield
        finally:
            await _close(app, tasks)

    return lifespan


async def _metrics_allowed(connection: ASGIConnection[Any, Any, Any, Any], _: Any) -> None:
    """Metrics go to loopback clients, to admins, or to anyone when configured public."""
    settings: Settings = connection.app.state.settings
    if settings.metrics_public or loopback_client(connection):
        return
    identity = await identify(connection)
    if identity is None or not identity.is_admin:
        raise Forbidden("Metrics are served to loopback clients and admins.")


class Metrics(MetricsController):
    """``GET /metrics`` behind :func:`_metrics_allowed`."""

    guards = [_metrics_allowed]


def _accounts(state: State) -> AccountsContext:
    """The ``accounts`` dependency for every room's handlers (the accounts and orders
    routers declare the same one; Litestar refuses one provider function at two levels)."""
    return provide_accounts(state)


def _settings_provider(settings: Settings) -> Provide:
    def provide() -> Settings:
        return settings

    return Provide(provide, use_cache=True, sync_to_thread=False)


_NAMED_ENUMS = {
    "OrderStatus": get_args(OrderStatus),
    "PaymentStatus": get_args(PaymentStatus),
    "FulfillmentStatus": get_args(FulfillmentStatus),
    "OrderTransitionTarget": get_args(TransitionTarget),
    "ProductSort": get_args(ProductSort),
    "JobStatus": get_args(JobStatus),
    "ReviewStatus": get_args(ReviewStatus),
    "StockMovementKind": get_args(MovementKind),
    "WebhookEvent": get_args(EventType),
    "Role": get_args(Role),
    "ApiScope": get_args(ApiScope),
    "PaymentState": get_args(PaymentState),
    "RefundStatus": get_args(RefundStatus),
    "PromotionType": get_args(PromotionType),
    "GiftCardStatus": get_args(GiftCardStatus),
    "GiftCardMovementKind": get_args(GiftCardMovementKind),
    "ParcelStatus": get_args(ParcelStatus),
    "ReturnStatus": get_args(ReturnStatus),
}
"""The enums of the API, named in the OpenAPI document (components) for generated clients."""
_OPENAPI_HOOKS = [
    declare_closed_bodies,
    declare_refusals,
    declare_api_keys,
    declare_one_of,
    name_enums(_NAMED_ENUMS),
]


def _api_router() -> Router:
    """Every room's routes under ``/api/v1``."""
    return Router(
        path=API_PREFIX,
        route_handlers=[
            accounts_router,
            catalog_router,
            inventory_router,
            orders_router,
            reviews_router,
            jobs_router,
            audit_router,
            webhooks_router,
            backups_router,
            shipping_router,
            carts_router,
            payments_router,
            promotions_router,
            giftcards_router,
            fulfilment_router,
            returns_router,
            importers_router,
        ],
    )


def _openapi_config() -> OpenAPIConfig:
    """The OpenAPI document's settings: title, version, the viewer, operation ids and the
    two security schemes (bearer tokens, API keys)."""
    return OpenAPIConfig(
        title="Emporium API",
        version=__version__,
        description=(
            "Headless commerce back-end. Errors are RFC 9457 problem details. Admins see "
            "people's e-mail, names and phone masked (GET /users, GET /users/{id}); "
            "GET /users/{id}?reveal=true shows them, and every such read (and every staff "
            "read of another person's order) is recorded in the audit trail "
            "(GET /audit-events)."
        ),
        servers=[Server(url="/")],
        path="/docs",
        render_plugins=[OfflineSwaggerPlugin()],
        operation_id_creator=operation_id,
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT",
                    description="Access token from POST /api/v1/auth/login",
                ),
                API_KEY_SCHEME: SecurityScheme(
                    type="apiKey",
                    name="X-API-Key",
                    security_scheme_in="header",
                    description="An API key (POST /api/v1/api-keys) holding the scope "
                    "listed on the operation; staff operations only",
                ),
            }
        ),
    )


def _install_orm_hooks() -> None:
    """The process-wide ORM hooks, registered here and not at import (both idempotent):
    ``catalog.changes`` records the products a flush touches (cache eviction on commit) and
    ``inventory.ledger`` writes the stock movements of stock set through ORM variants."""
    install_change_tracking()
    install_ledger_hook()


def create_app(settings: Settings, *, clock: Clock | None = None) -> Litestar:
    """Build the Emporium ASGI application for ``settings``; ``clock``: the time its
    requests and its embedded job runner see (``core.clock``; default the system's)."""
    configure_logging(settings)
    configure_tracing(settings, role="serve")  # once per process; off by default
    _install_orm_hooks()
    handlers: list[Any] = [_api_router(), admin_ui_router, healthz, readyz, Metrics]
    openapi_config = None
    if settings.docs_enabled:
        handlers.append(openapi_json)
        openapi_config = _openapi_config()
    limiter = RateLimiter(settings.rate_limit_policies())
    app = Litestar(
        route_handlers=handlers,
        state=State(
            {
                "settings": settings,
                "admin_guard": role("admin"),
                "rate_limiter": limiter,
                "clock": clock or SYSTEM_CLOCK,
            }
        ),
        dependencies={
            "session": Provide(provide_session),
            "reader": Provide(provide_reader),
            "settings": _settings_provider(settings),
            "resources": provide_resources(),
            "products": provide_product_reads(),
            "accounts": Provide(_accounts, sync_to_thread=False),
        },
        exception_handlers={Exception: handle_exception},
        before_request=check_json_body,
        middleware=[RequestMetrics],  # emporium_requests_total & co., per route
        lifespan=[_lifespan(settings)],
        on_startup=_OPENAPI_HOOKS if settings.docs_enabled else [],
        openapi_config=openapi_config,
        compression_config=CompressionConfig(backend="gzip", minimum_size=2048),
        cors_config=_cors(settings),
        request_max_body_size=settings.max_body_bytes,  # 413 (Content-Length or streamed)
        debug=False,
        logging_config=None,  # configure_logging's (no listener thread per app built)
    )
    # Outermost, around Litestar's own router and error handling, so that answers given
    # before any route matched (404 for an unknown path, 405) carry X-Request-ID (and the
    # security headers) too.
    gate = RequestGate(app.asgi_handler, limiter=limiter)
    trust = ProxyTrust(settings.trusted_proxies)
    app.asgi_handler = SecurityHeaders(ConventionsMiddleware(gate), trust=trust)
    if clock is not None:
        app.asgi_handler = ClockMiddleware(app.asgi_handler, clock)
    # Outermost when tracing: the request's log lines and errors fall inside its span.
    app.asgi_handler = instrument_asgi(app.asgi_handler)
    return app


def _cors(settings: Settings) -> CORSConfig | None:
    """CORS for the allowed origins only (none by default: browsers then refuse
    cross-origin calls); never ``*`` with credentials (refused by the settings)."""
    if not settings.cors_allow_origins:
        return None
    return CORSConfig(
        allow_origins=settings.cors_allow_origins,
        allow_credentials=settings.cors_allow_credentials,
        allow_methods=["GET", "POST", "PATCH", "DELETE"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "Idempotency-Key",
            "X-API-Key",
            "X-Request-ID",
        ],
        expose_headers=[
            "X-Request-ID",
            "Retry-After",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
        ],
        max_age=600,
    )


@get("/openapi.json", include_in_schema=False, sync_to_thread=False)
def openapi_json(request: Request[Any, Any, Any]) -> Response[Any]:
    """The OpenAPI 3.1 document of this server."""
    schema = request.app.openapi_schema.to_schema()
    return Response(schema, media_type="application/vnd.oai.openapi+json")


def create_app_from_env() -> Litestar:
    """Factory for server worker processes: settings from the environment."""
    return create_app(load_settings())
