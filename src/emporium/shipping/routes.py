"""Staff routes of the shipping room: zones, methods and tax rates (MFA as every staff
route; API keys with ``shipping:read`` / ``shipping:write``)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, delete, get, patch, post
from litestar.datastructures import CacheControlHeader
from litestar.params import FromPath, JSONBody

from emporium.accounts.audiences import STAFF
from emporium.accounts.identity import identify
from emporium.core.config import SettingsDep
from emporium.core.db.pagination import DEFAULT_LIMIT, Cursor, Limit
from emporium.core.db.uow import DbSession
from emporium.core.errors import problem_responses
from emporium.core.http.clientip import client_ip
from emporium.core.http.routing import audience_router
from emporium.shipping import service
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

WRITE = problem_responses(404, 409, 415)  # what writes answer beyond the staff refusals
AnyRequest = Request[Any, Any, Any]


async def _actor(request: AnyRequest) -> service.Actor:
    identity = await identify(request)
    key = request.scope.get("state", {}).get("api_key")
    who = identity.user_id if identity else f"api_key:{getattr(key, 'id', None)}"
    return service.Actor(user_id=who, client_ip=client_ip(request))


@get("/shipping-zones")
async def list_zones(
    session: DbSession, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> ZonePage:
    """Staff: shipping zones, oldest first."""
    return await service.list_zones(session, limit=limit, cursor=cursor)


@post("/shipping-zones", responses=WRITE)
async def create_zone(
    request: AnyRequest, session: DbSession, data: JSONBody[ZoneCreate]
) -> ZoneRead:
    """Staff: a zone of ISO 3166-1 countries and/or ISO 3166-2 regions (422 otherwise)."""
    return await service.create_zone(session, await _actor(request), data)


@patch("/shipping-zones/{zone_id:uuid}", responses=WRITE)
async def update_zone(
    request: AnyRequest,
    session: DbSession,
    zone_id: FromPath[uuid.UUID],
    data: JSONBody[ZoneUpdate],
) -> ZoneRead:
    """Staff: change a zone."""
    return await service.update_zone(session, await _actor(request), zone_id, data)


@delete("/shipping-zones/{zone_id:uuid}", responses=WRITE)
async def delete_zone(
    request: AnyRequest, session: DbSession, zone_id: FromPath[uuid.UUID]
) -> None:
    """Staff: delete a zone without methods (409 ``shipping_zone_in_use`` otherwise)."""
    await service.delete_zone(session, await _actor(request), zone_id)


@get("/shipping-methods")
async def list_methods(
    session: DbSession, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> MethodPage:
    """Staff: shipping methods, oldest first."""
    return await service.list_methods(session, limit=limit, cursor=cursor)


@post("/shipping-methods", responses=WRITE)
async def create_method(
    request: AnyRequest, session: DbSession, settings: SettingsDep, data: JSONBody[MethodCreate]
) -> MethodRead:
    """Staff: a flat-rate method of a zone, priced in the shop currency."""
    return await service.create_method(
        session, await _actor(request), data, currency=settings.currency
    )


@patch("/shipping-methods/{method_id:uuid}", responses=WRITE)
async def update_method(
    request: AnyRequest,
    session: DbSession,
    method_id: FromPath[uuid.UUID],
    data: JSONBody[MethodUpdate],
) -> MethodRead:
    """Staff: change a method."""
    return await service.update_method(session, await _actor(request), method_id, data)


@delete("/shipping-methods/{method_id:uuid}", responses=WRITE)
async def delete_method(
    request: AnyRequest, session: DbSession, method_id: FromPath[uuid.UUID]
) -> None:
    """Staff: delete a method."""
    await service.delete_method(session, await _actor(request), method_id)


@get("/tax-rates")
async def list_rates(
    session: DbSession, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> TaxRatePage:
    """Staff: tax rates, oldest first."""
    return await service.list_rates(session, limit=limit, cursor=cursor)


@post("/tax-rates", responses=WRITE)
async def create_rate(
    request: AnyRequest, session: DbSession, data: JSONBody[TaxRateCreate]
) -> TaxRateRead:
    """Staff: a rate in basis points for a country, or one of its regions, and a tax class
    (409 ``tax_rate_exists`` when one is there)."""
    return await service.create_rate(session, await _actor(request), data)


@patch("/tax-rates/{rate_id:uuid}", responses=WRITE)
async def update_rate(
    request: AnyRequest,
    session: DbSession,
    rate_id: FromPath[uuid.UUID],
    data: JSONBody[TaxRateUpdate],
) -> TaxRateRead:
    """Staff: change a rate."""
    return await service.update_rate(session, await _actor(request), rate_id, data)


@delete("/tax-rates/{rate_id:uuid}", responses=WRITE)
async def delete_rate(
    request: AnyRequest, session: DbSession, rate_id: FromPath[uuid.UUID]
) -> None:
    """Staff: delete a rate (that place and class are then taxed at zero)."""
    await service.delete_rate(session, await _actor(request), rate_id)


shipping_router = audience_router(
    STAFF,
    tags=["shipping"],
    route_handlers=[
        list_zones,
        create_zone,
        update_zone,
        delete_zone,
        list_methods,
        create_method,
        update_method,
        delete_method,
        list_rates,
        create_rate,
        update_rate,
        delete_rate,
    ],
    cache_control=CacheControlHeader(no_store=True),
)
