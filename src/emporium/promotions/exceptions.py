"""Errors of the promotions room, each with a stable code (``API.md``, Carts and checkout)."""

from __future__ import annotations

from emporium.core.errors import Conflict, InvalidInput, NotFound


class PromotionNotFound(NotFound):
    """No such promotion."""

    code = "promotion_not_found"


class PromotionRefused(InvalidInput):
    """A code that cannot be used on this cart or order (422); ``code`` says why."""

    code = "promotion_not_applicable"


class PromotionCodeInvalid(PromotionRefused):
    """No active promotion has this code (unknown and disabled codes look the same)."""

    code = "promotion_code_invalid"


class PromotionExpired(PromotionRefused):
    """The promotion's ``ends_at`` has passed."""

    code = "promotion_expired"


class PromotionExhausted(PromotionRefused):
    """The promotion has no use left: its total ``usage_limit`` is reached, or this buyer's
    ``usage_limit_per_customer``."""

    code = "promotion_exhausted"


class PromotionNotApplicable(PromotionRefused):
    """The promotion's conditions do not hold for this cart: not started yet, subtotal
    under ``min_subtotal``, no line of its categories or products, another currency."""

    code = "promotion_not_applicable"


REFUSALS: dict[str, type[PromotionRefused]] = {
    cls.code: cls
    for cls in (PromotionCodeInvalid, PromotionExpired, PromotionExhausted, PromotionNotApplicable)
}
"""The refusal class of each problem code."""


class PromotionCodeTaken(Conflict):
    """Another promotion has this code (codes are compared case-insensitively)."""

    code = "promotion_code_taken"


class PromotionInUse(Conflict):
    """The promotion is held by orders and cannot be deleted; deactivate it instead."""

    code = "promotion_in_use"
