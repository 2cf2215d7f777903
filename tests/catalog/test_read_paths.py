"""The two ways a product is read on PostgreSQL (SQLAlchemy, and the raw asyncpg path for
uncached product pages) give the same answer, by id and by slug."""

from __future__ import annotations

import asyncpg
import pytest
from litestar import Litestar
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from emporium.catalog.exceptions import ProductNotFound
from emporium.catalog.queries import get_product, get_product_raw
from emporium.core.db.base import create_read_engine, read_connection


@pytest.mark.slow
async def test_raw_and_sqlalchemy_reads_agree(catalog_app: Litestar) -> None:
    """Every imported product reads the same both ways; unpublished and missing ones are 404
    both ways."""
    settings = catalog_app.state.settings
    if settings.is_sqlite:
        pytest.skip("the raw asyncpg path exists on PostgreSQL only")
    engine = create_read_engine(settings)
    assert isinstance(engine, AsyncEngine)  # PostgreSQL reads through asyncpg
    dsn = make_url(settings.database_url).set(drivername="postgresql")
    pool = await asyncpg.create_pool(
        dsn.render_as_string(hide_password=False), min_size=1, max_size=2
    )
    try:
        async with read_connection(engine) as reader:
            rows = (await reader.execute(text("SELECT id, slug FROM product"))).all()
            assert len(rows) == 194
            for row in rows:
                for key in (str(row.id), row.slug):
                    expected = await get_product(reader, key, include_unpublished=True)
                    actual = await get_product_raw(pool, key, include_unpublished=True)
                    assert actual == expected
        for key in ("no-such-product", "00000000-0000-4000-8000-000000000000"):
            with pytest.raises(ProductNotFound):
                await get_product_raw(pool, key, include_unpublished=True)
    finally:
        await pool.close()
        await engine.dispose()
