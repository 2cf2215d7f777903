"""The ``manual`` provider: money that arrives outside Emporium (bank transfer, cash on
delivery). Nothing is asked of anyone: staff record the money when it arrives
(``POST /payments/{id}/capture``) and give it back themselves (a refund is recorded as done).
It sends no events and keeps no state of its own: the payment row is the truth."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import ClassVar, Literal

from emporium.payments.providers.base import (
    Intent,
    InvalidSignature,
    ProviderError,
    ProviderEvent,
    RefundResult,
)


class ManualProvider:
    """Payments recorded by staff; see the module docstring."""

    name: ClassVar[str] = "manual"

    def public_settings(self) -> dict[str, str]:
        """Nothing to tell a storefront."""
        return {}

    async def create(
        self,
        *,
        payment_id: uuid.UUID,
        order_id: uuid.UUID,
        amount: int,
        currency: str,
        payment_method: str | None,
        capture: Literal["automatic", "manual"],
    ) -> Intent:
        """A payment awaiting the money (``pending``), referenced by our own id."""
        return Intent(f"manual_{payment_id.hex}", "pending", amount, 0, currency)

    async def retrieve(self, reference: str) -> Intent:
        """Unknowable: only staff know whether the money arrived (ProviderError)."""
        raise ProviderError("manual payments are settled by staff")

    async def capture(self, reference: str, amount: int, *, payment_id: uuid.UUID) -> Intent:
        """Staff received ``amount``."""
        return Intent(reference, "captured", amount, amount, "")

    async def cancel(self, reference: str, *, payment_id: uuid.UUID) -> Intent:
        """The money will not come."""
        return Intent(reference, "cancelled", 0, 0, "")

    async def refund(
        self, reference: str, amount: int, *, refund_id: uuid.UUID, payment_id: uuid.UUID
    ) -> RefundResult:
        """Staff gave ``amount`` back themselves: recorded as done."""
        return RefundResult(f"manual_refund_{refund_id.hex}", "succeeded", amount, reference)

    def parse_event(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        """The manual provider sends no events: every delivery is refused."""
        raise InvalidSignature("the manual provider sends no events")
