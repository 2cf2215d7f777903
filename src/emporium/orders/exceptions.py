"""Errors of the orders room, each with a stable code."""

from __future__ import annotations

from emporium.core.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound


class OrderNotFound(NotFound):
    """No such order, or it is another customer's (the two look the same)."""

    code = "order_not_found"


class CartItemNotFound(NotFound):
    """No such line in the caller's cart."""

    code = "cart_item_not_found"


class EmptyCart(InvalidInput):
    """Checkout without ``items`` and with an empty cart."""

    code = "empty_cart"


class VariantUnavailable(InvalidInput):
    """A line names a variant that does not exist or is not for sale."""

    code = "variant_unavailable"


class InvalidTransition(Conflict):
    """The order's status cannot move that way (from its current status)."""

    code, title = "invalid_transition", "Invalid status transition"


class CancelNotAllowed(Forbidden):
    """A customer may cancel their own order only while it is pending."""

    code = "cancel_not_allowed"


class IdempotencyKeyReused(DomainError):
    """The ``Idempotency-Key`` was used before with another request body."""

    status, code, title = 422, "idempotency_key_reused", "Idempotency key reused"


class IdempotencyKeyInFlight(Conflict):
    """A request with the same ``Idempotency-Key`` is still being processed."""

    code, title = "idempotency_key_in_flight", "Request in progress"


class InvalidIdempotencyKey(InvalidInput):
    """The ``Idempotency-Key`` header is empty, too long or not printable ASCII."""

    code = "invalid_idempotency_key"


class CheckoutTimedOut(DomainError):
    """Checkout with an ``Idempotency-Key`` ran out of its time limit (the key's lease, see
    ``EMPORIUM_IDEMPOTENCY_LEASE_SECONDS``); nothing was created and the key was released."""

    status, code, title = 503, "service_unavailable", "Service unavailable"
    retry_after = 1


class ShippingMethodRequired(InvalidInput):
    """The shop ships, and the order names no shipping method."""

    code = "shipping_method_required"


class ShippingMethodUnavailable(InvalidInput):
    """The shipping method does not exist, is inactive, or does not serve the address or
    the cart's weight (a method of another zone included)."""

    code = "shipping_method_unavailable"


class CartNotFound(NotFound):
    """No such cart, or the caller does not hold it (the two look the same)."""

    code = "cart_not_found"


class ShippingAddressRequired(InvalidInput):
    """Checkout of a cart that has no shipping address."""

    code = "shipping_address_required"


class EmailRequired(InvalidInput):
    """Checkout of a guest cart that has no e-mail (the order confirmation goes there)."""

    code = "email_required"
