"""Writing orders' records: sealed e-mail and addresses, the data of ``order.*`` events,
and the erasure step of the orders room (reads are in ``queries``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.protect import Vault
from emporium.core.db.base import table_of
from emporium.orders.models import Cart, Order
from emporium.orders.schemas import OrderLineRead

_O = table_of(Order).c


def seal_address(
    vault: Vault, order_id: uuid.UUID, fields: dict[str, Any], *, billing: bool = False
) -> str:
    """An address encrypted for this order's row (personal data at rest): the shipping
    address, or with ``billing`` the billing address."""
    document = msgspec.json.encode(fields).decode()
    column = Order.billing_address_enc if billing else Order.shipping_address_enc
    return vault.seal_column(column, order_id, document) or ""


def seal_email(vault: Vault, order_id: uuid.UUID, email: str) -> dict[str, str | None]:
    """The ``email_enc`` and ``email_index`` columns of an order for ``email``."""
    return {
        "email_enc": vault.seal_column(Order.email_enc, order_id, email),
        "email_index": vault.email_index(email),
    }


class Figures(Protocol):
    """An order's money figures (a priced order, an order row or an ``OrderRead``)."""

    @property
    def subtotal(self) -> int:
        """Sum of the lines' subtotals (minor units)."""
        ...

    @property
    def discount_total(self) -> int:
        """Sum of the lines' discounts (minor units)."""
        ...

    @property
    def shipping_total(self) -> int:
        """Shipping price (minor units)."""
        ...

    @property
    def tax_total(self) -> int:
        """Tax of the lines and the shipping (minor units)."""
        ...

    @property
    def total(self) -> int:
        """What the customer pays (minor units)."""
        ...

    @property
    def prices_include_tax(self) -> bool:
        """Whether the prices include the tax."""
        ...


def order_event_data(
    order_id: uuid.UUID,
    number: str,
    customer_id: uuid.UUID | None,
    status: str,
    figures: Figures,
    currency: str,
    lines: Sequence[OrderLineRead],
) -> dict[str, Any]:
    """The data of ``order.*`` events (ids and amounts in minor units, no personal data):
    ``{order_id, number, customer_id, status, subtotal, discount_total, shipping_total,
    tax_total, total, currency, prices_include_tax, items: [{sku, title, quantity,
    unit_price, line_total, discount_total, tax_rate, tax_total, total}]}``."""
    return {
        "order_id": str(order_id),
        "number": number,
        "customer_id": str(customer_id) if customer_id else None,
        "status": status,
        "subtotal": figures.subtotal,
        "discount_total": figures.discount_total,
        "shipping_total": figures.shipping_total,
        "tax_total": figures.tax_total,
        "total": figures.total,
        "currency": currency,
        "prices_include_tax": figures.prices_include_tax,
        "items": [
            {
                "sku": i.sku,
                "title": i.title,
                "quantity": i.quantity,
                "unit_price": i.unit_price,
                "line_total": i.subtotal,
                "discount_total": i.discount_total,
                "tax_rate": i.tax_rate,
                "tax_total": i.tax_total,
                "total": i.total,
            }
            for i in lines
        ],
    }


async def erase_customer(session: AsyncSession, customer_id: uuid.UUID) -> None:
    """Account erasure step (``AccountsContext.erasure_steps``): the customer's cart goes
    (its e-mail and addresses with it) and their orders forget the e-mail; orders keep
    their shipping address, which the shop must keep for its accounts."""
    await session.execute(delete(table_of(Cart)).where(table_of(Cart).c.customer_id == customer_id))
    await session.execute(
        update(table_of(Order))
        .where(_O.customer_id == customer_id)
        .values(email_enc=None, email_index=None)
    )
