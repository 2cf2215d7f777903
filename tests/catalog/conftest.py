"""Fixtures of the catalog tests: one imported DummyJSON catalog per module and database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from litestar import Litestar

from factories import DATABASES, Client, app_for, client_for, loaded_database


@pytest.fixture(scope="module", params=DATABASES)
def catalog_app(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    datasets_dir: Path,
    key_file: Path,
) -> Iterator[Litestar]:
    """An app on a database of each kind holding the imported DummyJSON catalog (shared by
    the module's read-only tests)."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    for url in loaded_database(request.param, name, tmp_path_factory, datasets_dir):
        yield app_for(url, key_file)


@pytest.fixture
async def shop(catalog_app: Litestar) -> AsyncIterator[Client]:
    """A client of the app serving the imported catalog."""
    async with client_for(catalog_app) as client:
        yield client
