"""Errors of the payments room, each with a stable code."""

from __future__ import annotations

from emporium.core.errors import Conflict, DomainError, Forbidden, NotFound


class PaymentTimedOut(DomainError):
    """Paying with an ``Idempotency-Key`` ran out of its time limit (the key's lease,
    ``EMPORIUM_IDEMPOTENCY_LEASE_SECONDS``) before the provider was asked; nothing was
    created and the key was released."""

    status, code, title = 503, "service_unavailable", "Service unavailable"
    retry_after = 1


class PaymentNotFound(NotFound):
    """No such payment, or one the caller may not see."""

    code = "payment_not_found"


class ProviderNotFound(NotFound):
    """No such payment provider, or it is not enabled."""

    code = "provider_not_found"


class OrderNotPayable(Conflict):
    """The order is not awaiting payment (paid, cancelled, refunded...)."""

    code, title = "order_not_payable", "Order not payable"


class AmountExceedsBalance(Conflict):
    """More than the order's unpaid balance (open payments count as paid)."""

    code, title = "amount_exceeds_balance", "Amount exceeds the unpaid balance"


class RefundExceedsCaptured(Conflict):
    """More would be refunded than was captured (and is not refunded yet)."""

    code, title = "refund_exceeds_captured", "Refund exceeds captured amount"


class PaymentNotCapturable(Conflict):
    """Capture or cancel of a payment in a state that does not allow it."""

    code, title = "payment_state_conflict", "Payment state does not allow this"


class InvalidSignatureError(DomainError):
    """A provider event whose signature is missing, wrong or stale (400)."""

    status, code, title = 400, "invalid_signature", "Invalid signature"


class PaymentProviderError(DomainError):
    """The provider could not be reached or failed; nothing is known to have changed."""

    status, code, title = 502, "payment_provider_error", "Payment provider error"


class ManualForStaffOnly(Forbidden):
    """Only staff record ``manual`` payments."""

    code = "provider_not_allowed"
