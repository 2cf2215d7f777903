"""HTTP routes of fulfilment (``../shared/API.md``, Fulfilment and returns): staff with MFA,
or an API key with ``orders:write`` / ``orders:read`` (``STAFF``). Answers carry
``Cache-Control: no-store``, like every order answer."""

from __future__ import annotations

import uuid

from litestar import Router, get, post
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from emporium.accounts.audiences import STAFF
from emporium.accounts.identity import Caller, provide_caller
from emporium.accounts.protect import AccountsContext
from emporium.core.db.uow import DbReader, DbSession
from emporium.core.errors import problem_responses
from emporium.core.http.routing import audience_router
from emporium.fulfilment import queries, service
from emporium.fulfilment.schemas import FulfillmentCreate, FulfillmentList, FulfillmentRead

CallerDep = NamedDependency[Caller]
Ctx = NamedDependency[AccountsContext]
WRITE = {"api_scope": "orders:write"}
READ = {"api_scope": "orders:read"}


@post(
    "/orders/{order_id:uuid}/fulfillments",
    status_code=201,
    opt=WRITE,
    summary="Ship units of a paid order in one parcel",
    responses=problem_responses(409, 415),
)
async def create_fulfillment(
    session: DbSession,
    accounts: Ctx,
    caller: CallerDep,
    order_id: FromPath[uuid.UUID],
    data: JSONBody[FulfillmentCreate],
) -> FulfillmentRead:
    """Staff: ship ``lines`` of a paid order with its carrier and tracking (``https`` URL),
    e-mailing the customer when ``notify_customer``. ``409 order_not_fulfillable`` for an
    unpaid order, ``409 fulfillment_exceeds_ordered`` naming the lines that would ship more
    than was ordered (nothing changes), ``422 order_line_not_found``."""
    return await service.create_fulfillment(session, accounts.vault, caller, order_id, data)


@get("/orders/{order_id:uuid}/fulfillments", opt=READ, summary="List an order's parcels")
async def list_fulfillments(reader: DbReader, order_id: FromPath[uuid.UUID]) -> FulfillmentList:
    """Staff: the order's parcels, oldest first."""
    return FulfillmentList(items=await queries.list_fulfillments(reader, order_id))


@post(
    "/fulfillments/{fulfillment_id:uuid}/delivered",
    status_code=200,
    opt=WRITE,
    summary="Mark a parcel delivered",
    responses=problem_responses(409),
)
async def mark_delivered(
    session: DbSession, accounts: Ctx, caller: CallerDep, fulfillment_id: FromPath[uuid.UUID]
) -> FulfillmentRead:
    """Staff: the parcel arrived; the order becomes ``delivered`` with its last parcel
    (once every unit shipped). ``409 fulfillment_already_delivered`` the second time."""
    return await service.mark_delivered(session, accounts.vault, caller, fulfillment_id)


fulfilment_router = Router(
    path="/",
    route_handlers=[
        audience_router(
            STAFF,
            tags=["fulfilment"],
            refusals=(404,),
            route_handlers=[create_fulfillment, list_fulfillments, mark_delivered],
        )
    ],
    dependencies={"caller": Provide(provide_caller)},
    cache_control=CacheControlHeader(no_store=True),
)
