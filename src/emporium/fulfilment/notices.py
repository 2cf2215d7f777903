"""The shipping e-mail: ``fulfillment.created`` with ``notify_customer`` tells the buyer
that a parcel left, with its carrier, tracking number and ``https`` tracking link.

A customer's goes to the account's e-mail (nothing for an erased or deactivated account), a
guest's to the order's sealed e-mail, both read when the job runs (events carry ids, never
addresses). Each message is keyed by its event (``mail.service.send_once``): a retried job
never sends a second e-mail.
"""

from __future__ import annotations

import uuid
from typing import Any

from emporium.accounts.notifications import account_recipient
from emporium.accounts.protect import Vault
from emporium.jobs.registry import JobRun, Registry
from emporium.mail.service import send_once
from emporium.mail.transport import Transport
from emporium.orders.queries import order_email

TEMPLATE = "order_shipped"
KIND = f"mail.{TEMPLATE}"


async def _recipient(run: JobRun, vault: Vault, data: dict[str, Any]) -> tuple[str, str | None]:
    """The address and first name to write to ("" when there is nobody to write to)."""
    async with run.sessionmaker() as session:
        if data.get("customer_id"):
            found = await account_recipient(session, vault, uuid.UUID(str(data["customer_id"])))
            return found or ("", None)
        email = await order_email(session, vault, uuid.UUID(str(data["order_id"])))
    return email or "", None


def context_of(data: dict[str, Any]) -> dict[str, Any]:
    """The template context of the shipping e-mail from ``fulfillment.created`` data."""
    return {
        "number": str(data["number"]),
        "carrier": data.get("carrier"),
        "tracking_number": data.get("tracking_number"),
        "tracking_url": data.get("tracking_url"),
        "items": [
            {"title": line["title"], "sku": line["sku"], "quantity": line["quantity"]}
            for line in data.get("lines", [])
        ],
    }


def _handler(vault: Vault, transport: Transport) -> Any:
    async def handle(run: JobRun) -> None:
        data: dict[str, Any] = run.payload["data"]
        if not data.get("notify_customer"):
            return
        email, first_name = await _recipient(run, vault, data)
        if not email:
            return  # erased, deactivated, or no e-mail recorded
        await send_once(
            run.sessionmaker,
            transport,
            key=f"{run.payload['event_id']}:{TEMPLATE}",
            template=TEMPLATE,
            context={"first_name": first_name, **context_of(data)},
            to=email,
            sender=run.settings.mail_from,
        )

    return handle


def register(registry: Registry, vault: Vault, transport: Transport) -> None:
    """Register the shipping e-mail (``mail.order_shipped``, on ``fulfillment.created``)."""
    registry.handle(KIND, _handler(vault, transport))
    registry.subscribe("fulfillment.created", KIND)
