"""Fixtures of the payments tests: the Stripe API double (``doubles.stripe_api``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from doubles.stripe_api import StripeDouble, running_stripe_api


@pytest.fixture
def stripe_api() -> Iterator[StripeDouble]:
    """A test double of the Stripe API on 127.0.0.1. Point Emporium at it with
    ``stripe_api_base=stripe_api.url``, ``stripe_secret_key=doubles.stripe_api.SECRET_KEY``
    and ``stripe_webhook_secret=doubles.stripe_api.WEBHOOK_SECRET``; its events are held
    until released to ``stripe_api.webhook_url``, or taken signed with
    ``stripe_api.take_signed()`` for an app served in-process."""
    with running_stripe_api() as double:
        yield double
