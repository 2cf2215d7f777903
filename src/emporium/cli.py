"""The ``emporium`` command: serve, worker, db upgrade, import, keys, users, audit.

``emporium --help`` imports nothing but click: every command imports what it needs when it
runs (the web framework, SQLAlchemy and the rooms take seconds to import). An error that
escapes a command is printed as one line, ``emporium: error: <what> (<hint>)``, with exit
code 1; ``--debug`` (or ``EMPORIUM_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from emporium.core.console import CommandGroup, uvicorn_log_config

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from emporium.catalog.upsert import ImportProduct
    from emporium.core.config import Settings
    from emporium.core.crypto.keys import KeyRing
    from emporium.core.db.base import Sealed
    from emporium.core.errors import DomainError
    from emporium.importers.common import ImportReport, ImportReview, Problem
    from emporium.importers.dummyjson_carts import ImportCart
    from emporium.importers.dummyjson_users import ImportUser
    from emporium.jobs.runner import Runner


def protected_columns() -> Sealed:
    """Every sealed column of every room (declared with ``core.db.base.sealed`` on the models),
    re-encrypted by ``emporium keys rotate``."""
    from emporium.core.db.base import sealed_columns
    from emporium.models import import_all_models

    import_all_models()
    return sealed_columns()


@click.group(cls=CommandGroup)
@click.version_option(package_name="emporium")
@click.option(
    "--debug",
    is_flag=True,
    envvar="EMPORIUM_DEBUG",
    help="show the full traceback of an error (also EMPORIUM_DEBUG=1)",
)
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Emporium, a headless commerce back-end."""
    ctx.obj = {"debug": debug}


@contextmanager
def _start_without_gc() -> Iterator[None]:
    """Run a process's start (imports of thousands of modules, the schema and key checks)
    without the cyclic garbage collector, whose passes over the growing heap cost about a
    sixth of the start (``bench/startup.py``); then freeze what was loaded, so that later
    passes skip it, and collect normally again."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _settings() -> Settings:
    from emporium.core.config import load_settings

    try:
        return load_settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise click.ClickException(f"invalid settings: {exc}") from exc


def _check_tracing(settings: Settings) -> None:
    """Refuse unusable ``OTEL_*`` values before serving (each server process starts its
    own tracing in ``create_app``)."""
    if not settings.tracing:
        return
    from emporium.core.tracing import exporter_names

    try:
        exporter_names()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


def _start_tracing(settings: Settings, role: str) -> None:
    """Start OpenTelemetry tracing in this process when ``EMPORIUM_TRACING`` is on."""
    if not settings.tracing:
        return
    from emporium.core.tracing import configure_tracing

    try:
        configure_tracing(settings, role=role)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration not yet applied (Alembic ``upgrade head``)."""
    from emporium.core.db import migrate

    settings = _settings()
    migrate.upgrade(settings)
    click.echo(f"database at {migrate.current_revision(settings)}")


def _prepare_database(settings: Settings) -> None:
    """Upgrade the embedded database (or refuse an un-migrated PostgreSQL one), then check
    the key file against the database (:func:`_check_key_file`)."""
    from emporium.core.db import migrate

    if settings.is_sqlite:
        migrate.upgrade(settings)
    elif migrate.current_revision(settings) is None:
        raise click.ClickException("the database has no schema: run `emporium db upgrade` first")
    _check_key_file(settings)


def _check_key_file(settings: Settings) -> None:
    """Refuse a key file that is missing or not the one the database was written with
    (``core.crypto.keyset``); only an empty embedded database gets a new key file. On PostgreSQL
    the key file is made once with ``keys init`` and shared by every node."""
    from emporium.core.crypto.keys import KeyFileError, load_key_file, load_or_create_key_file
    from emporium.core.crypto.keyset import KeySetMismatch

    try:
        ring: KeyRing | None = load_key_file(settings.key_file)
    except FileNotFoundError:
        ring = None
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        may_create = asyncio.run(_check_key_set(settings, ring))
        if ring is None and may_create and not settings.is_sqlite:
            raise click.ClickException(
                f"no key file at {settings.key_file}: run `emporium keys init` once and give "
                "the same file to every node (EMPORIUM_KEY_FILE)"
            )
        if ring is None and may_create:
            ring, created = load_or_create_key_file(settings.key_file)
            if created:
                click.echo(
                    f"created the key file {settings.key_file}: back it up; without it the "
                    "personal data in the database cannot be read",
                    err=True,
                )
            asyncio.run(_check_key_set(settings, ring))  # records its fingerprint
    except KeySetMismatch as exc:
        raise click.ClickException(str(exc)) from exc


async def _check_key_set(settings: Settings, ring: KeyRing | None) -> bool:
    from emporium.core.crypto.keyset import check_key_set
    from emporium.core.db.base import create_engine, table_of

    engine = create_engine(settings)
    try:
        protected = [table_of(model) for model, _ in protected_columns()]
        return await check_key_set(engine, ring, key_file=settings.key_file, protected=protected)
    finally:
        await engine.dispose()


async def _catalog_is_empty(settings: Settings) -> bool:
    from sqlalchemy import func, select

    from emporium.catalog.models import Product
    from emporium.core.db.base import create_engine

    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            return not await conn.scalar(select(func.count()).select_from(Product))
    finally:
        await engine.dispose()


async def _demo_shipping(settings: Settings) -> bool:
    """Add the demo shipping zones, methods and tax rates; False when the shop has some."""
    from emporium.core.db.base import create_engine, create_sessionmaker
    from emporium.shipping.demo import create_demo_shipping

    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return await create_demo_shipping(session, currency=settings.currency)
    finally:
        await engine.dispose()


async def _demo_promotions(settings: Settings) -> bool:
    """Add the demo promotions (an automatic sale and a code); False when the shop has some.
    They are staff changes: their security events go to the configured log."""
    from emporium.core.db.base import create_engine, create_sessionmaker
    from emporium.core.logging import configure_logging
    from emporium.promotions.demo import create_demo_promotions

    configure_logging(settings)
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return await create_demo_promotions(session, currency=settings.currency)
    finally:
        await engine.dispose()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--demo", "with_demo", is_flag=True, help="load the demo catalog if empty")
@click.option(
    "--certfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TLS certificate chain (PEM); serve HTTPS (with --keyfile)",
)
@click.option(
    "--keyfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TLS private key (PEM) of --certfile",
)
def serve(
    host: str,
    port: int,
    workers: int,
    with_demo: bool,
    certfile: Path | None,
    keyfile: Path | None,
) -> None:
    """Run the HTTP API server (uvicorn with uvloop and httptools); HTTPS with --certfile
    and --keyfile (answers then carry HSTS)."""
    import uvicorn

    if (certfile is None) != (keyfile is None):
        raise click.UsageError("--certfile and --keyfile go together")
    with _start_without_gc():
        settings = _settings()
        _check_tracing(settings)
        _prepare_database(settings)
        if workers == 1:  # uvicorn serves in this process: load the app here, GC off
            import emporium.app  # noqa: F401
    if with_demo and asyncio.run(_catalog_is_empty(settings)):
        from emporium.importers import demo

        products, reviews = demo.generate()
        report = _run_import(settings, products, reviews)
        click.echo("demo catalog loaded: " + report.summary().replace("\n", "; "), err=True)
    if with_demo and asyncio.run(_demo_shipping(settings)):
        click.echo("demo shipping zones, methods and tax rates added", err=True)
    if with_demo and asyncio.run(_demo_promotions(settings)):
        click.echo("demo promotions added: Winter sale (automatic) and code WELCOME5", err=True)
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="emporium-metrics-")
    # "Emporium listening on ..." is printed by uvicorn_log_config once the port is bound.
    uvicorn.run(
        "emporium.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        server_header=False,  # no version banner
        log_config=uvicorn_log_config(),
        # Only EMPORIUM_TRUSTED_PROXIES decides whose X-Forwarded-For is believed
        # (core.http.clientip): uvicorn's own handling would trust 127.0.0.1 and rewrite
        # the peer address first.
        proxy_headers=False,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
    )


@main.command()
@click.option("--name", default=None, help="this worker's name in the logs (default: host)")
def worker(name: str | None) -> None:
    """Run only the job runner: outbox, e-mails, webhooks, schedules (any number of
    workers on any nodes share the work through the database)."""
    from emporium.accounts.protect import build_context
    from emporium.core.crypto.keys import load_key_file
    from emporium.core.db.base import create_engine, create_sessionmaker
    from emporium.core.logging import configure_logging
    from emporium.jobs.runner import Runner
    from emporium.jobwork import build_registry
    from emporium.webhooks.delivery import WebhooksContext

    settings = _settings()
    with _start_without_gc():
        _prepare_database(settings)
    configure_logging(settings)
    _start_tracing(settings, "worker")

    async def run() -> None:
        engine = create_engine(settings)
        ctx = build_context(settings, load_key_file(settings.key_file))
        registry = build_registry(settings, ctx, WebhooksContext(ring=ctx.vault.ring))
        runner = Runner(registry, create_sessionmaker(engine), settings, name=name)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runner.stop)  # finish the jobs in hand, then exit
        metrics = await _worker_metrics(settings, engine, runner)
        try:
            await runner.run()
        finally:
            await metrics()
            await asyncio.to_thread(registry.close)
            await engine.dispose()

    click.echo("Emporium worker running jobs", err=True)
    loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    with suppress(ImportError):  # the servers' loop (uvicorn's), where installed: cheaper I/O
        from uvloop import new_event_loop as loop_factory
    with asyncio.Runner(loop_factory=loop_factory) as loop_runner:
        loop_runner.run(run())


async def _worker_metrics(
    settings: Settings, engine: AsyncEngine, runner: Runner
) -> Callable[[], Awaitable[None]]:
    """Start the worker's ``/metrics`` (``EMPORIUM_WORKER_METRICS_PORT``; pool gauges
    either way); returns the coroutine function that stops both."""
    from emporium.core.metrics import watch_pool
    from emporium.core.metrics_server import MetricsServer
    from emporium.jobs.metrics import queue_probe

    unwatch = watch_pool(engine, "primary")
    server = None
    if settings.worker_metrics_port is not None:
        timeout = settings.metrics_probe_timeout_seconds
        probe = queue_probe(runner.sessionmaker, runner.registry.handlers, timeout_seconds=timeout)
        server = MetricsServer(
            [probe],
            timeout_seconds=timeout,
            host=settings.worker_metrics_host,
            port=settings.worker_metrics_port,
        )
        port = await server.start()
        where = f"http://{settings.worker_metrics_host}:{port}/metrics"
        click.echo(f"Emporium worker metrics on {where}", err=True)

    async def stop() -> None:
        if server is not None:
            await server.close()
        unwatch()

    return stop


@main.group("import")
def import_() -> None:
    """Import catalogs (idempotent: a second run changes nothing)."""


def _progress(total: int) -> AbstractContextManager[Any]:
    if total < 200 or not sys.stderr.isatty():
        return nullcontext(None)
    return click.progressbar(length=total, label="importing", file=sys.stderr)


def _run_import(
    settings: Settings,
    products: Sequence[ImportProduct],
    reviews: Sequence[ImportReview],
    users: Sequence[ImportUser] = (),
    carts: Sequence[ImportCart] = (),
) -> ImportReport:
    from emporium.accounts.protect import build_context
    from emporium.catalog.changes import install_change_tracking
    from emporium.core.crypto.keys import load_key_file
    from emporium.core.db.base import create_engine, create_sessionmaker
    from emporium.core.db.changes import ChangeFeed
    from emporium.importers import dummyjson_carts, dummyjson_users
    from emporium.importers.common import ImportReport, write_catalog
    from emporium.inventory.ledger import install_ledger_hook

    report = ImportReport()
    install_change_tracking()
    install_ledger_hook()

    async def run() -> None:
        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                author_of = None
                if users:
                    ctx = build_context(settings, load_key_file(settings.key_file))
                    accounts = await dummyjson_users.write_users(session, ctx, list(users), report)

                    def author_of(email: str) -> uuid.UUID | None:
                        return accounts.get(ctx.vault.email_index(email))

                with _progress(len(products) + len(reviews)) as bar:
                    await write_catalog(
                        session,
                        products,
                        reviews,
                        currency=settings.currency,
                        report=report,
                        progress=bar.update if bar is not None else None,
                        author_of=author_of,
                    )
                if carts:
                    ctx = build_context(settings, load_key_file(settings.key_file))
                    await dummyjson_carts.replay_carts(session, ctx, list(carts), report)
                # Running servers evict what changed (PostgreSQL NOTIFY, sent on commit).
                await ChangeFeed().before_commit(session)
        finally:
            await engine.dispose()

    asyncio.run(run())
    return report


def _import_command(
    parse: Callable[[], tuple[Any, Any, Any, Any]],
    parse_carts: Callable[[], tuple[list[ImportCart], list[Problem]]] | None = None,
) -> None:
    from emporium.importers.common import ImportFailed

    settings = _settings()
    _prepare_database(settings)
    try:
        products, reviews, problems, users = parse()
        carts, cart_problems = parse_carts() if parse_carts else ([], [])
        for problem in [*problems, *cart_problems]:
            click.echo(f"skipped: {problem}", err=True)
        if problems and not (products or users or carts):
            raise click.ClickException(
                f"every row had a problem ({len(problems)} skipped); nothing was imported"
            )
        report = _run_import(settings, products, reviews, users, carts)
        for problem in report.problems:
            click.echo(f"refused: {problem}", err=True)
    except ImportFailed as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise click.ClickException(
            f"{len(exc.problems)} problem(s) found; nothing was imported "
            "(--skip-invalid imports the valid rows)"
        ) from exc
    if problems:
        report.add("products", "skipped", len({p.subject for p in problems if p.subject}))
    click.echo(report.summary())


@import_.command("dummyjson")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--skip-invalid", is_flag=True, help="import the valid rows, report the rest")
def import_dummyjson(directory: Path, skip_invalid: bool) -> None:
    """Import DIR/dummyjson-users.json (accounts, addresses; no cards, IBANs, SSNs or
    passwords), DIR/dummyjson-products.json (categories, products, reviews linked to
    their authors), then replay DIR/dummyjson-carts.json as orders through checkout (carts
    that would oversell are reported, not forced)."""
    from emporium.importers import dummyjson, dummyjson_carts, dummyjson_users

    def parse() -> tuple[Any, Any, Any, Any]:
        users, user_problems = dummyjson_users.parse(directory, skip_invalid=skip_invalid)
        products, reviews, problems = dummyjson.parse(directory, skip_invalid=skip_invalid)
        return products, reviews, [*user_problems, *problems], users

    _import_command(parse, lambda: dummyjson_carts.parse(directory, skip_invalid=skip_invalid))


@import_.command("shopify-csv")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--skip-invalid", is_flag=True, help="import the valid products, report the rest")
def import_shopify(files: tuple[Path, ...], skip_invalid: bool) -> None:
    """Import Shopify product CSV exports (one row per variant, grouped by Handle)."""

    def parse() -> tuple[Any, Any, Any, Any]:
        from emporium.importers import shopify

        products, problems = shopify.parse(list(files), skip_invalid=skip_invalid)
        return products, [], problems, []

    _import_command(parse)


@main.group()
def keys() -> None:
    """The key file: data, blind-index, token and pepper keys (never in the database)."""


@keys.command("init")
def keys_init() -> None:
    """Create the key file with fresh keys (refuses to overwrite one)."""
    from emporium.core.crypto.keys import generate_keyring, write_key_file

    settings = _settings()
    try:
        write_key_file(settings.key_file, generate_keyring())
    except FileExistsError as exc:
        raise click.ClickException(f"{settings.key_file} exists; not overwritten") from exc
    click.echo(f"created {settings.key_file} (mode 0600): back it up and keep it secret")


@keys.command("rotate")
@click.option("--resume", is_flag=True, help="only finish re-encrypting; add no new key")
def keys_rotate(resume: bool) -> None:
    """Add a new active data key and re-encrypt every row with it (resumable)."""
    from emporium.accounts.rotation import reencrypt_all
    from emporium.core.crypto.keys import add_data_key, load_key_file, write_key_file
    from emporium.core.db.base import create_engine, create_sessionmaker

    settings = _settings()
    _prepare_database(settings)  # the key file must be this database's
    ring = load_key_file(settings.key_file)
    if not resume:
        ring = add_data_key(ring)
        write_key_file(settings.key_file, ring, overwrite=True)
        click.echo(f"new active data key {ring.active_data_kid}", err=True)

    async def run() -> int:
        engine = create_engine(settings)
        try:
            return await reencrypt_all(
                create_sessionmaker(engine), ring, protected=protected_columns()
            )
        finally:
            await engine.dispose()

    changed = asyncio.run(run())
    click.echo(f"re-encrypted {changed} value(s); restart every node with the new key file")


@main.group()
def users() -> None:
    """Accounts managed from the command line."""


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


async def _with_accounts(settings: Settings, action: Any) -> Any:
    from emporium.accounts.protect import build_context
    from emporium.core.actor import acting_as
    from emporium.core.crypto.keys import load_key_file
    from emporium.core.db.base import create_engine, create_sessionmaker

    engine = create_engine(settings)
    try:
        ctx = build_context(settings, load_key_file(settings.key_file))
        with acting_as("cli"):  # audited as the command line's doing
            async with create_sessionmaker(engine)() as session, session.begin():
                return await action(session, ctx)
    finally:
        await engine.dispose()


@users.command("create-admin")
@click.option("--email", required=True)
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def users_create_admin(email: str, password_stdin: bool) -> None:
    """Create the first admin (roles admin and staff); no default accounts exist."""
    from emporium.accounts import service as account_service
    from emporium.accounts.schemas import UserCreate
    from emporium.core.errors import DomainError

    settings = _settings()
    _prepare_database(settings)
    data = UserCreate(
        email=email, password=_read_password(password_stdin), roles=["admin", "staff"]
    )
    try:
        user = asyncio.run(
            _with_accounts(settings, lambda s, ctx: account_service.create_user(s, ctx, data))
        )
    except DomainError as exc:
        raise click.ClickException(_domain_message(exc)) from exc
    click.echo(f"admin created: {user.id}")


@users.command("set-password")
@click.option("--email", required=True)
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def users_set_password(email: str, password_stdin: bool) -> None:
    """Set a user's password (imported accounts have none); ends their sessions."""
    from emporium.accounts import service as account_service
    from emporium.core.errors import DomainError

    settings = _settings()
    _prepare_database(settings)
    password = _read_password(password_stdin)
    try:
        asyncio.run(
            _with_accounts(
                settings, lambda s, ctx: account_service.set_password(s, ctx, email, password)
            )
        )
    except DomainError as exc:
        raise click.ClickException(_domain_message(exc)) from exc
    click.echo("password set")


def _domain_message(exc: DomainError) -> str:
    errors = exc.extra.get("errors") or []
    details = "; ".join(str(e.get("msg")) for e in errors)
    return f"{exc.detail} {details}".strip()


@main.group()
def backup() -> None:
    """Encrypted backups of the database and the key file (docs: README, Backups)."""


def _backup_logging(settings: Settings) -> None:
    """Log lines (copies, failures) to the configured log, not into the command's output."""
    from emporium.core.logging import configure_logging

    configure_logging(settings)


def _sessions(settings: Settings) -> Any:
    from emporium.core.db.base import create_engine, create_sessionmaker

    engine = create_engine(settings)
    return engine, create_sessionmaker(engine)


@backup.command("create")
def backup_create() -> None:
    """Make a backup now and copy it to every destination (EMPORIUM_BACKUP_DESTINATIONS)."""
    from emporium.backups.exceptions import BackupError
    from emporium.backups.service import create_backup

    settings = _settings()
    _backup_logging(settings)

    async def run() -> Any:
        from emporium.core.actor import acting_as

        engine, sessions = _sessions(settings)
        try:
            with acting_as("cli"):
                return await create_backup(settings, sessions)
        finally:
            await engine.dispose()

    try:
        outcome = asyncio.run(run())
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"backup {outcome.backup_id} ({outcome.manifest['size_bytes']} bytes)")
    for url in outcome.copied:
        click.echo(f"  copied to {url}")
    for url, error in outcome.failures.items():
        click.echo(f"  FAILED {url}: {error}")
    if outcome.failures:
        raise click.ClickException(
            f"{len(outcome.failures)} destination(s) failed; the job runner retries them"
        )


@backup.command("list")
@click.option("--from", "source", help="list what a destination holds (URL or its number)")
def backup_list(source: str | None) -> None:
    """The backups recorded in the database with each copy's status, or (--from) the
    backups a destination holds."""
    from emporium.backups.destinations import pick_destination
    from emporium.backups.exceptions import BackupError
    from emporium.backups.service import list_backups

    settings = _settings()
    if source is not None:
        try:
            for backup_id in pick_destination(settings, source).backup_ids():
                click.echo(backup_id)
        except BackupError as exc:
            raise click.ClickException(str(exc)) from exc
        return

    async def run() -> Any:
        engine, sessions = _sessions(settings)
        try:
            async with sessions() as session:
                return await list_backups(session, limit=50)
        finally:
            await engine.dispose()

    for item in asyncio.run(run()).items:
        copies = ", ".join(f"{c.destination} {c.status}" for c in item.copies)
        click.echo(f"{item.id}  {item.size_bytes} bytes  sha256 {item.checksum[:12]}  {copies}")


def _backup_options(command: Callable[..., None]) -> Callable[..., None]:
    command = click.option("--backup", "backup_id", help="backup id (default: the newest)")(command)
    command = click.option(
        "--identity",
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="age identity file (AGE-SECRET-KEY-1...) whose public key the backups use",
    )(command)
    return click.option(
        "--from", "source", help="destination URL or number in the list (default: 1)"
    )(command)


@backup.command("verify")
@_backup_options
def backup_verify(source: str | None, identity: Path, backup_id: str | None) -> None:
    """Fetch a backup, check its checksums, decrypt it, restore it into a scratch database
    and check the invariants; exit 1 when anything fails."""
    from emporium.backups.destinations import pick_destination
    from emporium.backups.exceptions import BackupError
    from emporium.backups.restore import verify_backup

    settings = _settings()
    _backup_logging(settings)
    with tempfile.TemporaryDirectory(prefix="emporium-verify-") as tmp:
        try:
            destination = pick_destination(settings, source)
            report = asyncio.run(
                verify_backup(settings, destination, backup_id, identity, Path(tmp))
            )
        except BackupError as exc:
            raise click.ClickException(f"verify failed: {exc}") from exc
    for line in report.lines:
        click.echo(f"  ok    {line}")
    for line in report.failed:
        click.echo(f"  FAIL  {line}")
    if not report.ok:
        raise click.ClickException(f"backup {report.backup_id} failed verification")
    click.echo(f"backup {report.backup_id} verified")


@backup.command("restore")
@_backup_options
@click.option("--force", is_flag=True, help="replace a database holding data (backed up first)")
def backup_restore(source: str | None, identity: Path, backup_id: str | None, force: bool) -> None:
    """Restore a backup into EMPORIUM_DATABASE_URL and EMPORIUM_KEY_FILE (an empty database
    unless --force), run migrations forward and say what happens next."""
    from emporium.backups.destinations import pick_destination
    from emporium.backups.exceptions import BackupError
    from emporium.backups.restore import migrate_forward, restore_backup

    settings = _settings()
    _backup_logging(settings)
    path = settings.sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)

    async def run(folder: Path) -> Any:
        from emporium.core.actor import acting_as

        engine, sessions = _sessions(settings)
        with acting_as("cli"):
            try:
                destination = pick_destination(settings, source)
                report = await restore_backup(
                    settings, sessions, destination, backup_id, identity, folder, force=force
                )
            finally:
                await engine.dispose()
            await migrate_forward(settings, report)
        return report

    with tempfile.TemporaryDirectory(prefix="emporium-restore-") as tmp:
        try:
            report = asyncio.run(run(Path(tmp)))
        except BackupError as exc:
            raise click.ClickException(f"restore refused: {exc}") from exc
    for line in report.lines:
        click.echo(line)


@backup.command("prune")
@click.option("--dry-run", is_flag=True, help="only list what would be deleted")
def backup_prune(dry_run: bool) -> None:
    """Delete the backups the retention settings do not keep, at every destination."""
    from emporium.backups.service import prune_backups

    settings = _settings()
    _backup_logging(settings)

    async def run() -> dict[str, list[str]]:
        engine, sessions = _sessions(settings)
        try:
            return await prune_backups(settings, sessions, dry_run=dry_run)
        finally:
            await engine.dispose()

    verb = "would delete" if dry_run else "deleted"
    for url, ids in asyncio.run(run()).items():
        click.echo(f"{url}: {verb} {len(ids)}" + (f" ({', '.join(ids)})" if ids else ""))


@main.group()
def audit() -> None:
    """The audit trail: check its hash chain, export it, prune old events."""


async def _in_session(settings: Settings, action: Any) -> Any:
    """Run ``action(session)`` in one transaction as the command line (actor ``cli``)."""
    from emporium.core.actor import acting_as
    from emporium.core.db.base import create_engine, create_sessionmaker

    engine = create_engine(settings)
    try:
        with acting_as("cli"):
            async with create_sessionmaker(engine)() as session, session.begin():
                return await action(session)
    finally:
        await engine.dispose()


@audit.command("verify")
def audit_verify() -> None:
    """Walk the hash chain; name the first event altered, removed or inserted (exit 1)."""
    from emporium.audit.chain import verify_chain

    settings = _settings()
    _prepare_database(settings)
    report = asyncio.run(_in_session(settings, verify_chain))
    if not report.ok:
        click.echo(f"audit chain broken after {report.checked} good event(s): {report.problem}")
        sys.exit(1)
    click.echo(
        f"audit chain intact: {report.checked} event(s), head seq {report.head_seq}, "
        f"hash {report.head_hash}"
    )


@audit.command("export")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="UTC date or time of the oldest event to write (default: all)",
)
@click.option("--output", "-o", type=click.File("wb"), default="-", help="file (default stdout)")
def audit_export(since: Any, output: Any) -> None:
    """Write the audit events as JSON lines (one event per line, chain order) for a SIEM."""
    from datetime import UTC

    from emporium.audit.service import export_events

    settings = _settings()
    _prepare_database(settings)
    start = None if since is None else since.replace(tzinfo=UTC)

    async def write(session: Any) -> int:
        count = 0
        async for line in export_events(session, since=start):
            output.write(line)
            count += 1
        return count

    count = asyncio.run(_in_session(settings, write))
    click.echo(f"exported {count} audit event(s)", err=True)


@audit.command("prune")
def audit_prune() -> None:
    """Delete events older than EMPORIUM_AUDIT_RETENTION_DAYS; record where the chain now
    starts, so that verify still checks the rest."""
    from emporium.audit.service import prune_events

    settings = _settings()
    _prepare_database(settings)
    days = settings.audit_retention_days
    result = asyncio.run(_in_session(settings, lambda s: prune_events(s, retention_days=days)))
    click.echo(
        f"pruned {result.deleted} audit event(s) older than {days} day(s); "
        f"the chain now starts after seq {result.pruned_seq}"
    )
