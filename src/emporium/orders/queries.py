"""Reading orders: one order for its owner, a guest with its token or staff, and keyset
pages of orders (the orders room's reads; writes are in ``checkout``, ``lifecycle``,
``service``, ``cart`` and ``carts``).

Another customer's order answers 404 exactly like a missing one (OWASP API1:2023).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.identity import Caller
from emporium.accounts.protect import Vault
from emporium.accounts.tokens import hash_opaque_token, opaque_tokens_equal
from emporium.core.db.base import Reader, table_of
from emporium.core.db.pagination import CreatedSort, by_created_at, created_at_cursor
from emporium.orders.exceptions import OrderNotFound
from emporium.orders.models import (
    ORDER_TOKEN_PURPOSE,
    PAID_STATUSES,
    Order,
    OrderLine,
    OrderStatusChange,
)
from emporium.orders.promoting import held_by
from emporium.orders.schemas import (
    FulfillmentStatus,
    OrderLineRead,
    OrderPage,
    OrderRead,
    OrderStatus,
    PaymentStatus,
    ShippingAddress,
    StatusChangeRead,
)
from emporium.orders.totals import shipping_read

_O, _L, _S = table_of(Order).c, table_of(OrderLine).c, table_of(OrderStatusChange).c
SORT: CreatedSort = "-created_at"
Db = AsyncSession | Reader


def open_address(vault: Vault, order_id: uuid.UUID, token: str) -> ShippingAddress:
    """The clear shipping address of an order."""
    document = vault.open_column(Order.shipping_address_enc, order_id, token) or "{}"
    return msgspec.json.decode(document, type=ShippingAddress)


def _open_billing(vault: Vault, order_id: uuid.UUID, token: str | None) -> ShippingAddress | None:
    document = vault.open_column(Order.billing_address_enc, order_id, token)
    return None if document is None else msgspec.json.decode(document, type=ShippingAddress)


def open_email(vault: Vault, order_id: uuid.UUID, token: str | None) -> str | None:
    """The clear e-mail of an order (None: not recorded, or erased)."""
    return vault.open_column(Order.email_enc, order_id, token)


async def order_email(db: AsyncSession, vault: Vault, order_id: uuid.UUID) -> str | None:
    """The clear e-mail of an order read from the database (None: no such order, or no
    e-mail recorded, or erased)."""
    sealed = await db.scalar(select(_O.email_enc).where(_O.id == order_id))
    return open_email(vault, order_id, sealed)


async def _details(
    db: Db, order_ids: Sequence[uuid.UUID]
) -> tuple[dict[Any, list[OrderLineRead]], dict[Any, list[StatusChangeRead]]]:
    lines: dict[Any, list[OrderLineRead]] = defaultdict(list)
    history: dict[Any, list[StatusChangeRead]] = defaultdict(list)
    if not order_ids:
        return lines, history
    line_rows = await db.execute(
        select(
            _L.id,
            _L.order_id,
            _L.variant_id,
            _L.sku,
            _L.title,
            _L.quantity,
            _L.unit_price,
            _L.subtotal,
            _L.discount_total,
            _L.tax_rate,
            _L.tax_total,
            _L.total,
            _L.quantity_fulfilled,
            _L.quantity_returned,
        )
        .where(_L.order_id.in_(order_ids))
        .order_by(_L.order_id, _L.position)
    )
    for r in line_rows:
        lines[r.order_id].append(
            OrderLineRead(
                id=r.id,
                variant_id=r.variant_id,
                sku=r.sku,
                title=r.title,
                quantity=r.quantity,
                unit_price=r.unit_price,
                line_total=r.subtotal,
                subtotal=r.subtotal,
                discount_total=r.discount_total,
                tax_rate=r.tax_rate,
                tax_total=r.tax_total,
                total=r.total,
                quantity_fulfilled=r.quantity_fulfilled,
                quantity_returned=r.quantity_returned,
            )
        )
    change_rows = await db.execute(
        select(_S.order_id, _S.from_status, _S.to_status, _S.actor_role, _S.created_at)
        .where(_S.order_id.in_(order_ids))
        .order_by(_S.order_id, _S.created_at, _S.id)
    )
    for c in change_rows:
        history[c.order_id].append(
            StatusChangeRead(
                from_status=c.from_status, to_status=c.to_status, by=c.actor_role, at=c.created_at
            )
        )
    return lines, history


_ORDER = select(
    _O.id,
    _O.number,
    _O.status,
    _O.customer_id,
    _O.subtotal,
    _O.discount_total,
    _O.shipping_total,
    _O.tax_total,
    _O.total,
    _O.currency,
    _O.prices_include_tax,
    _O.shipping_method_id,
    _O.shipping_method_name,
    _O.shipping_tax_total,
    _O.shipping_address_enc,
    _O.created_at,
    _O.updated_at,
    _O.payment_status,
    _O.fulfillment_status,
    _O.email_enc,
    _O.billing_address_enc,
    _O.paid_total,
    _O.refunded_total,
    _O.expires_at,
    _O.order_token_hash,
)


async def _reads(db: Db, vault: Vault, rows: Sequence[Any]) -> list[OrderRead]:
    lines, history = await _details(db, [r.id for r in rows])
    promotions = await held_by(db, [r.id for r in rows])
    return [
        OrderRead(
            id=r.id,
            number=r.number,
            status=r.status,
            payment_status=r.payment_status,
            fulfillment_status=r.fulfillment_status,
            customer_id=r.customer_id,
            email=open_email(vault, r.id, r.email_enc),
            items=lines[r.id],
            subtotal=r.subtotal,
            discount_total=r.discount_total,
            shipping=shipping_read(
                r.shipping_method_id, r.shipping_method_name, r.shipping_total, r.shipping_tax_total
            ),
            shipping_total=r.shipping_total,
            tax_total=r.tax_total,
            total=r.total,
            paid_total=r.paid_total,
            refunded_total=r.refunded_total,
            currency=r.currency,
            prices_include_tax=bool(r.prices_include_tax),
            promotions=promotions[r.id],
            shipping_address=open_address(vault, r.id, r.shipping_address_enc),
            billing_address=_open_billing(vault, r.id, r.billing_address_enc),
            status_history=history[r.id],
            expires_at=r.expires_at,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in rows
    ]


async def read_order(db: Db, vault: Vault, order_id: uuid.UUID) -> OrderRead | None:
    """The order as the API shows it, or None when there is no such order (no access check:
    the caller has established the right to see it)."""
    row = (await db.execute(_ORDER.where(_O.id == order_id))).first()
    return None if row is None else (await _reads(db, vault, [row]))[0]


def holds_order(row: Any, identity: Caller | None, order_token: str | None) -> bool:
    """True when the caller may see the order ``row`` (with ``customer_id`` and
    ``order_token_hash``): staff, its customer, or anyone presenting its guest token."""
    if identity is not None and (identity.is_staff or row.customer_id == identity.user_id):
        return True
    if order_token is None or row.order_token_hash is None:
        return False
    presented = hash_opaque_token(order_token, purpose=ORDER_TOKEN_PURPOSE)
    return opaque_tokens_equal(presented, row.order_token_hash)


async def get_order(
    db: Db,
    vault: Vault,
    identity: Caller | None,
    order_id: uuid.UUID,
    order_token: str | None = None,
) -> OrderRead:
    """One order, for its owner, staff, or the guest presenting its ``order_token``.
    Raises OrderNotFound (404) otherwise, exactly as for an order that does not exist."""
    row = (await db.execute(_ORDER.where(_O.id == order_id))).first()
    if row is None or not holds_order(row, identity, order_token):
        raise OrderNotFound("No such order.")
    return (await _reads(db, vault, [row]))[0]


async def list_orders(
    db: Db,
    vault: Vault,
    identity: Caller,
    *,
    status: OrderStatus | None,
    customer_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
    payment_status: PaymentStatus | None = None,
    fulfillment_status: FulfillmentStatus | None = None,
    email: str | None = None,
) -> OrderPage:
    """Orders newest first: a customer's own, or for staff all (filters ``status``,
    ``payment_status``, ``fulfillment_status``, ``customer_id`` and ``email``, the exact
    address, found by its blind index). A customer's filters can only narrow to their own.

    Raises InvalidInput (422) for a bad cursor.
    """
    stmt = _ORDER
    if not identity.is_staff:
        stmt = stmt.where(_O.customer_id == identity.user_id)
    if customer_id is not None:
        stmt = stmt.where(_O.customer_id == customer_id)
    if status is not None:
        stmt = stmt.where(_O.status == status)
    if payment_status is not None:
        stmt = stmt.where(_O.payment_status == payment_status)
    if fulfillment_status is not None:
        stmt = stmt.where(_O.fulfillment_status == fulfillment_status)
    if email is not None:
        stmt = stmt.where(_O.email_index == vault.email_index(email))
    stmt = by_created_at(stmt, SORT, _O.created_at, _O.id, cursor)
    page = (await db.execute(stmt.limit(limit + 1))).all()
    items = await _reads(db, vault, page[:limit])
    return OrderPage(items=items, next_cursor=created_at_cursor(items, len(page) > limit, SORT))


async def has_paid_purchase(
    session: AsyncSession, customer_id: uuid.UUID, product_id: uuid.UUID
) -> bool:
    """True when the customer has a paid (or later) order with a line of ``product_id``."""
    row = await session.execute(
        select(_L.id)
        .join(table_of(Order), _O.id == _L.order_id)
        .where(
            _O.customer_id == customer_id, _L.product_id == product_id, _O.status.in_(PAID_STATUSES)
        )
        .limit(1)
    )
    return row.first() is not None


async def export_customer(db: Db, vault: Vault, customer_id: uuid.UUID) -> dict[str, list[Any]]:
    """Export section (``AccountsContext.export_sections``): every order of the customer,
    oldest first, with its e-mail, addresses and lines, as plain JSON data."""
    stmt = _ORDER.where(_O.customer_id == customer_id).order_by(_O.created_at, _O.id)
    rows = list((await db.execute(stmt)).all())
    return {"orders": [msgspec.to_builtins(order) for order in await _reads(db, vault, rows)]}
