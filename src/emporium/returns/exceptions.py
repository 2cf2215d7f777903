"""Errors of the returns room, each with a stable code."""

from __future__ import annotations

from emporium.core.errors import Conflict, NotFound


class ReturnNotFound(NotFound):
    """No such return, or one the caller may not see."""

    code = "return_not_found"


class ReturnExceedsFulfilled(Conflict):
    """More units than were shipped and are not already returned or asked back."""

    code, title = "return_exceeds_fulfilled", "Return exceeds the fulfilled quantity"


class ReturnWindowClosed(Conflict):
    """The order was delivered longer ago than ``EMPORIUM_RETURN_WINDOW_DAYS``; staff may
    still open the return."""

    code, title = "return_window_closed", "Return window closed"


class OrderNotReturnable(Conflict):
    """The order was never paid, or was cancelled or refunded as a whole."""

    code, title = "order_not_returnable", "Order not returnable"


class ReturnStateConflict(Conflict):
    """The return is not in the state this step needs (received twice, refunded before it
    was received, refunded twice)."""

    code, title = "return_state_conflict", "Return state conflict"


class ShippingAlreadyRefunded(Conflict):
    """Another return of the order already gave the shipping back."""

    code, title = "shipping_already_refunded", "Shipping already refunded"


class ReceiveExceedsRequested(Conflict):
    """More units received than the return asked for, or a line not in the return."""

    code, title = "receive_exceeds_requested", "More received than requested"
