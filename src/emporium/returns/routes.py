"""HTTP routes of returns (``../shared/API.md``, Fulfilment and returns), grouped by audience
(docs/architecture.md, "Routes"). Answers carry ``Cache-Control: no-store``.

Who: ``POST``/``GET /orders/{id}/returns`` the order's owner, a guest with its
``Order-Token``, staff, or an API key with ``orders:write``/``orders:read``
(``GUEST_OR_SIGNED_IN`` and the handlers' own holder guard; the service checks that the
caller holds the order, and the return window for customers and guests); receiving and
refunding staff with MFA, or such an API key (``STAFF``).
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Router, get, post
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from emporium.accounts.audiences import GUEST_OR_SIGNED_IN, STAFF
from emporium.accounts.identity import Caller, provide_caller
from emporium.core.config import SettingsDep
from emporium.core.db import uow
from emporium.core.db.uow import DbReader, DbSession
from emporium.core.errors import problem_responses
from emporium.core.http.routing import audience_router
from emporium.core.resources import ResourcesDep
from emporium.orders.holders import OrderToken, order_caller, order_holder
from emporium.payments.routes import provide_payments
from emporium.payments.service import PaymentsContext
from emporium.returns import refunding, service
from emporium.returns.schemas import (
    ReturnCreate,
    ReturnList,
    ReturnRead,
    ReturnReceive,
    ReturnRefund,
)

AnyRequest = Request[Any, Any, Any]
Ctx = NamedDependency[PaymentsContext]
CallerDep = NamedDependency[Caller]
WRITE = {"api_scope": "orders:write"}
READ = {"api_scope": "orders:read"}


@post(
    "/orders/{order_id:uuid}/returns",
    guards=[order_holder],
    status_code=201,
    opt=WRITE,
    responses=problem_responses(409, 415),
)
async def request_return(
    request: AnyRequest,
    session: DbSession,
    settings: SettingsDep,
    order_id: FromPath[uuid.UUID],
    data: JSONBody[ReturnCreate],
    order_token: OrderToken = None,
) -> ReturnRead:
    """Ask to send shipped units back: the owner or a guest with ``Order-Token`` within
    ``EMPORIUM_RETURN_WINDOW_DAYS`` of delivery (``409 return_window_closed`` after),
    staff at any time. ``409 return_exceeds_fulfilled`` beyond what was shipped and is not
    returned or asked back already; ``409 order_not_returnable`` for an unpaid, cancelled
    or refunded order."""
    return await service.request_return(
        session,
        await order_caller(request),
        order_id,
        order_token,
        data,
        window_days=settings.return_window_days,
    )


@get("/orders/{order_id:uuid}/returns", guards=[order_holder], opt=READ)
async def list_returns(
    request: AnyRequest,
    reader: DbReader,
    order_id: FromPath[uuid.UUID],
    order_token: OrderToken = None,
) -> ReturnList:
    """The order's returns, oldest first (owner, guest with ``Order-Token``, staff)."""
    return await service.list_returns(reader, await order_caller(request), order_id, order_token)


@post(
    "/returns/{return_id:uuid}/receive",
    status_code=200,
    opt=WRITE,
    responses=problem_responses(409, 415),
)
async def receive_return(
    session: DbSession,
    caller: CallerDep,
    return_id: FromPath[uuid.UUID],
    data: JSONBody[ReturnReceive],
) -> ReturnRead:
    """Staff: count a return's parcel in, line by line; ``restock`` puts units back on the
    shelf (a ``returned`` stock movement), false leaves damaged ones out. ``409
    return_state_conflict`` when already received; ``409 receive_exceeds_requested``
    beyond what the return asked for."""
    return await service.receive_return(session, caller, return_id, data)


@post(
    "/returns/{return_id:uuid}/refund",
    status_code=200,
    opt=WRITE,
    responses=problem_responses(409, 415),
)
async def refund_return(
    resources: ResourcesDep,
    session: DbSession,
    payments: Ctx,
    caller: CallerDep,
    return_id: FromPath[uuid.UUID],
    data: JSONBody[ReturnRefund],
) -> ReturnRead:
    """Staff: refund what the customer paid for the received units (their subtotal less
    their share of discounts, plus their tax; the shipping once when ``include_shipping``),
    through the order's payments, gift cards first. ``409 return_state_conflict`` unless
    received and not refunded; ``409 shipping_already_refunded``; ``409
    refund_exceeds_captured``."""
    return await refunding.refund_return(
        session, payments, caller, return_id, data, lambda: uow.commit(resources, session)
    )


returns_router = Router(
    path="/",
    route_handlers=[
        audience_router(
            GUEST_OR_SIGNED_IN,
            tags=["returns"],
            refusals=(404,),
            route_handlers=[request_return, list_returns],
        ),
        audience_router(
            STAFF,
            tags=["returns"],
            refusals=(404,),
            route_handlers=[receive_return, refund_return],
        ),
    ],
    dependencies={
        "payments": Provide(provide_payments, sync_to_thread=False),
        "caller": Provide(provide_caller),
    },
    cache_control=CacheControlHeader(no_store=True),
)
