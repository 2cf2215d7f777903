"""Imports every room's tables so that ``Base.metadata`` is complete (migrations, tests)."""

from __future__ import annotations


def import_all_models() -> None:
    """Register all tables on ``emporium.core.db.Base.metadata``."""
    import emporium.accounts.models
    import emporium.audit.models
    import emporium.backups.models
    import emporium.catalog.models
    import emporium.core.crypto.keyset
    import emporium.fulfilment.models
    import emporium.giftcards.models
    import emporium.inventory.models
    import emporium.jobs.models
    import emporium.mail.models
    import emporium.orders.models
    import emporium.payments.models
    import emporium.promotions.models
    import emporium.returns.models
    import emporium.reviews.models
    import emporium.shipping.models
    import emporium.webhooks.models  # noqa: F401
