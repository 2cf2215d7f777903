"""Reads of the payments room: an order's payments, refunds and money history, and the
order facts a payment needs. Nothing here writes."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from emporium.accounts.identity import Caller
from emporium.accounts.protect import Vault, plain_row
from emporium.core.db.base import Reader, table_of
from emporium.orders.exceptions import OrderNotFound
from emporium.orders.models import Order
from emporium.orders.queries import holds_order
from emporium.payments.models import Payment, PaymentChange, Refund
from emporium.payments.schemas import PaymentRead, RefundRead

Db = Any  # an AsyncSession or a Reader: both execute() Core statements
_O = table_of(Order).c
_P, _R, _C = table_of(Payment).c, table_of(Refund).c, table_of(PaymentChange).c
ORDER_FACTS = select(
    _O.id,
    _O.status,
    _O.customer_id,
    _O.order_token_hash,
    _O.total,
    _O.paid_total,
    _O.refunded_total,
    _O.currency,
)


async def visible_order(
    db: Db | Reader, identity: Caller | None, order_id: uuid.UUID, order_token: str | None
) -> Any:
    """The order's payment facts (status, customer, totals, currency) when the caller may
    see it: staff, its customer, or a guest with its ``Order-Token``.

    Raises OrderNotFound (404) otherwise, as for an order that does not exist."""
    row = (await db.execute(ORDER_FACTS.where(_O.id == order_id))).first()
    if row is None or not holds_order(row, identity, order_token):
        raise OrderNotFound("No such order.")
    return row


def payment_read(vault: Vault, row: Any) -> PaymentRead:
    """The API shape of a ``payment`` row; the client secret is shown only while the payment
    still needs the browser (``pending``, ``requires_action``)."""
    secret = None
    if row.status in ("pending", "requires_action"):
        secret = vault.open_column(Payment.client_secret_enc, row.id, row.client_secret_enc)
    return PaymentRead(
        id=row.id,
        order_id=row.order_id,
        provider=row.provider,
        status=row.status,
        amount=row.amount,
        captured_amount=row.captured_amount,
        refunded_amount=row.refunded_amount,
        currency=row.currency,
        created_at=row.created_at,
        updated_at=row.updated_at,
        client_secret=secret,
        failure_code=row.failure_code,
    )


async def get_payment(db: Db, vault: Vault, payment_id: uuid.UUID) -> PaymentRead | None:
    """One payment as the API shows it (no access check), or None."""
    row = (await db.execute(select(table_of(Payment)).where(_P.id == payment_id))).first()
    return None if row is None else payment_read(vault, row)


async def list_payments(db: Db, vault: Vault, order_id: uuid.UUID) -> list[PaymentRead]:
    """The order's payments, oldest first (no access check: see :func:`visible_order`)."""
    rows = await db.execute(
        select(table_of(Payment)).where(_P.order_id == order_id).order_by(_P.created_at, _P.id)
    )
    return [payment_read(vault, r) for r in rows]


def refund_read(row: Any) -> RefundRead:
    """The API shape of a ``refund`` row."""
    return RefundRead(
        id=row.id,
        payment_id=row.payment_id,
        amount=row.amount,
        status=row.status,
        reason=row.reason,
        created_at=row.created_at,
    )


async def list_refunds(db: Db, order_id: uuid.UUID) -> list[RefundRead]:
    """The order's refunds, oldest first."""
    rows = await db.execute(
        select(table_of(Refund)).where(_R.order_id == order_id).order_by(_R.created_at, _R.id)
    )
    return [refund_read(r) for r in rows]


async def money_history(db: Db, order_id: uuid.UUID) -> list[Any]:
    """Every money move of the order, oldest first: ``payment_change`` rows (kind, amount,
    source, actor, when)."""
    rows = await db.execute(
        select(table_of(PaymentChange))
        .where(_C.order_id == order_id)
        .order_by(_C.created_at, _C.id)
    )
    return list(rows)


async def export_customer(
    db: Reader | Any, vault: Vault, customer_id: uuid.UUID
) -> dict[str, list[Any]]:
    """Export section (``AccountsContext.export_sections``): the payments and refunds of the
    customer's orders, oldest first, without secrets (sealed columns are left out)."""
    orders = select(table_of(Order).c.id).where(table_of(Order).c.customer_id == customer_id)
    sections: dict[str, list[Any]] = {}
    for name, model in (("payments", Payment), ("refunds", Refund)):
        table = table_of(model)
        stmt = select(table).where(table.c.order_id.in_(orders)).order_by(table.c.created_at)
        sections[name] = [plain_row(row) for row in (await db.execute(stmt)).all()]
    # Refunds are shown with the payments they return money from.
    refunds = sections.pop("refunds")
    for payment in sections["payments"]:
        payment["refunds"] = [r for r in refunds if r.get("payment_id") == payment["id"]]
    return sections
