"""Demo promotions for ``serve --demo``: one that applies by itself and one code, so that a
cart of the demo shop shows a discount out of the box. Written through ``service``, so they
obey the staff rules and are logged like any staff change."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.catalog.models import Category
from emporium.core.money import currency_exponent
from emporium.promotions import service
from emporium.promotions.models import Promotion
from emporium.promotions.schemas import AppliesTo, PromotionCreate

DEMO_ACTOR = service.Actor(user_id="cli:demo")
"""Who the security log names for the demo's promotions."""
SALE_CATEGORY = "apparel"
"""The slug of the demo catalog's category on sale (``importers.demo``: Apparel)."""
WELCOME_CODE = "WELCOME5"


async def _sale_category(session: AsyncSession) -> uuid.UUID | None:
    """The demo's Apparel category, else the shop's oldest top category, else None."""
    found = await session.scalar(select(Category.id).where(Category.slug == SALE_CATEGORY))
    if found is not None:
        return found
    return await session.scalar(
        select(Category.id)
        .where(Category.parent_id.is_(None))
        .order_by(Category.created_at, Category.id)
        .limit(1)
    )


async def create_demo_promotions(session: AsyncSession, *, currency: str) -> bool:
    """Add "Winter sale" (automatic: 10 % off the Apparel category, sub-categories included,
    combinable) and the code ``WELCOME5`` (5 units of ``currency`` off from a subtotal of
    30, once per customer, not combinable), unless the shop has promotions. True when added."""
    if await session.scalar(select(func.count()).select_from(Promotion)):
        return False
    unit = 10 ** currency_exponent(currency)
    category = await _sale_category(session)
    sale = PromotionCreate(
        name="Winter sale",
        type="percentage",
        value=1000,
        applies_to=AppliesTo(category_ids=[category]) if category else None,
        combinable=True,
    )
    welcome = PromotionCreate(
        name="Welcome discount",
        code=WELCOME_CODE,
        type="fixed_amount",
        value=5 * unit,
        min_subtotal=30 * unit,
        usage_limit_per_customer=1,
        combinable=False,
    )
    for data in (sale, welcome):
        await service.create_promotion(session, DEMO_ACTOR, data, currency=currency)
    return True
