"""Errors of the gift-cards room, each with a stable code."""

from __future__ import annotations

from emporium.core.errors import DomainError, NotFound


class GiftCardNotFound(NotFound):
    """No such gift card (staff routes, by id)."""

    code = "gift_card_not_found"


class GiftCardUnknown(NotFound):
    """The balance check of a code that is unknown, disabled or expired: one answer for
    all three, so that it tells nothing about which (OWASP ASVS 2.2, no enumeration)."""

    code, title = "gift_card_not_found", "Not found"
    DETAIL = "No usable gift card has this code."

    def __init__(self) -> None:
        super().__init__(self.DETAIL)


class GiftCardInvalid(DomainError):
    """A payment with a gift-card code that is unknown, disabled or expired (the same
    answer for all three), or missing (422 ``gift_card_invalid``)."""

    status, code, title = 422, "gift_card_invalid", "Gift card not usable"


class GiftCardCurrency(DomainError):
    """A payment with a gift card of another currency than the order's (422)."""

    status, code, title = 422, "gift_card_currency_mismatch", "Gift card in another currency"
