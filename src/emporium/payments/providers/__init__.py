"""Payment providers: each a module behind the interface of :mod:`.base`;
:func:`build_providers` makes the enabled ones."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from emporium.core.config import Settings
from emporium.core.crypto.keys import KeyRing
from emporium.core.crypto.sealing import blind_index
from emporium.payments.providers.base import Provider
from emporium.payments.providers.gift_card import GiftCardProvider
from emporium.payments.providers.manual import ManualProvider
from emporium.payments.providers.test import TestProvider

TEST_SECRET_PURPOSE = "payments-test-events"  # noqa: S105 (a label, not a secret)


def test_secret(settings: Settings, ring: KeyRing) -> str:
    """The test provider's signing secret: ``EMPORIUM_PAYMENTS_TEST_SECRET``, or one derived
    from the key file (stable across restarts, never stored)."""
    if settings.payments_test_secret is not None:
        return settings.payments_test_secret.get_secret_value()
    return blind_index(ring, TEST_SECRET_PURPOSE, purpose=TEST_SECRET_PURPOSE)


test_secret.__test__ = False  # type: ignore[attr-defined]


def build_providers(
    settings: Settings, ring: KeyRing, sessionmaker: async_sessionmaker[AsyncSession]
) -> dict[str, Provider]:
    """The enabled providers (``EMPORIUM_PAYMENT_PROVIDERS``) by name; ``stripe`` from
    ``EMPORIUM_STRIPE_*`` (:meth:`.stripe.StripeProvider.from_settings`); the settings refuse
    ``stripe`` without ``EMPORIUM_STRIPE_SECRET_KEY`` at start-up. ``gift_card`` is on unless
    ``EMPORIUM_PAYMENTS_GIFT_CARDS=false``."""
    found: dict[str, Provider] = {}
    for name in settings.payment_providers:
        if name == "manual":
            found[name] = ManualProvider()
        elif name == "test":
            found[name] = TestProvider(sessionmaker, test_secret(settings, ring))
        elif name == "stripe":
            # The Stripe SDK (~25 MB resident) is loaded only where the provider is on.
            from emporium.payments.providers.stripe import StripeProvider

            found[name] = StripeProvider.from_settings(settings)
    if settings.payments_gift_cards:
        found[GiftCardProvider.name] = GiftCardProvider(sessionmaker)
    return found
