"""Shared fixtures: a fresh, migrated database per test (SQLite always, PostgreSQL when
``EMPORIUM_TEST_POSTGRES_URL`` is set), the app, an HTTP client and the shared datasets."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from emporium.accounts import service as account_service
from emporium.accounts import sessions as account_sessions
from emporium.accounts.models import is_staff_roles
from emporium.accounts.passwords import PasswordHasher
from emporium.accounts.protect import build_context
from emporium.app import create_app
from emporium.core.config import Settings
from emporium.core.crypto.keys import generate_keyring, load_key_file, write_key_file
from emporium.core.db.base import Base, create_engine, create_sessionmaker
from emporium.core.db.migrate import upgrade
from emporium.models import import_all_models

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("EMPORIUM_TEST_POSTGRES_URL")

import_all_models()
# Accounts made by sign_in() have no password, so this hasher is never asked to hash one;
# cheap parameters keep its start-up dummy hash fast.
_NO_HASHER = PasswordHasher(pepper=b"p" * 32, time_cost=1, memory_cost=8, parallelism=1)


def pytest_report_header() -> str:
    """Say which databases the run covers."""
    if POSTGRES_URL:
        return f"databases: sqlite, postgresql ({POSTGRES_URL})"
    return "databases: sqlite only (EMPORIUM_TEST_POSTGRES_URL is not set)"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """List how many hypothesis examples the tests that record ``hypothesis_examples`` ran
    (``record_property``), so that the CI log shows the count per test and database. The
    reports reach this hook under xdist too."""
    counts = [
        (report.nodeid, value)
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", [])
        if name == "hypothesis_examples"
    ]
    if not counts:
        return
    terminalreporter.section("hypothesis examples run")
    for nodeid, value in sorted(counts):
        terminalreporter.write_line(f"{value:>7} {nodeid}")
    terminalreporter.write_line(f"{sum(int(v) for _, v in counts):>7} in total")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(Settings(database_url=f"sqlite+aiosqlite:///{path}"))
    return path


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(statement))
    await engine.dispose()


@pytest.fixture(scope="session")
def postgres_migrated() -> Iterator[str]:
    """A private PostgreSQL database for this test run (so runs never collide), migrated
    once, dropped at the end."""
    if not POSTGRES_URL:
        pytest.skip("EMPORIUM_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped")
    name = f"emporium_test_{os.getpid()}"
    base = make_url(POSTGRES_URL)
    asyncio.run(_admin(POSTGRES_URL, f"DROP DATABASE IF EXISTS {name}"))
    asyncio.run(_admin(POSTGRES_URL, f"CREATE DATABASE {name}"))
    url = base.set(database=name).render_as_string(hide_password=False)
    upgrade(Settings(database_url=url))
    yield url
    asyncio.run(_admin(POSTGRES_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def _empty_postgres(url: str) -> None:
    """Delete every row, children first. On tables this small DELETE is several times faster
    than TRUNCATE, which makes new files for every table and syncs them at commit."""
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        # The audit trail is append-only: its trigger lets a DELETE through only when the
        # transaction says it prunes (``audit.service.PRUNE_SETTING``).
        await conn.execute(text("SELECT set_config('emporium.audit_prune', 'on', true)"))
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())
    await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """A fresh, migrated, empty database of each supported kind."""
    if request.param == "sqlite":
        path = tmp_path / "emporium.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url = request.getfixturevalue("postgres_migrated")
    asyncio.run(_empty_postgres(url))
    yield url


@pytest.fixture(scope="session")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A key file for the whole run (data, blind-index, token and pepper keys)."""
    path = tmp_path_factory.mktemp("keys") / "emporium-keys.json"
    write_key_file(path, generate_keyring())
    return path


@pytest.fixture(autouse=True)
def _key_file_env(key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI commands run by tests use the run's key file, never one in the working folder."""
    monkeypatch.setenv("EMPORIUM_KEY_FILE", str(key_file))


# Every test client calls from one address, so the per-route rate limits (login, register,
# ...) are off for ordinary tests; tests/core/test_rate_limits.py turns them on. The general
# per-client limit keeps its default, so every test goes through it.
NO_ROUTE_RATE_LIMITS = {
    name: "" for name in Settings.model_fields if name.startswith("rate_limit_")
} | {"rate_limit_general": Settings.model_fields["rate_limit_general"].default}


@pytest.fixture
def settings(database_url: str, key_file: Path, tmp_path: Path) -> Settings:
    """Settings for a test app on the test database. The embedded job runner is off (tests
    that need jobs run them, see ``tests/jobs``); e-mails go to the test's own folder."""
    return Settings(
        database_url=database_url,
        key_file=key_file,
        log_format="json",
        log_level="WARNING",
        redis_url=None,
        jobs_embedded=False,
        mail_dir=tmp_path / "mail",
        **NO_ROUTE_RATE_LIMITS,
    )


SignIn = Callable[..., Awaitable[dict[str, str]]]


@pytest.fixture
def sign_in(settings: Settings) -> SignIn:
    """``await sign_in(roles=[...], email=..., mfa=...)``: headers of a new signed-in user
    with those roles (the account and session are created directly, without a password).
    Staff and admin accounts have MFA on and a session that used it, unless ``mfa=False``
    (``mfa=True`` gives a customer the same)."""

    async def make(
        roles: Sequence[str] = ("customer",), email: str | None = None, mfa: bool | None = None
    ) -> dict[str, str]:
        with_mfa = is_staff_roles(roles) if mfa is None else mfa
        ctx = build_context(settings, load_key_file(settings.key_file), hasher=_NO_HASHER)
        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine)() as db, db.begin():
                user = await account_service.create_account(
                    db, ctx, email=email or f"{uuid.uuid4().hex[:12]}@example.com", roles=roles
                )
                user.mfa_enabled = with_mfa
                pair = await account_sessions.open_session(
                    db, ctx, user, device="pytest", ip=None, mfa=with_mfa
                )
        finally:
            await engine.dispose()
        return {"Authorization": f"Bearer {pair.access_token}"}

    return make


@pytest.fixture
async def admin_headers(sign_in: SignIn) -> dict[str, str]:
    """Headers of a signed-in admin (who is staff too)."""
    return await sign_in(roles=["admin", "staff"])


@pytest.fixture
def app(settings: Settings, request: pytest.FixtureRequest) -> Litestar:
    """The application under test; with the test's ``clock`` fixture when it asks for one
    (the clock is injected, never patched: ``core.clock``)."""
    clock = request.getfixturevalue("clock") if "clock" in request.fixturenames else None
    return create_app(settings, clock=clock)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """An HTTP client talking to the app in-process (lifespan run)."""
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
async def session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session on the test database, for arranging data and checking what was stored."""
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as db_session:
        yield db_session
    await engine.dispose()


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """``../shared/datasets`` (or ``EMPORIUM_DATASETS_DIR``); tests using it skip without it."""
    path = Path(os.environ.get("EMPORIUM_DATASETS_DIR", REPO.parent / "shared" / "datasets"))
    if not (path / "dummyjson-products.json").is_file():
        pytest.skip(f"shared datasets not found at {path}")
    return path
