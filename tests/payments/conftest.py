"""Fixtures of the payments tests: the Stripe API double (``doubles.stripe_api``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from doubles.stripe_api import StripeDouble, running_stripe_api


@pytest.fixture
def stripe_api() -> Iterator[StripeDouble]:
    """A test double of the Stripe API on 127.0.0.1 (``stripe_api.url`` is the API base;
    secret key ``doubles.stripe_api.SECRET_KEY``, webhook secret ``WEBHOOK_SECRET``)."""
    with running_stripe_api() as double:
        yield double
