"""Helpers shared by the importer tests."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from emporium.core.config import Settings
from emporium.importers import shopify
from emporium.importers.common import ImportReport, write_catalog


async def import_shopify(session: AsyncSession, settings: Settings, *paths: Path) -> ImportReport:
    """Parse Shopify CSV ``paths`` (which must be valid) and write them in one transaction."""
    products, problems = shopify.parse(list(paths))
    assert problems == []
    report = ImportReport()
    async with session.begin():
        await write_catalog(session, products, currency=settings.currency, report=report)
    return report
