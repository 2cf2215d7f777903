"""The priced figures of an order as rows and API shapes: one mapping from
``orders.pricing`` results to ``order_line`` / ``customer_order`` columns and to
``OrderLineRead``, so that checkout, reads and events never restate the arithmetic."""

from __future__ import annotations

import uuid
from typing import Any

from emporium.orders.pricing import PricedLine, PricedOrder
from emporium.orders.schemas import OrderLineRead, OrderShippingRead


def line_read(
    line_id: uuid.UUID,
    variant_id: uuid.UUID | None,
    sku: str | None,
    title: str,
    line: PricedLine,
) -> OrderLineRead:
    """The API shape of a new priced line (``line_total`` is v1's name of ``subtotal``)."""
    return OrderLineRead(
        id=line_id,
        variant_id=variant_id,
        sku=sku,
        title=title,
        quantity=line.quantity,
        unit_price=line.unit_price,
        line_total=line.subtotal,
        subtotal=line.subtotal,
        discount_total=line.discount_total,
        tax_rate=line.tax_rate,
        tax_total=line.tax_total,
        total=line.total,
    )


def line_row(line: OrderLineRead, prices_include_tax: bool) -> dict[str, Any]:
    """The ``order_line`` columns of a line (without ``order_id`` and position)."""
    return {
        "id": line.id,
        "variant_id": line.variant_id,
        "sku": line.sku,
        "title": line.title,
        "quantity": line.quantity,
        "unit_price": line.unit_price,
        "subtotal": line.subtotal,
        "discount_total": line.discount_total,
        "tax_rate": line.tax_rate,
        "tax_total": line.tax_total,
        "total": line.total,
        "prices_include_tax": prices_include_tax,
    }


def shipping_read(
    method_id: uuid.UUID | None, name: str | None, price: int, tax_total: int
) -> OrderShippingRead | None:
    """The ``shipping`` of an order answer; None for an order shipped by no method."""
    if name is None:
        return None
    return OrderShippingRead(method_id=method_id, name=name, price=price, tax_total=tax_total)


def order_figures(totals: PricedOrder) -> dict[str, Any]:
    """The money columns of ``customer_order`` for a priced order."""
    shipping_rate = totals.shipping.tax_rate if totals.shipping else 0
    return {
        "subtotal": totals.subtotal,
        "discount_total": totals.discount_total,
        "shipping_total": totals.shipping_total,
        "shipping_tax_rate": shipping_rate,
        "shipping_tax_total": totals.shipping_tax_total,
        "tax_total": totals.tax_total,
        "total": totals.total,
        "prices_include_tax": totals.prices_include_tax,
    }
