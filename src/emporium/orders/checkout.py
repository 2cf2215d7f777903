"""Checkout: turn requested lines (or the cart) into an order in one transaction.

Every line is priced from the database, totals are computed here, stock is taken from each
variant with a conditional update (``inventory.service.take_stock``), and the order, its
lines, its first status and the ``sale`` movements are written in the caller's transaction.
If any line is short, :class:`InsufficientStock` names the lines and the request boundary
rolls everything back: nothing at all changes.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import msgspec
import structlog
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from emporium.accounts.addresses import own_address_fields
from emporium.accounts.protect import AccountsContext
from emporium.catalog.models import Product, Variant
from emporium.core.clock import utcnow
from emporium.core.db import table_of
from emporium.core.errors import InvalidInput
from emporium.inventory.service import take_stock
from emporium.jobs.outbox import emit_event
from emporium.orders import idempotency
from emporium.orders.cart import cart_quantities, empty_cart, line_title
from emporium.orders.exceptions import (
    CheckoutTimedOut,
    EmptyCart,
    OrderNotFound,
    VariantUnavailable,
)
from emporium.orders.models import Order, OrderLine, OrderStatusChange
from emporium.orders.quote import Goods, Place, quote
from emporium.orders.schemas import (
    MAX_LINES,
    MAX_QUANTITY,
    OrderCreate,
    OrderRead,
    ShippingAddress,
    StatusChangeRead,
)
from emporium.orders.service import order_event_data, read_order, seal_address
from emporium.orders.totals import line_read, line_row, order_figures, shipping_read

_V, _P = table_of(Variant).c, table_of(Product).c
_PRICING = select(
    _V.id, _V.sku, _V.title, _V.price, _V.currency, _V.product_id, _V.weight_grams,
    _P.title.label("product_title"), _P.published, _P.tax_class,
).join(table_of(Product), _P.id == _V.product_id)  # fmt: skip
log = structlog.get_logger("emporium.orders")
_NUMBER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32


def new_order_number() -> str:
    """A random order number such as ``7KQ2-M9XD-4T`` (50 bits): never sequential, so it
    reveals nothing about the shop's volume and cannot be enumerated."""
    raw = "".join(secrets.choice(_NUMBER_ALPHABET) for _ in range(10))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def _merge(lines: Iterable[tuple[uuid.UUID, int]]) -> dict[uuid.UUID, int]:
    """Sum the quantities of lines naming the same variant, keeping first-seen order."""
    merged: dict[uuid.UUID, int] = {}
    for variant_id, quantity in lines:
        merged[variant_id] = merged.get(variant_id, 0) + quantity
    too_many = [str(v) for v, q in merged.items() if q > MAX_QUANTITY]
    if too_many:
        raise InvalidInput(
            f"An order holds at most {MAX_QUANTITY} units of one variant.",
            errors=[{"loc": ["body", "items"], "msg": f"too many units of {v}"} for v in too_many],
        )
    return merged


async def _priced(session: AsyncSession, quantities: dict[uuid.UUID, int]) -> list[Any]:
    rows = {r.id: r for r in await session.execute(_PRICING.where(_V.id.in_(list(quantities))))}
    missing = [v for v in quantities if v not in rows or not rows[v].published]
    if missing:
        raise VariantUnavailable(
            f"{len(missing)} line(s) name a variant that is not for sale.",
            errors=[{"loc": ["body", "items"], "msg": f"variant {v} is not for sale"}
                    for v in missing],
        )  # fmt: skip
    priced = [rows[v] for v in quantities]
    if len({r.currency for r in priced}) > 1:
        raise InvalidInput("All lines of an order must be priced in one currency.")
    return priced


async def _address(
    session: AsyncSession, ctx: AccountsContext, customer_id: uuid.UUID, data: OrderCreate
) -> dict[str, Any]:
    if (data.shipping_address is None) == (data.address_id is None):
        raise InvalidInput(
            "Give exactly one of shipping_address and address_id.",
            errors=[{"loc": ["body", "shipping_address"], "msg": "exactly one of "
                     "shipping_address and address_id is required"}],
        )  # fmt: skip
    if data.shipping_address is not None:
        return msgspec.structs.asdict(data.shipping_address)
    assert data.address_id is not None
    return await own_address_fields(session, ctx, customer_id, data.address_id)


async def place_order(
    session: AsyncSession,
    ctx: AccountsContext,
    *,
    customer_id: uuid.UUID,
    data: OrderCreate,
    external_ref: str | None = None,
    announce: bool = True,
    prices_include_tax: bool = False,
    require_shipping: bool = True,
) -> OrderRead:
    """Place an order for ``customer_id`` from ``data.items`` or, without them, the cart
    (which is then emptied). Returns the order as the API shows it (status ``pending``).
    ``announce``: record the ``order.created`` event (confirmation e-mail, webhooks); an
    import of past orders passes False. Every figure is computed by ``orders.pricing``
    (``prices_include_tax``: the shop's ``EMPORIUM_PRICES_INCLUDE_TAX``) for the address
    and ``data.shipping_method_id`` (``orders.quote``); ``require_shipping``: once the shop
    has shipping methods an order must choose one (an import of past orders passes False).

    Raises:
        EmptyCart: (422) no ``items`` and an empty cart.
        InvalidInput: (422) too many units or lines, mixed currencies, not exactly one of
            ``shipping_address`` and ``address_id``.
        AddressNotFound: (404) ``address_id`` is not one of the caller's addresses.
        VariantUnavailable: (422) a line names a variant that is not for sale.
        InsufficientStock: (409) naming every short line; nothing changes.
        ShippingMethodRequired, ShippingMethodUnavailable: (422) see ``orders.quote``.
    """
    from_cart = data.items is None
    pairs = (
        await cart_quantities(session, customer_id)
        if data.items is None
        else [(i.variant_id, i.quantity) for i in data.items]
    )
    if not pairs:
        raise EmptyCart("The cart is empty.")
    quantities = _merge(pairs)
    if len(quantities) > MAX_LINES:
        raise InvalidInput(f"An order holds at most {MAX_LINES} lines.")
    address = await _address(session, ctx, customer_id, data)
    priced = await _priced(session, quantities)
    order_id, now = uuid.uuid4(), utcnow()
    await take_stock(session, quantities, order_id=order_id, actor_id=customer_id)
    quoted = await quote(
        session,
        [Goods(r.price, quantities[r.id], r.tax_class, r.weight_grams) for r in priced],
        place=Place.of(address), method_id=data.shipping_method_id,
        currency=priced[0].currency, prices_include_tax=prices_include_tax,
        require_method=require_shipping,
    )  # fmt: skip
    totals, method = quoted.priced, quoted.method
    lines = [
        line_read(r.id, r.sku, line_title(r.product_title, r.title), p)
        for r, p in zip(priced, totals.lines, strict=True)
    ]
    order = {
        "id": order_id, "number": new_order_number(), "status": "pending",
        "customer_id": customer_id, "currency": priced[0].currency, "external_ref": external_ref,
        "shipping_address_enc": seal_address(ctx.vault, order_id, address),
        "created_at": now, "updated_at": now, **order_figures(totals),
        "shipping_method_id": method.id if method else None,
        "shipping_method_name": method.name if method else None,
    }  # fmt: skip
    await session.execute(insert(table_of(Order)), [order])
    await session.execute(
        insert(table_of(OrderLine)),
        [
            {"id": uuid.uuid4(), "order_id": order_id, "position": n, "product_id": r.product_id,
             **line_row(line, prices_include_tax)}
            for n, (r, line) in enumerate(zip(priced, lines, strict=True))
        ],
    )  # fmt: skip
    await session.execute(
        insert(table_of(OrderStatusChange)),
        [{"id": uuid.uuid4(), "order_id": order_id, "from_status": None, "to_status": "pending",
          "actor_id": customer_id, "actor_role": "customer", "created_at": now}],
    )  # fmt: skip
    if from_cart:
        await empty_cart(session, customer_id)
    history = [StatusChangeRead(from_status=None, to_status="pending", by="customer", at=now)]
    if announce:
        emit_event(session, "order.created", order_event_data(
            order_id, order["number"], customer_id, "pending", totals, order["currency"], lines
        ))  # fmt: skip
    return OrderRead(
        id=order_id, number=order["number"], status="pending", customer_id=customer_id,
        items=lines, subtotal=totals.subtotal, discount_total=totals.discount_total,
        shipping_total=totals.shipping_total, tax_total=totals.tax_total, total=totals.total,
        currency=order["currency"], prices_include_tax=prices_include_tax,
        shipping=shipping_read(order["shipping_method_id"], order["shipping_method_name"],
                               totals.shipping_total, totals.shipping_tax_total),
        shipping_address=ShippingAddress(**address), status_history=history,
        created_at=now, updated_at=now,
    )  # fmt: skip


@dataclass(frozen=True)
class CheckoutAnswer:
    """What ``POST /orders`` answers: status, JSON body, and whether it is a replay."""

    status_code: int
    body: bytes
    replayed: bool


STOP_AT = 0.8
"""A checkout with a key is stopped at this fraction of its lease, so that it has rolled
back and freed the key before a retry could take the key over."""


async def checkout(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    ctx: AccountsContext,
    *,
    customer_id: uuid.UUID,
    data: OrderCreate,
    idempotency_key: str | None,
    ttl: timedelta,
    lease: timedelta,
    commit: Callable[[], Awaitable[None]],
    prices_include_tax: bool = False,
) -> CheckoutAnswer:
    """``POST /orders``: :func:`place_order`, exactly once per ``Idempotency-Key``.

    Without a key every call places an order (the request boundary commits). With one, see
    ``orders.idempotency``: a replay renders the order the key made (``replayed``); the
    order and its stored answer are committed here with ``commit``, within ``STOP_AT`` of
    ``lease``; any failure (domain error, database error, bug, time limit) rolls back and
    releases the key, so that an immediate retry may use it.

    Raises what :func:`place_order` and :func:`idempotency.begin` raise, CheckoutTimedOut
    (503) when the time limit passed, and whatever the database raised.
    """
    if idempotency_key is None:
        order = await place_order(
            session, ctx, customer_id=customer_id, data=data, prices_include_tax=prices_include_tax
        )
        return CheckoutAnswer(201, msgspec.json.encode(order), replayed=False)
    key = idempotency.check_key(idempotency_key)
    outcome = await idempotency.begin(
        sessionmaker,
        scope=idempotency.scope_of(customer_id),
        key=key,
        fingerprint=idempotency.fingerprint("POST", "/orders", msgspec.json.encode(data)),
        ttl=ttl,
        lease=lease,
    )
    if isinstance(outcome, idempotency.Replay):
        replayed = await read_order(session, ctx.vault, outcome.order_id)
        if replayed is None:  # pragma: no cover - the key goes with its order (cascade)
            raise OrderNotFound("The order this Idempotency-Key made no longer exists.")
        return CheckoutAnswer(outcome.status_code, msgspec.json.encode(replayed), replayed=True)
    stop_at = outcome.deadline - (1 - STOP_AT) * lease.total_seconds()
    limit = asyncio.timeout_at(stop_at)
    try:
        async with limit:
            order = await place_order(
                session,
                ctx,
                customer_id=customer_id,
                data=data,
                prices_include_tax=prices_include_tax,
            )
            await idempotency.complete(session, outcome, 201, order.id)
            await commit()
    except BaseException as exc:
        await _abandon(session, sessionmaker, outcome)
        if isinstance(exc, TimeoutError) and limit.expired():
            raise CheckoutTimedOut("Checkout took too long; nothing was ordered.") from exc
        raise
    return CheckoutAnswer(201, msgspec.json.encode(order), replayed=False)


async def _abandon(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    claim: idempotency.Claim,
) -> None:
    """After a failed checkout: end its transaction first (SQLite allows one writer), then
    free the key. If the database cannot be reached, the key's lease frees it instead."""
    try:
        await session.rollback()
    except Exception:  # the connection may be gone with the failure
        log.warning("checkout_rollback_failed", exc_info=True)
    try:
        await idempotency.release(sessionmaker, claim)
    except Exception:
        log.warning("idempotency_release_failed", exc_info=True)
