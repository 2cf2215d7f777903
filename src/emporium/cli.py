"""The ``emporium`` command: serve, worker, db upgrade, import, keys, users.

``emporium --help`` imports nothing but click: every command imports what it needs when it
runs (the web framework, SQLAlchemy and the rooms take seconds to import). An error that
escapes a command is printed as one line, ``emporium: error: <what> (<hint>)``, with exit
code 1; ``--debug`` (or ``EMPORIUM_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from emporium.core.console import CommandGroup, uvicorn_log_config

if TYPE_CHECKING:
    from emporium.catalog.upsert import ImportProduct
    from emporium.core.config import Settings
    from emporium.core.crypto.keys import KeyRing
    from emporium.core.db.base import Sealed
    from emporium.core.errors import DomainError
    from emporium.importers.common import ImportReport, ImportReview, Problem
    from emporium.importers.dummyjson_carts import ImportCart
    from emporium.importers.dummyjson_users import ImportUser


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


def _settings() -> Settings:
    from emporium.core.config import load_settings

    try:
        return load_settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise click.ClickException(f"invalid settings: {exc}") from exc


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
    settings = _settings()
    _prepare_database(settings)
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
    _prepare_database(settings)
    configure_logging(settings)

    async def run() -> None:
        engine = create_engine(settings)
        ctx = build_context(settings, load_key_file(settings.key_file))
        registry = build_registry(settings, ctx, WebhooksContext(ring=ctx.vault.ring))
        runner = Runner(registry, create_sessionmaker(engine), settings, name=name)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runner.stop)  # finish the jobs in hand, then exit
        try:
            await runner.run()
        finally:
            await engine.dispose()

    click.echo("Emporium worker running jobs", err=True)
    loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    with suppress(ImportError):  # the servers' loop (uvicorn's), where installed: cheaper I/O
        from uvloop import new_event_loop as loop_factory
    with asyncio.Runner(loop_factory=loop_factory) as loop_runner:
        loop_runner.run(run())


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
    from emporium.core.crypto.keys import load_key_file
    from emporium.core.db.base import create_engine, create_sessionmaker

    engine = create_engine(settings)
    try:
        ctx = build_context(settings, load_key_file(settings.key_file))
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
