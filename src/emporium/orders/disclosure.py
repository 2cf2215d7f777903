"""Orders read by staff and API keys, recorded in the audit trail: an order holds another
person's e-mail and addresses, so each such read is an audit event naming the fields shown
(never their values). A customer reading their own order, or a guest with its token, is not
recorded."""

from __future__ import annotations

import uuid
from typing import Any

from emporium.accounts.identity import Caller
from emporium.accounts.protect import Vault
from emporium.audit.chain import record_apart
from emporium.core.resources import Resources
from emporium.orders import queries
from emporium.orders.queries import Db as Reader
from emporium.orders.schemas import OrderPage, OrderRead

PERSONAL_FIELDS = ("email", "shipping_address", "billing_address")


def _someone_elses(caller: Caller | None, order: OrderRead) -> bool:
    """True when ``caller`` reads ``order`` with staff powers and it is not their own."""
    return caller is not None and caller.is_staff and order.customer_id != caller.user_id


def _fields(order: OrderRead) -> list[str]:
    return [name for name in PERSONAL_FIELDS if getattr(order, name)]


async def read_order(
    reader: Reader,
    resources: Resources,
    vault: Vault,
    caller: Caller | None,
    order_id: uuid.UUID,
    order_token: str | None,
) -> OrderRead:
    """``queries.get_order``, audited (``order.personal_data_read``) when staff or a key read
    another person's order. Raises what ``queries.get_order`` raises (404)."""
    order = await queries.get_order(reader, vault, caller, order_id, order_token)
    if _someone_elses(caller, order):
        await record_apart(
            resources.sessionmaker,
            action="order.personal_data_read",
            object_type="order",
            object_id=order.id,
            details={"fields": _fields(order)},
        )
    return order


async def list_orders(
    reader: Reader, resources: Resources, vault: Vault, caller: Caller, **filters: Any
) -> OrderPage:
    """``queries.list_orders``, audited once (``order.listed``, with the orders' ids and the
    fields shown) when staff or a key list other people's orders."""
    page = await queries.list_orders(reader, vault, caller, **filters)
    others = [order for order in page.items if _someone_elses(caller, order)]
    if others:
        shown = sorted({field for order in others for field in _fields(order)})
        await record_apart(
            resources.sessionmaker,
            action="order.listed",
            object_type="order",
            details={"order_ids": [str(o.id) for o in others], "fields": shown},
        )
    return page
