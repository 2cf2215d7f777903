"""Carts as resources, for guests and customers (``/carts``).

A customer's cart belongs to the account (the same cart as v1's ``/cart``). A guest's cart
is a capability: ``POST /carts`` answers a 256-bit token once, only its SHA-256 is stored
(``accounts.tokens``), and every call on the cart must send it as ``Cart-Token``. Any other
caller gets 404, exactly as for a cart that does not exist (OWASP API1:2023). E-mail and
addresses are sealed personal data. Every answer is priced by ``orders.quote`` for the
cart's address and shipping method, with current prices.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import partial
from typing import Any

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.identity import Identity
from emporium.accounts.protect import Vault
from emporium.accounts.tokens import hash_opaque_token, new_opaque_token, opaque_tokens_equal
from emporium.catalog.models import Product, Variant
from emporium.core.clock import utcnow
from emporium.core.db.base import table_of
from emporium.core.errors import InvalidInput
from emporium.orders.cart import check_room, line_title, sellable
from emporium.orders.exceptions import (
    CartItemNotFound,
    CartNotFound,
    ShippingMethodUnavailable,
)
from emporium.orders.models import Cart, CartItem, CartPromotionCode
from emporium.orders.promoting import applied, buyer_key, issues, usable_now
from emporium.orders.quote import Goods, Place, Quote, methods_for, quote
from emporium.orders.schemas import (
    MAX_QUANTITY,
    CartCreate,
    CartCreated,
    CartItemCreate,
    CartLineRead,
    CartShippingRead,
    CartUpdate,
    CartView,
    ShippingAddress,
    ShippingOption,
)
from emporium.promotions.codes import normalise_code
from emporium.promotions.engine import Offer
from emporium.promotions.exceptions import REFUSALS
from emporium.promotions.offers import Available, report

TOKEN_PURPOSE = "cart"  # noqa: S105 (the name of a token kind, not a secret)
_C, _V, _P = table_of(CartItem).c, table_of(Variant).c, table_of(Product).c
_K = table_of(CartPromotionCode).c
_LINES = (
    select(
        _C.id,
        _C.variant_id,
        _C.quantity,
        _V.sku,
        _V.title.label("variant_title"),
        _V.price,
        _V.currency,
        _V.weight_grams,
        _P.title.label("product_title"),
        _P.published,
        _P.tax_class,
        _P.id.label("product_id"),
        _P.category_id,
    )
    .join(table_of(Variant), _V.id == _C.variant_id)
    .join(table_of(Product), _P.id == _V.product_id)
    .order_by(_C.created_at, _C.id)
)


def _seal(vault: Vault, cart: Cart, column: str, value: str | None) -> str | None:
    return vault.seal_column(getattr(Cart, f"{column}_enc"), cart.id, value)


def open_address(vault: Vault, cart: Cart, column: str) -> ShippingAddress | None:
    """The cart's clear ``shipping_address`` or ``billing_address`` (``column``), or None."""
    attribute = f"{column}_enc"
    document = vault.open_column(getattr(Cart, attribute), cart.id, getattr(cart, attribute))
    return None if document is None else msgspec.json.decode(document, type=ShippingAddress)


def open_email(vault: Vault, cart: Cart) -> str | None:
    """The cart's clear e-mail, or None."""
    return vault.open_column(Cart.email_enc, cart.id, cart.email_enc)


async def quantities(session: AsyncSession, cart: Cart) -> list[tuple[uuid.UUID, int]]:
    """The cart's lines as ``(variant_id, quantity)`` pairs, oldest first (for checkout)."""
    rows = await session.execute(
        select(_C.variant_id, _C.quantity)
        .where(_C.cart_id == cart.id)
        .order_by(_C.created_at, _C.id)
    )
    return [(r.variant_id, r.quantity) for r in rows]


async def empty(session: AsyncSession, cart: Cart) -> None:
    """Remove every line and promotion code of the cart (after its checkout); e-mail and
    addresses stay."""
    await session.execute(delete(table_of(CartItem)).where(_C.cart_id == cart.id))
    await session.execute(delete(table_of(CartPromotionCode)).where(_K.cart_id == cart.id))
    cart.updated_at = utcnow()
    await session.flush()


async def holder_cart(
    session: AsyncSession, cart_id: uuid.UUID, identity: Identity | None, token: str | None
) -> Cart:
    """The cart, when the caller holds it: its customer, or anyone with its token (a guest
    cart). Raises CartNotFound (404) otherwise, as for a cart that does not exist."""
    cart = await session.get(Cart, cart_id)
    if cart is None:
        raise CartNotFound("No such cart.")
    if cart.customer_id is not None:
        if identity is None or identity.user_id != cart.customer_id:
            raise CartNotFound("No such cart.")
        return cart
    presented = hash_opaque_token(token or "", purpose=TOKEN_PURPOSE)
    if (
        token is None
        or cart.token_hash is None
        or not opaque_tokens_equal(presented, cart.token_hash)
    ):
        raise CartNotFound("No such cart.")
    return cart


async def _lines(session: AsyncSession, cart: Cart) -> list[Any]:
    return list((await session.execute(_LINES.where(_C.cart_id == cart.id))).all())


def _goods(rows: list[Any]) -> list[Goods]:
    return [
        Goods(r.price, r.quantity, r.tax_class, r.weight_grams, r.product_id, r.category_id)
        for r in rows
    ]


async def codes_of(session: AsyncSession, cart: Cart) -> list[str]:
    """The promotion codes entered on the cart, in the order they were entered."""
    rows = await session.execute(
        select(_K.code).where(_K.cart_id == cart.id).order_by(_K.created_at, _K.code)
    )
    return list(rows.scalars())


async def _available(
    session: AsyncSession, vault: Vault, cart: Cart, codes: list[str]
) -> Available:
    key = buyer_key(vault, open_email(vault, cart), cart.customer_id)
    return await usable_now(session, codes=codes, currency=cart.currency, customer_key=key)


async def _quote_shown(
    session: AsyncSession,
    cart: Cart,
    rows: list[Any],
    place: Place | None,
    prices_include_tax: bool,
    offers: Sequence[Offer] = (),
) -> Quote:
    """The cart's quote with its method, or without it when the method no longer serves the
    address or the weight."""
    priced = partial(
        quote,
        session,
        _goods(rows),
        place=place,
        currency=cart.currency,
        prices_include_tax=prices_include_tax,
        require_method=False,
        offers=offers,
    )
    try:
        return await priced(method_id=cart.shipping_method_id)
    except ShippingMethodUnavailable:
        return await priced(method_id=None)


async def view(
    session: AsyncSession, vault: Vault, cart: Cart, *, prices_include_tax: bool
) -> CartView:
    """The cart priced for its address and method, with the automatic promotions and its
    codes (the best mix for the buyer, ``promotions.engine``); each code that gives nothing
    is in ``promotion_issues`` with the reason. A method that no longer serves the address
    (or weight) is left out of the figures and shown as null."""
    rows = await _lines(session, cart)
    address = open_address(vault, cart, "shipping_address")
    place = Place.of(msgspec.structs.asdict(address)) if address else None
    codes = await codes_of(session, cart)
    usable = await _available(session, vault, cart, codes)
    quoted = await _quote_shown(session, cart, rows, place, prices_include_tax, usable.offers)
    problems = usable.problems + report(quoted.promotions, quoted.lines, cart.currency)
    p, method = quoted.priced, quoted.method
    items = [
        CartLineRead(
            id=r.id,
            variant_id=r.variant_id,
            sku=r.sku,
            title=line_title(r.product_title, r.variant_title),
            quantity=r.quantity,
            unit_price=r.price,
            subtotal=line.subtotal,
            discount_total=line.discount_total,
            tax_total=line.tax_total,
            total=line.total,
        )
        for r, line in zip(rows, p.lines, strict=True)
    ]
    shipping = None
    if method is not None:
        shipping = CartShippingRead(
            id=method.id, name=method.name, price=p.shipping_total, tax_total=p.shipping_tax_total
        )
    return CartView(
        id=cart.id,
        customer_id=cart.customer_id,
        email=open_email(vault, cart),
        items=items,
        subtotal=p.subtotal,
        discount_total=p.discount_total,
        shipping_total=p.shipping_total,
        tax_total=p.tax_total,
        total=p.total,
        currency=cart.currency,
        prices_include_tax=prices_include_tax,
        shipping_address=address,
        billing_address=open_address(vault, cart, "billing_address"),
        shipping_method=shipping,
        promotion_codes=codes,
        promotions=applied(quoted.promotions),
        promotion_issues=issues(problems),
        updated_at=cart.updated_at,
    )


async def add_line(session: AsyncSession, cart: Cart, data: CartItemCreate) -> None:
    """Add units of a variant (to its line when there is one).

    Raises VariantUnavailable (422), InvalidInput (422) over the maximum quantity, with a
    full cart or a variant priced in another currency than the cart."""
    variant = await sellable(session, data.variant_id)
    line = await session.scalar(
        select(CartItem).where(CartItem.cart_id == cart.id, CartItem.variant_id == variant.id)
    )
    now = utcnow()
    if line is None:
        await check_room(session, cart.id, cart.currency)
        if variant.currency != cart.currency:
            raise InvalidInput(f"This cart holds {cart.currency} prices, not {variant.currency}.")
        line = CartItem(
            id=uuid.uuid4(),
            cart_id=cart.id,
            variant_id=variant.id,
            quantity=0,
            created_at=now,
            updated_at=now,
        )
        session.add(line)
    if line.quantity + data.quantity > MAX_QUANTITY:
        raise InvalidInput(f"A cart line holds at most {MAX_QUANTITY} units.")
    line.quantity += data.quantity
    line.updated_at = cart.updated_at = now
    await session.flush()


async def create_cart(
    session: AsyncSession,
    vault: Vault,
    identity: Identity | None,
    data: CartCreate,
    *,
    currency: str,
    prices_include_tax: bool,
) -> CartCreated:
    """``POST /carts``: a guest's new cart with its token, or the signed-in customer's cart
    (made if they have none). Raises what :func:`add_line` raises; nothing is kept then."""
    customer_id = identity.user_id if identity and "customer" in identity.roles else None
    cart = (
        await session.scalar(select(Cart).where(Cart.customer_id == customer_id))
        if customer_id
        else None
    )
    token = None
    if cart is None:
        now = utcnow()
        token = None if customer_id else new_opaque_token("emp_cart_")
        cart = Cart(
            id=uuid.uuid4(),
            customer_id=customer_id,
            currency=currency,
            created_at=now,
            updated_at=now,
            token_hash=hash_opaque_token(token, purpose=TOKEN_PURPOSE) if token else None,
        )
        session.add(cart)
        await session.flush()
    if data.email is not None:
        cart.email_enc = _seal(vault, cart, "email", data.email)
    for item in data.items:
        await add_line(session, cart, item)
    shown = await view(session, vault, cart, prices_include_tax=prices_include_tax)
    return CartCreated(**msgspec.structs.asdict(shown), token=token)


async def update_cart(session: AsyncSession, vault: Vault, cart: Cart, data: CartUpdate) -> None:
    """Change the e-mail, addresses or shipping method. Raises ShippingMethodUnavailable
    (422) when the method chosen does not serve the address and the cart's weight; a new
    address that the cart's method does not serve clears the method instead."""
    if data.email is not msgspec.UNSET:
        cart.email_enc = _seal(vault, cart, "email", data.email)
    for field in ("shipping_address", "billing_address"):
        value = getattr(data, field)
        if value is not msgspec.UNSET:
            document = None if value is None else msgspec.json.encode(value).decode()
            setattr(cart, f"{field}_enc", _seal(vault, cart, field, document))
    chosen = not isinstance(data.shipping_method_id, msgspec.UnsetType)
    if not isinstance(data.shipping_method_id, msgspec.UnsetType):
        cart.shipping_method_id = data.shipping_method_id
    if cart.shipping_method_id is not None:
        address = open_address(vault, cart, "shipping_address")
        place = Place.of(msgspec.structs.asdict(address)) if address else None
        try:
            await quote(
                session,
                _goods(await _lines(session, cart)),
                place=place,
                method_id=cart.shipping_method_id,
                currency=cart.currency,
                prices_include_tax=False,
                require_method=False,
            )
        except ShippingMethodUnavailable:
            if chosen:
                raise
            cart.shipping_method_id = None  # the new address is not served: choose again
    cart.updated_at = utcnow()
    await session.flush()


async def set_quantity(
    session: AsyncSession, cart: Cart, item_id: uuid.UUID, quantity: int
) -> None:
    """Set a line's quantity. Raises CartItemNotFound (404)."""
    line = await session.get(CartItem, item_id)
    if line is None or line.cart_id != cart.id:
        raise CartItemNotFound("No such cart item.")
    line.quantity, line.updated_at = quantity, utcnow()
    cart.updated_at = line.updated_at
    await session.flush()


async def remove_line(session: AsyncSession, cart: Cart, item_id: uuid.UUID) -> None:
    """Take a line out. Raises CartItemNotFound (404)."""
    line = await session.get(CartItem, item_id)
    if line is None or line.cart_id != cart.id:
        raise CartItemNotFound("No such cart item.")
    await session.delete(line)
    cart.updated_at = utcnow()
    await session.flush()


async def shipping_options(
    session: AsyncSession, vault: Vault, cart: Cart, *, prices_include_tax: bool
) -> list[ShippingOption]:
    """The methods serving the cart's address and weight, each priced for this cart (its
    ``free_over`` against the cart's discounted subtotal) with its tax, cheapest first; none
    without an address."""
    address = open_address(vault, cart, "shipping_address")
    if address is None:
        return []
    rows = await _lines(session, cart)
    place = Place.of(msgspec.structs.asdict(address))
    options = []
    for method in await methods_for(session, _goods(rows), place, currency=cart.currency):
        priced = await quote(
            session,
            _goods(rows),
            place=place,
            method_id=method.id,
            currency=cart.currency,
            prices_include_tax=prices_include_tax,
            require_method=False,
        )
        days = None
        if method.delivery_days_min is not None and method.delivery_days_max is not None:
            days = [method.delivery_days_min, method.delivery_days_max]
        options.append(
            ShippingOption(
                id=method.id,
                name=method.name,
                carrier=method.carrier,
                price=priced.priced.shipping_total,
                tax_total=priced.priced.shipping_tax_total,
                currency=cart.currency,
                delivery_days=days,
            )
        )
    return sorted(options, key=lambda o: (o.price, o.name))


async def claim(session: AsyncSession, identity: Identity, cart: Cart) -> Cart:
    """A guest cart becomes the signed-in customer's: its lines merge into the customer's
    cart when they have one (quantities added, at most the maximum), else the cart itself
    becomes theirs and its token dies. Returns the customer's cart."""
    if cart.customer_id == identity.user_id:
        return cart
    mine = await session.scalar(select(Cart).where(Cart.customer_id == identity.user_id))
    if mine is None:
        cart.customer_id, cart.token_hash, cart.updated_at = identity.user_id, None, utcnow()
        await session.flush()
        return cart
    for line in (await session.scalars(select(CartItem).where(CartItem.cart_id == cart.id))).all():
        existing = await session.scalar(
            select(CartItem).where(
                CartItem.cart_id == mine.id, CartItem.variant_id == line.variant_id
            )
        )
        if existing is None:
            line.cart_id = mine.id
        else:
            existing.quantity = min(MAX_QUANTITY, existing.quantity + line.quantity)
    await session.flush()
    await session.execute(delete(table_of(CartItem)).where(_C.cart_id == cart.id))
    await session.delete(cart)
    mine.updated_at = utcnow()
    await session.flush()
    return mine


MAX_CODES = 5
"""Promotion codes a cart holds at most."""


async def add_code(
    session: AsyncSession, vault: Vault, cart: Cart, code: str, *, prices_include_tax: bool
) -> None:
    """Enter a promotion code on the cart (normalised: ``promotions.codes``). A code it
    holds already changes nothing. A code that gives nothing only because a better
    promotion applies is kept (``promotion_issues`` says so).

    Raises:
        InvalidInput: (422) a malformed code, or more than :data:`MAX_CODES` codes.
        PromotionRefused: (422) ``promotion_code_invalid``, ``promotion_expired``,
            ``promotion_exhausted`` or ``promotion_not_applicable``; nothing is kept.
    """
    code = normalise_code(code)
    codes = await codes_of(session, cart)
    if code in codes:
        return
    if len(codes) >= MAX_CODES:
        raise InvalidInput(f"A cart holds at most {MAX_CODES} promotion codes.")
    usable = await _available(session, vault, cart, [*codes, code])
    address = open_address(vault, cart, "shipping_address")
    place = Place.of(msgspec.structs.asdict(address)) if address else None
    quoted = await _quote_shown(
        session, cart, await _lines(session, cart), place, prices_include_tax, usable.offers
    )
    problems = usable.problems + report(quoted.promotions, quoted.lines, cart.currency)
    refusal = next((p for p in problems if p.code == code and p.reason in REFUSALS), None)
    if refusal is not None:
        raise REFUSALS[refusal.reason](refusal.detail)
    now = utcnow()
    session.add(CartPromotionCode(cart_id=cart.id, code=code, created_at=now))
    cart.updated_at = now
    await session.flush()


async def remove_code(session: AsyncSession, cart: Cart, code: str) -> None:
    """Take a promotion code off the cart (case-insensitive); one it does not hold changes
    nothing."""
    await session.execute(
        delete(table_of(CartPromotionCode)).where(
            _K.cart_id == cart.id, _K.code == code.strip().upper()
        )
    )
    cart.updated_at = utcnow()
    await session.flush()
