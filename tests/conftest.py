"""Shared fixtures: a fresh, migrated database per test (SQLite always, PostgreSQL when
``EMPORIUM_TEST_POSTGRES_URL`` is set), the app, an HTTP client and the shared datasets."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from emporium.app import create_app
from emporium.core.config import Settings
from emporium.core.db import Base, create_engine, create_sessionmaker
from emporium.core.migrate import upgrade
from emporium.models import import_all_models

ADMIN_KEY = "test-admin-key-0123456789abcdef0123456789"
REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("EMPORIUM_TEST_POSTGRES_URL")

import_all_models()


def pytest_report_header() -> str:
    """Say which databases the run covers."""
    if POSTGRES_URL:
        return f"databases: sqlite, postgresql ({POSTGRES_URL})"
    return "databases: sqlite only (EMPORIUM_TEST_POSTGRES_URL is not set)"


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


async def _truncate_postgres(url: str) -> None:
    engine = create_async_engine(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} CASCADE"))
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
    asyncio.run(_truncate_postgres(url))
    yield url


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings for a test app on the test database, with the admin key set."""
    return Settings(
        database_url=database_url, admin_api_key=ADMIN_KEY, log_format="json",
        log_level="WARNING", redis_url=None,
    )  # fmt: skip


@pytest.fixture
def app(settings: Settings) -> Litestar:
    """The application under test."""
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """An HTTP client talking to the app in-process (lifespan run)."""
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
def admin_headers() -> dict[str, str]:
    """Headers of a staff caller (the temporary admin API key)."""
    return {"X-API-Key": ADMIN_KEY}


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
