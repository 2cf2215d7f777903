"""Fixtures of the accounts tests: a clock the app follows, moved, never slept on."""

from __future__ import annotations

import pytest

from emporium.core.clock import MovableClock

MovedClock = MovableClock


@pytest.fixture
def clock() -> MovableClock:
    """The clock of the test's app (``tests/conftest.py`` injects it): sign-in, MFA, the
    throttle, sessions and API keys follow it."""
    return MovableClock()
