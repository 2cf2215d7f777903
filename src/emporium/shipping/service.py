"""Staff operations on shipping zones, shipping methods and tax rates.

Every write is validated (ISO 3166 codes that exist, ranges that make sense: 422 with the
field named) and recorded in the security log as ``authz_admin`` (OWASP Logging Vocabulary:
activity of privileged users) with the object and the ``action``, at WARNING level like
other changes made with privileges, so that the default log level keeps them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.audit.chain import record_audit
from emporium.core.clock import utcnow
from emporium.core.db.base import Base
from emporium.core.db.pagination import by_created_at, created_at_cursor
from emporium.core.errors import InvalidInput
from emporium.core.security_events import security_event
from emporium.shipping.exceptions import (
    MethodNotFound,
    TaxRateExists,
    TaxRateNotFound,
    ZoneInUse,
    ZoneNotFound,
)
from emporium.shipping.geo import is_country, is_region
from emporium.shipping.models import ShippingMethod, ShippingZone, TaxRate
from emporium.shipping.schemas import (
    MethodCreate,
    MethodPage,
    MethodRead,
    MethodUpdate,
    TaxRateCreate,
    TaxRatePage,
    TaxRateRead,
    TaxRateUpdate,
    ZoneCreate,
    ZonePage,
    ZoneRead,
    ZoneUpdate,
)

M = TypeVar("M", bound=Base)
Db = AsyncSession


@dataclass(frozen=True)
class Actor:
    """Who makes a staff change, for the security log: a user or an API key, and from where."""

    user_id: object
    client_ip: str | None


async def _audit(session: AsyncSession, actor: Actor, action: str, object_id: uuid.UUID) -> None:
    security_event(
        "authz_admin",
        user_id=actor.user_id,
        client_ip=actor.client_ip,
        action=action,
        object_id=str(object_id),
    )
    object_type, _, _ = action.partition(".")
    await record_audit(session, action=action, object_type=object_type, object_id=object_id)


def _bad(field: str, msg: str) -> InvalidInput:
    return InvalidInput(f"{field}: {msg}", errors=[{"loc": ["body", field], "msg": msg}])


def _check_places(countries: Sequence[str], regions: Sequence[str]) -> None:
    unknown = [c for c in countries if not is_country(c)]
    if unknown:
        raise _bad("countries", f"not ISO 3166-1 alpha-2 countries: {', '.join(unknown)}")
    unknown = [r for r in regions if not is_region(r)]
    if unknown:
        raise _bad("regions", f"not ISO 3166-2 subdivisions: {', '.join(unknown)}")
    if not countries and not regions:
        raise _bad("countries", "a zone needs at least one country or region")


async def _page(db: Db, stmt: Select[Any], model: Any, limit: int, cursor: str | None) -> Any:
    stmt = by_created_at(stmt, "created_at", model.created_at, model.id, cursor)
    return list((await db.scalars(stmt.limit(limit + 1))).all())


def _zone_read(zone: ShippingZone) -> ZoneRead:
    return ZoneRead(
        id=zone.id,
        name=zone.name,
        countries=list(zone.countries),
        regions=list(zone.regions),
        created_at=zone.created_at,
        updated_at=zone.updated_at,
    )


async def _get(session: AsyncSession, model: type[M], object_id: uuid.UUID, error: Any) -> M:
    found = await session.get(model, object_id)
    if found is None:
        raise error("No such object.")
    return found


async def create_zone(session: AsyncSession, actor: Actor, data: ZoneCreate) -> ZoneRead:
    """Staff: a new zone. Raises InvalidInput (422) for unknown codes or an empty zone."""
    countries, regions = sorted(set(data.countries)), sorted(set(data.regions))
    _check_places(countries, regions)
    now = utcnow()
    zone = ShippingZone(
        id=uuid.uuid4(),
        name=data.name,
        countries=countries,
        regions=regions,
        created_at=now,
        updated_at=now,
    )
    session.add(zone)
    await session.flush()
    await _audit(session, actor, "shipping_zone.created", zone.id)
    return _zone_read(zone)


async def update_zone(
    session: AsyncSession, actor: Actor, zone_id: uuid.UUID, data: ZoneUpdate
) -> ZoneRead:
    """Staff: change a zone. Raises ZoneNotFound (404), InvalidInput (422)."""
    zone = await _get(session, ShippingZone, zone_id, ZoneNotFound)
    countries = sorted(set(data.countries)) if data.countries is not msgspec.UNSET else None
    regions = sorted(set(data.regions)) if data.regions is not msgspec.UNSET else None
    _check_places(
        countries if countries is not None else zone.countries,
        regions if regions is not None else zone.regions,
    )
    if data.name is not msgspec.UNSET:
        zone.name = data.name
    zone.countries = countries if countries is not None else zone.countries
    zone.regions = regions if regions is not None else zone.regions
    zone.updated_at = utcnow()
    await session.flush()
    await _audit(session, actor, "shipping_zone.updated", zone.id)
    return _zone_read(zone)


async def delete_zone(session: AsyncSession, actor: Actor, zone_id: uuid.UUID) -> None:
    """Staff: delete a zone. Raises ZoneNotFound (404), ZoneInUse (409) while it has methods."""
    zone = await _get(session, ShippingZone, zone_id, ZoneNotFound)
    used = await session.scalar(
        select(func.count()).select_from(ShippingMethod).where(ShippingMethod.zone_id == zone_id)
    )
    if used:
        raise ZoneInUse("Delete or move the zone's shipping methods first.")
    await session.delete(zone)
    await session.flush()
    await _audit(session, actor, "shipping_zone.deleted", zone_id)


async def list_zones(db: Db, *, limit: int, cursor: str | None) -> ZonePage:
    """Staff: zones, oldest first. Raises InvalidInput (422) for a bad cursor."""
    rows = await _page(db, select(ShippingZone), ShippingZone, limit, cursor)
    items = [_zone_read(z) for z in rows[:limit]]
    return ZonePage(
        items=items, next_cursor=created_at_cursor(items, len(rows) > limit, "created_at")
    )


def method_read(m: ShippingMethod) -> MethodRead:
    """The API shape of a method."""
    low, high = m.delivery_days_min, m.delivery_days_max
    days = None if low is None or high is None else [low, high]
    return MethodRead(
        id=m.id,
        zone_id=m.zone_id,
        name=m.name,
        carrier=m.carrier,
        price=m.price,
        currency=m.currency,
        free_over=m.free_over,
        min_weight_grams=m.min_weight_grams,
        max_weight_grams=m.max_weight_grams,
        tax_class=m.tax_class,
        active=m.active,
        delivery_days=days,
        created_at=m.created_at,
        updated_at=m.updated_at,
    )


def _check_method(m: ShippingMethod) -> None:
    low, high = m.min_weight_grams, m.max_weight_grams
    if low is not None and high is not None and high < low:
        raise _bad("max_weight_grams", "must not be below min_weight_grams")
    days = (m.delivery_days_min, m.delivery_days_max)
    if days[0] is not None and days[1] is not None and days[1] < days[0]:
        raise _bad("delivery_days", "[min, max] with min <= max")


async def _known_zone(session: AsyncSession, zone_id: uuid.UUID) -> None:
    if await session.get(ShippingZone, zone_id) is None:
        raise _bad("zone_id", "no such shipping zone")


async def create_method(
    session: AsyncSession, actor: Actor, data: MethodCreate, *, currency: str
) -> MethodRead:
    """Staff: a new method priced in the shop ``currency``. Raises InvalidInput (422) for an
    unknown zone or inverted ranges."""
    await _known_zone(session, data.zone_id)
    fields = msgspec.structs.asdict(data)
    days = fields.pop("delivery_days") or [None, None]
    now = utcnow()
    method = ShippingMethod(
        id=uuid.uuid4(),
        currency=currency,
        created_at=now,
        updated_at=now,
        delivery_days_min=days[0],
        delivery_days_max=days[1],
        **fields,
    )
    _check_method(method)
    session.add(method)
    await session.flush()
    await _audit(session, actor, "shipping_method.created", method.id)
    return method_read(method)


async def update_method(
    session: AsyncSession, actor: Actor, method_id: uuid.UUID, data: MethodUpdate
) -> MethodRead:
    """Staff: change a method. Raises MethodNotFound (404), InvalidInput (422)."""
    method = await _get(session, ShippingMethod, method_id, MethodNotFound)
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    if "zone_id" in changes:
        await _known_zone(session, changes["zone_id"])
    if "delivery_days" in changes:
        days = changes.pop("delivery_days") or [None, None]
        method.delivery_days_min, method.delivery_days_max = days[0], days[1]
    for key, value in changes.items():
        setattr(method, key, value)
    _check_method(method)
    method.updated_at = utcnow()
    await session.flush()
    await _audit(session, actor, "shipping_method.updated", method.id)
    return method_read(method)


async def delete_method(session: AsyncSession, actor: Actor, method_id: uuid.UUID) -> None:
    """Staff: delete a method (orders keep its name and price). Raises MethodNotFound."""
    await session.delete(await _get(session, ShippingMethod, method_id, MethodNotFound))
    await session.flush()
    await _audit(session, actor, "shipping_method.deleted", method_id)


async def list_methods(db: Db, *, limit: int, cursor: str | None) -> MethodPage:
    """Staff: methods, oldest first. Raises InvalidInput (422) for a bad cursor."""
    rows = await _page(db, select(ShippingMethod), ShippingMethod, limit, cursor)
    items = [method_read(m) for m in rows[:limit]]
    return MethodPage(
        items=items, next_cursor=created_at_cursor(items, len(rows) > limit, "created_at")
    )


def _rate_read(r: TaxRate) -> TaxRateRead:
    return TaxRateRead(
        id=r.id,
        country=r.country,
        region=r.region or None,
        tax_class=r.tax_class,
        rate_bp=r.rate_bp,
        name=r.name,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


async def create_rate(session: AsyncSession, actor: Actor, data: TaxRateCreate) -> TaxRateRead:
    """Staff: a new rate. Raises InvalidInput (422) for an unknown country or a region not
    in it, TaxRateExists (409) when that country, region and class has one."""
    if not is_country(data.country):
        raise _bad("country", "not an ISO 3166-1 alpha-2 country")
    if data.region is not None and not (
        is_region(data.region) and data.region.startswith(f"{data.country}-")
    ):
        raise _bad("region", f"not an ISO 3166-2 subdivision of {data.country}")
    now = utcnow()
    rate = TaxRate(
        id=uuid.uuid4(),
        country=data.country,
        region=data.region or "",
        tax_class=data.tax_class,
        rate_bp=data.rate_bp,
        name=data.name,
        created_at=now,
        updated_at=now,
    )
    session.add(rate)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise TaxRateExists("A rate for this place and tax class exists; change it.") from exc
    await _audit(session, actor, "tax_rate.created", rate.id)
    return _rate_read(rate)


async def update_rate(
    session: AsyncSession, actor: Actor, rate_id: uuid.UUID, data: TaxRateUpdate
) -> TaxRateRead:
    """Staff: change a rate's ``rate_bp`` or name. Raises TaxRateNotFound (404)."""
    rate = await _get(session, TaxRate, rate_id, TaxRateNotFound)
    if data.rate_bp is not msgspec.UNSET:
        rate.rate_bp = data.rate_bp
    if data.name is not msgspec.UNSET:
        rate.name = data.name
    rate.updated_at = utcnow()
    await session.flush()
    await _audit(session, actor, "tax_rate.updated", rate.id)
    return _rate_read(rate)


async def delete_rate(session: AsyncSession, actor: Actor, rate_id: uuid.UUID) -> None:
    """Staff: delete a rate (the place then has no rate for that class: zero). Raises
    TaxRateNotFound (404)."""
    await session.delete(await _get(session, TaxRate, rate_id, TaxRateNotFound))
    await session.flush()
    await _audit(session, actor, "tax_rate.deleted", rate_id)


async def list_rates(db: Db, *, limit: int, cursor: str | None) -> TaxRatePage:
    """Staff: rates, oldest first. Raises InvalidInput (422) for a bad cursor."""
    rows = await _page(db, select(TaxRate), TaxRate, limit, cursor)
    items = [_rate_read(r) for r in rows[:limit]]
    return TaxRatePage(
        items=items, next_cursor=created_at_cursor(items, len(rows) > limit, "created_at")
    )
