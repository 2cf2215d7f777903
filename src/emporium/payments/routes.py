"""HTTP routes of payments (``../shared/API.md``, Payments), grouped by audience
(docs/architecture.md, "Routes"). Answers carry ``Cache-Control: no-store``: a payment
carries its client secret while the browser needs it.

Who: ``GET /payment-providers`` and the webhooks anyone (``PUBLIC``; a webhook's signature
is its credential); ``POST``/``GET /orders/{id}/payments`` the order's owner, a guest with
its ``Order-Token``, staff, or an API key with ``orders:write``/``orders:read``
(``GUEST_OR_SIGNED_IN`` and the handlers' own holder guard; ``manual`` for staff only);
capture, cancel and refunds staff with MFA, or such an API key (``STAFF``).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from functools import partial
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.datastructures import CacheControlHeader, State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, HeaderParameter, JSONBody

from emporium.accounts.audiences import GUEST_OR_SIGNED_IN, PUBLIC, STAFF
from emporium.accounts.identity import (
    Caller,
    client_ip,
    provide_caller,
)
from emporium.core.config import SettingsDep
from emporium.core.db import uow
from emporium.core.db.uow import DbReader, DbSession
from emporium.core.errors import problem_responses
from emporium.core.http.openapi import IDEMPOTENT_REPLAYED
from emporium.core.http.routing import audience_router
from emporium.core.resources import ResourcesDep
from emporium.orders import idempotency
from emporium.orders.exceptions import OrderNotFound
from emporium.orders.holders import OrderToken, order_caller, order_holder
from emporium.payments import queries, refunds, service
from emporium.payments.apply import Actor
from emporium.payments.events import apply_event, parse
from emporium.payments.exceptions import PaymentTimedOut
from emporium.payments.schemas import (
    CaptureBody,
    EventAck,
    PaymentCreate,
    PaymentList,
    PaymentRead,
    ProviderList,
    ProviderRead,
    RefundCreate,
    RefundList,
    RefundRead,
)
from emporium.payments.service import PaymentsContext

AnyRequest = Request[Any, Any, Any]
Ctx = NamedDependency[PaymentsContext]
CallerDep = NamedDependency[Caller]
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key", description="1-255 characters; kept 24 h or more", max_length=255
    ),
]
WRITE = {"api_scope": "orders:write"}
READ = {"api_scope": "orders:read"}


def provide_payments(state: State) -> PaymentsContext:
    """Dependency: the application's payments context (``app.state.payments``)."""
    ctx: PaymentsContext = state.payments
    return ctx


@get("/payment-providers")
async def list_providers(payments: Ctx) -> ProviderList:
    """The enabled payment providers and what a storefront may know of them (Stripe's
    publishable key)."""
    return ProviderList(
        items=[ProviderRead(name, p.public_settings()) for name, p in payments.providers.items()]
    )


@post(
    "/orders/{order_id:uuid}/payments",
    guards=[order_holder],
    status_code=201,
    opt=WRITE,
    responses=problem_responses(409, 415, 503),
    response_headers=[IDEMPOTENT_REPLAYED],
)
async def create_payment(
    request: AnyRequest,
    resources: ResourcesDep,
    session: DbSession,
    payments: Ctx,
    settings: SettingsDep,
    order_id: FromPath[uuid.UUID],
    data: JSONBody[PaymentCreate],
    order_token: OrderToken = None,
    idempotency_key: IdempotencyKey = None,
) -> Response[PaymentRead]:
    """Pay (part of) a pending order: ``amount`` defaults to the unpaid balance. A declined
    card answers ``201`` with the payment ``failed`` (``failure_code``); an unreachable
    provider ``201`` with it ``pending`` (reconciled later). Refusals: ``409
    order_not_payable``, ``409 amount_exceeds_balance``, ``404 provider_not_found``.
    Honours ``Idempotency-Key`` (per order)."""
    caller = await order_caller(request)
    await queries.visible_order(session, caller, order_id, order_token)
    actor = Actor.of(caller, "staff" if caller is not None and caller.is_staff else "client")
    is_staff = caller is not None and caller.is_staff

    async def act() -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
        payment_id = await service.open_payment(session, payments, order_id, data, actor, is_staff)
        return payment_id, order_id, payment_id

    if idempotency_key is None:
        payment_id = (await act())[0]
        await uow.commit(resources, session)
    else:
        lease = timedelta(seconds=settings.idempotency_lease_seconds)
        outcome = await idempotency.begin(
            resources.sessionmaker,
            scope=idempotency.payment_scope(order_id),
            key=idempotency.check_key(idempotency_key),
            fingerprint=idempotency.fingerprint(
                "POST", f"/orders/{order_id}/payments", msgspec.json.encode(data)
            ),
            ttl=timedelta(hours=settings.idempotency_key_ttl_hours),
            lease=lease,
        )
        if isinstance(outcome, idempotency.Replay):
            found = await service.replay(session, payments, outcome.resource_id or order_id, actor)
            if found is None:  # pragma: no cover - the key goes with its order
                raise OrderNotFound("The payment this Idempotency-Key made no longer exists.")
            headers = {"Idempotent-Replayed": "true"}
            return Response(found, status_code=outcome.status_code, headers=headers)
        payment_id = await idempotency.run_claimed(
            session,
            resources.sessionmaker,
            outcome,
            lease,
            act=act,
            commit=partial(uow.commit, resources, session),
            timed_out=lambda: PaymentTimedOut("Paying took too long; nothing was charged."),
        )
    answer = await service.ask_provider(session, payments, payment_id, actor)
    return Response(answer, status_code=201)


@get("/orders/{order_id:uuid}/payments", guards=[order_holder], opt=READ)
async def list_payments(
    request: AnyRequest,
    reader: DbReader,
    payments: Ctx,
    order_id: FromPath[uuid.UUID],
    order_token: OrderToken = None,
) -> PaymentList:
    """The order's payments, oldest first (owner, guest with ``Order-Token``, staff)."""
    await queries.visible_order(reader, await order_caller(request), order_id, order_token)
    return PaymentList(items=await queries.list_payments(reader, payments.vault, order_id))


@post(
    "/payments/{payment_id:uuid}/capture",
    status_code=200,
    opt=WRITE,
    responses=problem_responses(409, 415),
)
async def capture_payment(
    session: DbSession,
    payments: Ctx,
    caller: CallerDep,
    payment_id: FromPath[uuid.UUID],
    data: JSONBody[CaptureBody],
) -> PaymentRead:
    """Staff: capture an authorised payment (``amount`` defaults to all of it), or record a
    ``manual`` payment as received. ``409 payment_state_conflict`` otherwise."""
    return await service.capture_payment(session, payments, caller, payment_id, data.amount)


@post(
    "/payments/{payment_id:uuid}/cancel",
    status_code=200,
    opt=WRITE,
    responses=problem_responses(409),
)
async def cancel_payment(
    session: DbSession, payments: Ctx, caller: CallerDep, payment_id: FromPath[uuid.UUID]
) -> PaymentRead:
    """Staff: void a payment that took no money (``409 payment_state_conflict`` otherwise)."""
    return await service.cancel_payment(session, payments, caller, payment_id)


@post("/payments/webhooks/{provider:str}", status_code=200, responses=problem_responses(404))
async def receive_event(
    request: AnyRequest, session: DbSession, payments: Ctx, provider: FromPath[str]
) -> EventAck:
    """A provider's event: signature checked (``400 invalid_signature``), applied once
    (a duplicate answers ``200`` and changes nothing). ``404`` for a provider not enabled."""
    body = await request.body()
    event = parse(payments, provider, body, request.headers, client_ip(request))
    return EventAck(received=await apply_event(session, payments, provider, event))


@post(
    "/orders/{order_id:uuid}/refunds",
    status_code=201,
    opt=WRITE,
    responses=problem_responses(409, 415),
)
async def refund_order(
    resources: ResourcesDep,
    session: DbSession,
    payments: Ctx,
    caller: CallerDep,
    order_id: FromPath[uuid.UUID],
    data: JSONBody[RefundCreate],
) -> RefundRead:
    """Staff: refund ``amount`` (from ``payment_id``, or the newest captured payments
    first); ``409 refund_exceeds_captured`` beyond what was captured and not refunded."""
    await queries.visible_order(session, caller, order_id, None)
    return await refunds.refund_order(
        session,
        payments,
        order_id,
        data,
        Actor.of(caller, "staff"),
        lambda: uow.commit(resources, session),
    )


@get("/orders/{order_id:uuid}/refunds", opt=READ)
async def list_refunds(
    reader: DbReader, caller: CallerDep, order_id: FromPath[uuid.UUID]
) -> RefundList:
    """Staff: the order's refunds, oldest first."""
    await queries.visible_order(reader, caller, order_id, None)
    return RefundList(items=await queries.list_refunds(reader, order_id))


payments_router = Router(
    path="/",
    route_handlers=[
        audience_router(PUBLIC, tags=["payments"], route_handlers=[list_providers, receive_event]),
        audience_router(
            GUEST_OR_SIGNED_IN,
            tags=["payments"],
            refusals=(404,),
            route_handlers=[create_payment, list_payments],
        ),
        audience_router(
            STAFF,
            tags=["payments"],
            refusals=(404,),
            route_handlers=[capture_payment, cancel_payment, refund_order, list_refunds],
        ),
    ],
    dependencies={
        "payments": Provide(provide_payments, sync_to_thread=False),
        "caller": Provide(provide_caller),
    },
    cache_control=CacheControlHeader(no_store=True),
)
