"""The signed-in customer's cart (v1 ``/cart``): variants and quantities, always shown at
current prices. It is the customer's ``cart`` row (``orders.carts`` serves the same cart as a
resource, and guests' carts)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.identity import Identity
from emporium.catalog.models import Product, Variant
from emporium.core.clock import utcnow
from emporium.core.db.base import table_of
from emporium.core.errors import Conflict, InvalidInput
from emporium.orders.exceptions import CartItemNotFound, VariantUnavailable
from emporium.orders.models import Cart, CartItem
from emporium.orders.pricing import LineInput, price_order
from emporium.orders.schemas import (
    MAX_LINES,
    MAX_QUANTITY,
    CartItemCreate,
    CartItemRead,
    CartItemUpdate,
    CartRead,
)

_C, _V, _P = table_of(CartItem).c, table_of(Variant).c, table_of(Product).c
_K = table_of(Cart).c
_LINES = (
    select(
        _C.id,
        _C.variant_id,
        _C.quantity,
        _V.sku,
        _V.title.label("variant_title"),
        _P.title.label("product_title"),
        _V.price,
        _V.currency,
        _V.stock,
        _P.published,
    )
    .join(table_of(Variant), _V.id == _C.variant_id)
    .join(table_of(Product), _P.id == _V.product_id)
    .order_by(_C.created_at, _C.id)
)


def line_title(product_title: str, variant_title: str) -> str:
    """The title of a sold line: the product's, plus the variant's unless it is the default."""
    if not variant_title or variant_title.lower() == "default":
        return product_title
    return f"{product_title} - {variant_title}"


async def get_cart(
    session: AsyncSession, identity: Identity, *, currency: str, prices_include_tax: bool = False
) -> CartRead:
    """The caller's cart with each line at its variant's current price, priced by
    ``orders.pricing`` (no address yet: no shipping, a tax rate of zero)."""
    cart_id = await customer_cart_id(session, identity.user_id)
    rows = (await session.execute(_LINES.where(_C.cart_id == cart_id))).all() if cart_id else []
    priced = price_order(
        [LineInput(unit_price=r.price, quantity=r.quantity) for r in rows],
        prices_include_tax=prices_include_tax,
    )
    items = [
        CartItemRead(
            id=r.id,
            variant_id=r.variant_id,
            sku=r.sku,
            title=line_title(r.product_title, r.variant_title),
            quantity=r.quantity,
            unit_price=r.price,
            line_total=p.subtotal,
            available=bool(r.published) and (r.stock is None or r.stock >= r.quantity),
            subtotal=p.subtotal,
            discount_total=p.discount_total,
            tax_total=p.tax_total,
            total=p.total,
        )
        for r, p in zip(rows, priced.lines, strict=True)
    ]
    return CartRead(
        items=items,
        subtotal=priced.subtotal,
        discount_total=priced.discount_total,
        shipping_total=priced.shipping_total,
        tax_total=priced.tax_total,
        total=priced.total,
        currency=rows[0].currency if rows else currency,
        prices_include_tax=prices_include_tax,
    )


async def sellable(session: AsyncSession, variant_id: uuid.UUID) -> Any:
    """The variant (``id``, ``currency``) when its product is for sale. Raises
    VariantUnavailable (422) otherwise."""
    row = (
        await session.execute(
            select(_V.id, _V.currency, _P.published)
            .join(table_of(Product), _P.id == _V.product_id)
            .where(_V.id == variant_id)
        )
    ).first()
    if row is None or not row.published:
        raise VariantUnavailable(
            "That variant is not for sale.",
            errors=[{"loc": ["body", "variant_id"], "msg": "no such variant for sale"}],
        )
    return row


def _too_many(quantity: int) -> InvalidInput:
    return InvalidInput(
        f"A cart line holds at most {MAX_QUANTITY} units.",
        errors=[{"loc": ["body", "quantity"], "msg": f"{quantity} exceeds {MAX_QUANTITY}"}],
    )


async def add_item(
    session: AsyncSession,
    identity: Identity,
    data: CartItemCreate,
    *,
    currency: str,
    prices_include_tax: bool = False,
) -> CartRead:
    """Add units of a variant; a variant already in the cart gets its quantity raised.

    Raises:
        VariantUnavailable: (422) no such variant, or its product is not published.
        InvalidInput: (422) the line would exceed the maximum quantity, the cart is full, or
            the variant is priced in another currency than the cart.
        Conflict: (409) the same cart changed concurrently; retry.
    """
    variant = await sellable(session, data.variant_id)
    cart_id = await customer_cart_id(session, identity.user_id) or await _new_customer_cart(
        session, identity.user_id, variant.currency
    )
    line = await session.scalar(
        select(CartItem).where(CartItem.cart_id == cart_id, CartItem.variant_id == data.variant_id)
    )
    now = utcnow()
    if line is not None:
        if line.quantity + data.quantity > MAX_QUANTITY:
            raise _too_many(line.quantity + data.quantity)
        line.quantity += data.quantity
        line.updated_at = now
    else:
        await check_room(session, cart_id, variant.currency)
        session.add(
            CartItem(
                id=uuid.uuid4(),
                cart_id=cart_id,
                variant_id=data.variant_id,
                quantity=data.quantity,
                created_at=now,
                updated_at=now,
            )
        )
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("The cart changed at the same time; try again.") from exc
    return await get_cart(
        session, identity, currency=currency, prices_include_tax=prices_include_tax
    )


async def customer_cart_id(session: AsyncSession, customer_id: uuid.UUID) -> uuid.UUID | None:
    """The id of the customer's cart, or None when they have none yet."""
    found: uuid.UUID | None = await session.scalar(
        select(_K.id).where(_K.customer_id == customer_id)
    )
    return found


async def _new_customer_cart(
    session: AsyncSession, customer_id: uuid.UUID, currency: str
) -> uuid.UUID:
    """Create the customer's cart. Raises Conflict (409) when another request just did."""
    now = utcnow()
    cart = Cart(
        id=uuid.uuid4(), customer_id=customer_id, currency=currency, created_at=now, updated_at=now
    )
    session.add(cart)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict("The cart changed at the same time; try again.") from exc
    return cart.id


async def check_room(session: AsyncSession, cart_id: uuid.UUID, currency: str) -> None:
    """Refuse a new line when the cart is full or holds another currency.

    Raises InvalidInput (422)."""
    row = (
        await session.execute(
            select(func.count(), func.min(_V.currency))
            .select_from(table_of(CartItem))
            .join(table_of(Variant), _V.id == _C.variant_id)
            .where(_C.cart_id == cart_id)
        )
    ).one()
    if row[0] >= MAX_LINES:
        raise InvalidInput(f"A cart holds at most {MAX_LINES} lines.")
    if row[0] and row[1] != currency:
        raise InvalidInput(
            "A cart holds variants of one currency.",
            errors=[{"loc": ["body", "variant_id"], "msg": f"priced in {currency}, not {row[1]}"}],
        )


async def _own_line(session: AsyncSession, identity: Identity, item_id: uuid.UUID) -> CartItem:
    line = await session.get(CartItem, item_id)
    if line is None or line.cart_id != await customer_cart_id(session, identity.user_id):
        raise CartItemNotFound("No such cart item.")
    return line


async def update_item(
    session: AsyncSession,
    identity: Identity,
    item_id: uuid.UUID,
    data: CartItemUpdate,
    *,
    currency: str,
    prices_include_tax: bool = False,
) -> CartRead:
    """Set a line's quantity. Raises CartItemNotFound (404), also for another's line."""
    line = await _own_line(session, identity, item_id)
    line.quantity = data.quantity
    line.updated_at = utcnow()
    await session.flush()
    return await get_cart(
        session, identity, currency=currency, prices_include_tax=prices_include_tax
    )


async def remove_item(session: AsyncSession, identity: Identity, item_id: uuid.UUID) -> None:
    """Take a line out of the cart. Raises CartItemNotFound (404), also for another's line."""
    await session.delete(await _own_line(session, identity, item_id))
    await session.flush()


async def cart_quantities(session: AsyncSession, customer_id: uuid.UUID) -> list[tuple[Any, int]]:
    """The cart as ``(variant_id, quantity)`` pairs, for checkout."""
    rows = await session.execute(
        select(_C.variant_id, _C.quantity)
        .join(table_of(Cart), _K.id == _C.cart_id)
        .where(_K.customer_id == customer_id)
        .order_by(_C.created_at, _C.id)
    )
    return [(r.variant_id, r.quantity) for r in rows]


async def empty_cart(session: AsyncSession, customer_id: uuid.UUID) -> None:
    """Remove every line of the customer's cart (after a checkout of the cart)."""
    cart_id = await customer_cart_id(session, customer_id)
    await session.execute(delete(table_of(CartItem)).where(_C.cart_id == cart_id))
