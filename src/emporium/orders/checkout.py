"""Checkout: turn requested lines (or the cart) into an order in one transaction.

Every line is priced from the database, totals are computed here, stock is taken from each
variant with a conditional update (``inventory.service.take_stock``), and the order, its
lines, its first status and the ``sale`` movements are written in the caller's transaction.
If any line is short, :class:`InsufficientStock` names the lines and the request boundary
rolls everything back: nothing at all changes.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import msgspec
import structlog
from prometheus_client import Counter
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from emporium.accounts.addresses import own_address_fields
from emporium.accounts.models import UserAccount
from emporium.accounts.protect import AccountsContext, Vault
from emporium.accounts.tokens import hash_opaque_token, new_opaque_token
from emporium.catalog.models import Product, Variant
from emporium.core.clock import utcnow
from emporium.core.db.base import table_of
from emporium.core.errors import InvalidInput
from emporium.core.metrics import count_on_commit
from emporium.inventory.service import take_stock
from emporium.jobs.outbox import record_event
from emporium.orders import carts, idempotency
from emporium.orders.cart import cart_quantities, empty_cart, line_title
from emporium.orders.exceptions import (
    CheckoutTimedOut,
    EmailRequired,
    EmptyCart,
    OrderNotFound,
    ShippingAddressRequired,
    VariantUnavailable,
)
from emporium.orders.models import (
    ORDER_TOKEN_PURPOSE,
    Cart,
    Order,
    OrderLine,
    OrderStatusChange,
)
from emporium.orders.promoting import applied, buyer_key, redeem, refuse_codes, usable_now
from emporium.orders.queries import read_order
from emporium.orders.quote import Goods, Place, Quote, quote
from emporium.orders.schemas import (
    MAX_LINES,
    MAX_QUANTITY,
    OrderCreate,
    OrderCreated,
    OrderLineRead,
    ShippingAddress,
    StatusChangeRead,
)
from emporium.orders.service import order_event_data, seal_address, seal_email
from emporium.orders.totals import line_read, line_row, order_figures, shipping_read
from emporium.promotions.codes import normalise_code
from emporium.promotions.offers import Available, report

_V, _P, _O = table_of(Variant).c, table_of(Product).c, table_of(Order).c
_U = table_of(UserAccount).c
PAYMENT_MINUTES = 60
"""Default of ``EMPORIUM_ORDER_PAYMENT_MINUTES``: how long a new order waits for payment."""
_PRICED = (
    select(
        _V.id,
        _V.sku,
        _V.title,
        _V.price,
        _V.currency,
        _V.product_id,
        _V.weight_grams,
        _P.title.label("product_title"),
        _P.published,
        _P.tax_class,
        _P.category_id,
    )
    .join(table_of(Product), _P.id == _V.product_id)
    .where(_V.id.in_(bindparam("variant_ids", expanding=True)))
)
"""Each line's variant, price and product (statements built once: checkout runs them per order)."""
_ACCOUNT_EMAIL = select(_U.email_enc).where(_U.id == bindparam("user_id", type_=_U.id.type))
_INSERT_ORDER = insert(table_of(Order))
_INSERT_LINES = insert(table_of(OrderLine))
_INSERT_CHANGE = insert(table_of(OrderStatusChange))
log = structlog.get_logger("emporium.orders")
ORDERS_PLACED = Counter(
    "emporium_orders_placed_total",
    "Orders placed and committed (checkouts: from a cart, items or a guest cart; not imports)",
)
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
    found = await session.execute(_PRICED, {"variant_ids": list(quantities)})
    rows = {r.id: r for r in found}
    missing = [v for v in quantities if v not in rows or not rows[v].published]
    if missing:
        raise VariantUnavailable(
            f"{len(missing)} line(s) name a variant that is not for sale.",
            errors=[
                {"loc": ["body", "items"], "msg": f"variant {v} is not for sale"} for v in missing
            ],
        )
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
            errors=[
                {
                    "loc": ["body", "shipping_address"],
                    "msg": "exactly one of shipping_address and address_id is required",
                }
            ],
        )
    if data.shipping_address is not None:
        return msgspec.structs.asdict(data.shipping_address)
    assert data.address_id is not None
    return await own_address_fields(session, ctx, customer_id, data.address_id)


@dataclass(frozen=True)
class Purchase:
    """What an order is made of, however it was asked for: the buyer (``customer_id``, or
    None for a guest), the ``(variant_id, quantity)`` lines, the e-mail, the shipping
    address fields and optional billing address, and the chosen shipping method."""

    customer_id: uuid.UUID | None
    lines: list[tuple[uuid.UUID, int]]
    email: str | None
    address: dict[str, Any]
    billing_address: dict[str, Any] | None
    method_id: uuid.UUID | None
    codes: tuple[str, ...] = ()


async def _account_email(session: AsyncSession, ctx: AccountsContext, user_id: uuid.UUID) -> str:
    sealed = await session.scalar(_ACCOUNT_EMAIL, {"user_id": user_id})
    return ctx.vault.open_column(UserAccount.email_enc, user_id, sealed) or ""


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
    payment_minutes: int | None = PAYMENT_MINUTES,
) -> OrderCreated:
    """Place an order for ``customer_id`` from ``data.items`` or, without them, the cart
    (which is then emptied). Returns the order as the API shows it (status ``pending``).
    ``announce``: record the ``order.created`` event (confirmation e-mail, webhooks); an
    import of past orders passes False. Every figure is computed by ``orders.pricing``
    (``prices_include_tax``: the shop's ``EMPORIUM_PRICES_INCLUDE_TAX``) for the address
    and ``data.shipping_method_id`` (``orders.quote``); ``require_shipping``: once the shop
    has shipping methods an order must choose one (an import of past orders passes False);
    ``payment_minutes``: unpaid, it expires this long after now (None: never, an import).

    Raises:
        EmptyCart: (422) no ``items`` and an empty cart.
        InvalidInput: (422) too many units or lines, mixed currencies, not exactly one of
            ``shipping_address`` and ``address_id``.
        AddressNotFound: (404) ``address_id`` is not one of the caller's addresses.
        VariantUnavailable: (422) a line names a variant that is not for sale.
        InsufficientStock: (409) naming every short line; nothing changes.
        ShippingMethodRequired, ShippingMethodUnavailable: (422) see ``orders.quote``.
        PromotionRefused: (422) a code of ``data.promotion_codes`` cannot be used.
    """
    pairs = (
        await cart_quantities(session, customer_id)
        if data.items is None
        else [(i.variant_id, i.quantity) for i in data.items]
    )
    if not pairs:
        raise EmptyCart("The cart is empty.")
    purchase = Purchase(
        customer_id=customer_id,
        lines=pairs,
        email=await _account_email(session, ctx, customer_id),
        address=await _address(session, ctx, customer_id, data),
        billing_address=None,
        method_id=data.shipping_method_id,
        codes=tuple(dict.fromkeys(normalise_code(c) for c in data.promotion_codes or ())),
    )
    order = await _place(
        session,
        ctx,
        purchase,
        external_ref=external_ref,
        announce=announce,
        prices_include_tax=prices_include_tax,
        require_shipping=require_shipping,
        payment_minutes=payment_minutes,
    )
    if data.items is None:
        await empty_cart(session, customer_id)
    return order


async def place_cart_order(
    session: AsyncSession,
    ctx: AccountsContext,
    cart: Cart,
    *,
    prices_include_tax: bool,
    payment_minutes: int = PAYMENT_MINUTES,
) -> OrderCreated:
    """Place an order from ``cart`` (``POST /orders {cart_id}``): its lines at today's
    prices, its e-mail (a customer's cart: the account's), addresses and shipping method.
    The cart is emptied; it keeps its e-mail and addresses for the next purchase. A guest's
    order answers ``order_token`` (shown once; only its hash is stored).

    Raises:
        EmptyCart: (422) the cart has no lines.
        ShippingAddressRequired: (422 ``shipping_address_required``) no shipping address.
        EmailRequired: (422 ``email_required``) a guest cart without an e-mail.
        and what :func:`place_order` raises for lines, stock, shipping and the cart's
        promotion codes (``PromotionExhausted`` when the last use went to another order).
    """
    pairs = await carts.quantities(session, cart)
    if not pairs:
        raise EmptyCart("The cart is empty.")
    address = carts.open_address(ctx.vault, cart, "shipping_address")
    if address is None:
        raise ShippingAddressRequired(
            "Set the cart's shipping_address first (PATCH /carts/{id}).",
            errors=[{"loc": ["cart", "shipping_address"], "msg": "required"}],
        )
    email = carts.open_email(ctx.vault, cart)
    if cart.customer_id is not None:
        email = email or await _account_email(session, ctx, cart.customer_id)
    elif email is None:
        raise EmailRequired(
            "Set the cart's email first (PATCH /carts/{id}): the confirmation goes there.",
            errors=[{"loc": ["cart", "email"], "msg": "required"}],
        )
    billing = carts.open_address(ctx.vault, cart, "billing_address")
    purchase = Purchase(
        customer_id=cart.customer_id,
        lines=pairs,
        email=email,
        address=msgspec.structs.asdict(address),
        billing_address=None if billing is None else msgspec.structs.asdict(billing),
        method_id=cart.shipping_method_id,
        codes=tuple(await carts.codes_of(session, cart)),
    )
    order = await _place(
        session,
        ctx,
        purchase,
        prices_include_tax=prices_include_tax,
        payment_minutes=payment_minutes,
    )
    await carts.empty(session, cart)
    return order


async def _quoted(
    session: AsyncSession,
    purchase: Purchase,
    priced: list[Any],
    quantities: dict[uuid.UUID, int],
    *,
    buyer: str | None,
    prices_include_tax: bool,
    require_shipping: bool,
) -> Quote:
    """The order's quote with the promotions ``buyer`` may use now (``buyer`` None: an
    imported past order, which gets no promotion of today).

    Raises PromotionRefused (422) for an entered code that cannot be used, and what
    ``orders.quote.quote`` raises."""
    currency = priced[0].currency
    usable = Available((), ())
    if buyer is not None:
        usable = await usable_now(
            session, codes=purchase.codes, currency=currency, customer_key=buyer
        )
    goods = [
        Goods(r.price, quantities[r.id], r.tax_class, r.weight_grams, r.product_id, r.category_id)
        for r in priced
    ]
    quoted = await quote(
        session,
        goods,
        place=Place.of(purchase.address),
        method_id=purchase.method_id,
        currency=currency,
        prices_include_tax=prices_include_tax,
        require_method=require_shipping,
        offers=usable.offers,
    )
    refuse_codes(usable.problems + report(quoted.promotions, quoted.lines, currency))
    return quoted


async def _place(
    session: AsyncSession,
    ctx: AccountsContext,
    purchase: Purchase,
    *,
    external_ref: str | None = None,
    announce: bool = True,
    prices_include_tax: bool = False,
    require_shipping: bool = True,
    payment_minutes: int | None = PAYMENT_MINUTES,
) -> OrderCreated:
    """Price, take stock and write the order of ``purchase`` (see :func:`place_order`)."""
    quantities = _merge(purchase.lines)
    if len(quantities) > MAX_LINES:
        raise InvalidInput(f"An order holds at most {MAX_LINES} lines.")
    priced = await _priced(session, quantities)
    order_id, now = uuid.uuid4(), utcnow()
    await take_stock(session, quantities, order_id=order_id, actor_id=purchase.customer_id)
    buyer = buyer_key(ctx.vault, purchase.email, purchase.customer_id) or "unknown"
    quoted = await _quoted(
        session,
        purchase,
        priced,
        quantities,
        buyer=buyer if announce else None,
        prices_include_tax=prices_include_tax,
        require_shipping=require_shipping,
    )
    lines = [
        line_read(uuid.uuid4(), r.id, r.sku, line_title(r.product_title, r.title), p)
        for r, p in zip(priced, quoted.priced.lines, strict=True)
    ]
    token = None if purchase.customer_id else new_opaque_token("emp_order_")
    order = _order_row(ctx, purchase, order_id, quoted, priced[0].currency, token) | {
        "external_ref": external_ref,
        "created_at": now,
        "updated_at": now,
        "expires_at": None if payment_minutes is None else now + timedelta(minutes=payment_minutes),
    }
    await _insert(session, order, [r.product_id for r in priced], lines, prices_include_tax)
    await redeem(session, order, quoted.promotions, buyer, announce=announce)
    if announce:
        number, customer = order["number"], order["customer_id"]
        event = order_event_data(
            order_id, number, customer, "pending", quoted.priced, order["currency"], lines
        )
        await record_event(session, "order.created", event)
        count_on_commit(session, ORDERS_PLACED.inc)
    return _answer(order, purchase, quoted, lines, token)


def _order_row(
    ctx: AccountsContext,
    purchase: Purchase,
    order_id: uuid.UUID,
    quoted: Quote,
    currency: str,
    token: str | None,
) -> dict[str, Any]:
    """The ``customer_order`` row of a new order (without ``external_ref`` and times):
    figures, sealed e-mail and addresses, the guest's token hash."""
    billing, method = purchase.billing_address, quoted.method
    sealed_billing = None
    if billing is not None:
        sealed_billing = seal_address(ctx.vault, order_id, billing, billing=True)
    email: dict[str, str | None] = {"email_enc": None, "email_index": None}
    if purchase.email:
        email = seal_email(ctx.vault, order_id, purchase.email)
    return {
        "id": order_id,
        "number": new_order_number(),
        "status": "pending",
        "payment_status": "unpaid",
        "fulfillment_status": "unfulfilled",
        "paid_total": 0,
        "refunded_total": 0,
        "customer_id": purchase.customer_id,
        "currency": currency,
        "shipping_address_enc": seal_address(ctx.vault, order_id, purchase.address),
        "billing_address_enc": sealed_billing,
        **email,
        "order_token_hash": None
        if token is None
        else hash_opaque_token(token, purpose=ORDER_TOKEN_PURPOSE),
        **order_figures(quoted.priced),
        "shipping_method_id": method.id if method else None,
        "shipping_method_name": method.name if method else None,
    }


def _token_hash(token: str | None) -> str | None:
    return None if token is None else hash_opaque_token(token, purpose=ORDER_TOKEN_PURPOSE)


async def _insert(
    session: AsyncSession,
    order: dict[str, Any],
    product_ids: list[uuid.UUID],
    lines: list[OrderLineRead],
    prices_include_tax: bool,
) -> None:
    """Write the order row, its lines and its first status change."""
    await session.execute(_INSERT_ORDER, order)
    await session.execute(
        _INSERT_LINES,
        [
            {
                "order_id": order["id"],
                "position": n,
                "product_id": product_id,
                **line_row(line, prices_include_tax),
            }
            for n, (product_id, line) in enumerate(zip(product_ids, lines, strict=True))
        ],
    )
    change = {
        "id": uuid.uuid4(),
        "order_id": order["id"],
        "from_status": None,
        "to_status": "pending",
        "actor_id": order["customer_id"],
        "actor_role": "customer" if order["customer_id"] else "guest",
        "created_at": order["created_at"],
    }
    await session.execute(_INSERT_CHANGE, change)


def _answer(
    order: dict[str, Any],
    purchase: Purchase,
    quoted: Quote,
    lines: list[OrderLineRead],
    token: str | None,
) -> OrderCreated:
    """The API answer of a new order, from what was just written."""
    totals, promotions = quoted.priced, quoted.promotions
    billing, now = purchase.billing_address, order["created_at"]
    actor = "customer" if order["customer_id"] else "guest"
    return OrderCreated(
        id=order["id"],
        number=order["number"],
        status="pending",
        payment_status="unpaid",
        fulfillment_status="unfulfilled",
        customer_id=order["customer_id"],
        email=purchase.email,
        items=lines,
        subtotal=totals.subtotal,
        discount_total=totals.discount_total,
        shipping=shipping_read(
            order["shipping_method_id"],
            order["shipping_method_name"],
            totals.shipping_total,
            totals.shipping_tax_total,
        ),
        shipping_total=totals.shipping_total,
        tax_total=totals.tax_total,
        total=totals.total,
        paid_total=0,
        refunded_total=0,
        currency=order["currency"],
        prices_include_tax=totals.prices_include_tax,
        promotions=applied(promotions),
        shipping_address=ShippingAddress(**purchase.address),
        billing_address=None if billing is None else ShippingAddress(**billing),
        status_history=[StatusChangeRead(from_status=None, to_status="pending", by=actor, at=now)],
        expires_at=order["expires_at"],
        created_at=now,
        updated_at=now,
        order_token=token,
    )


@dataclass(frozen=True)
class CheckoutAnswer:
    """What ``POST /orders`` answers: status, JSON body, and whether it is a replay."""

    status_code: int
    body: bytes
    replayed: bool


async def checkout(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    scope: str,
    data: OrderCreate,
    place: Callable[[], Awaitable[OrderCreated]],
    replay: Callable[[uuid.UUID], Awaitable[OrderCreated | None]],
    idempotency_key: str | None,
    ttl: timedelta,
    lease: timedelta,
    commit: Callable[[], Awaitable[None]],
) -> CheckoutAnswer:
    """``POST /orders``: ``place()`` (:func:`place_order` or :func:`place_cart_order`),
    exactly once per ``Idempotency-Key`` within ``scope`` (``idempotency.scope_of``: the
    customer, or the guest's cart).

    Without a key every call places an order (the request boundary commits). With one, see
    ``orders.idempotency``: a replay renders the order the key made with ``replay``
    (``replayed``); the order and its stored answer are committed with ``commit`` by
    :func:`idempotency.run_claimed`, within ``idempotency.STOP_AT`` of ``lease``; any failure
    rolls back and releases the key, so that an immediate retry may use it.

    Raises what ``place`` and :func:`idempotency.begin` raise, CheckoutTimedOut (503) when
    the time limit passed, and whatever the database raised.
    """
    if idempotency_key is None:
        return CheckoutAnswer(201, msgspec.json.encode(await place()), replayed=False)
    key = idempotency.check_key(idempotency_key)
    outcome = await idempotency.begin(
        sessionmaker,
        scope=scope,
        key=key,
        fingerprint=idempotency.fingerprint("POST", "/orders", msgspec.json.encode(data)),
        ttl=ttl,
        lease=lease,
    )
    if isinstance(outcome, idempotency.Replay):
        replayed = await replay(outcome.order_id)
        if replayed is None:  # pragma: no cover - the key goes with its order (cascade)
            raise OrderNotFound("The order this Idempotency-Key made no longer exists.")
        return CheckoutAnswer(outcome.status_code, msgspec.json.encode(replayed), replayed=True)

    async def act() -> tuple[OrderCreated, uuid.UUID, None]:
        order = await place()
        return order, order.id, None

    order = await idempotency.run_claimed(
        session,
        sessionmaker,
        outcome,
        lease,
        act=act,
        commit=commit,
        timed_out=lambda: CheckoutTimedOut("Checkout took too long; nothing was ordered."),
    )
    return CheckoutAnswer(201, msgspec.json.encode(order), replayed=False)


async def replay_order(
    session: AsyncSession, vault: Vault, order_id: uuid.UUID
) -> OrderCreated | None:
    """The answer replayed for an ``Idempotency-Key``: the order as it is now. A guest's
    order gets a new ``order_token`` (the first answer's is no longer valid): only its hash
    was kept, and a client that retries has most likely lost the first answer."""
    order = await read_order(session, vault, order_id)
    if order is None:
        return None
    token = None
    if order.customer_id is None:
        token = new_opaque_token("emp_order_")
        await session.execute(
            update(table_of(Order))
            .where(_O.id == order_id)
            .values(order_token_hash=hash_opaque_token(token, purpose=ORDER_TOKEN_PURPOSE))
        )
    return OrderCreated(**msgspec.structs.asdict(order), order_token=token)
