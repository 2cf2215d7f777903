"""Demo shipping and taxes for ``serve --demo``: a guest checkout works out of the box for a
German and a US address (prices as in the demo catalog, in the shop currency)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.shipping.models import ShippingMethod, ShippingZone, TaxRate

ZONES = {
    "Germany": (["DE"], "DHL Paket", 490, 5000),
    "United States": (["US"], "UPS Ground", 799, 10000),
}
RATES = [
    ("DE", "", "standard", 1900, "USt 19 %"),
    ("DE", "", "reduced", 700, "USt 7 %"),
    ("US", "", "standard", 0, "No federal sales tax"),
    ("US", "US-CA", "standard", 725, "California sales tax"),
    ("US", "US-NY", "standard", 400, "New York sales tax"),
]


async def create_demo_shipping(session: AsyncSession, *, currency: str) -> bool:
    """Add the demo zones (Germany, United States), one method each (free over 50.00 and
    100.00) and VAT / sales-tax rates, unless the shop has zones already. True when added."""
    if await session.scalar(select(func.count()).select_from(ShippingZone)):
        return False
    for name, (countries, method, price, free_over) in ZONES.items():
        zone = ShippingZone(id=uuid.uuid4(), name=name, countries=countries, regions=[])
        session.add(zone)
        await session.flush()
        session.add(
            ShippingMethod(
                id=uuid.uuid4(),
                zone_id=zone.id,
                name=method,
                price=price,
                currency=currency,
                free_over=free_over,
                delivery_days_min=1,
                delivery_days_max=5,
            )
        )
    session.add_all(
        TaxRate(id=uuid.uuid4(), country=c, region=r, tax_class=k, rate_bp=bp, name=n)
        for c, r, k, bp, n in RATES
    )
    await session.flush()
    return True
