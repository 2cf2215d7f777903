"""Fixtures of the accounts tests: a clock the security code follows, moved, never slept on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from emporium.accounts import api_keys, identity, mfa, sessions, signin, throttle


class MovedClock:
    """The time the accounts code sees: the real time plus an offset that tests move."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        """The moved current instant."""
        return datetime.now(UTC) + self.offset

    def timestamp(self, shift: float = 0.0) -> float:
        """Unix time of the moved clock, ``shift`` seconds later (for TOTP codes)."""
        return self.now().timestamp() + shift

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> MovedClock:
    """A clock followed by sign-in, MFA, the throttle, sessions and API keys."""
    moved = MovedClock()
    for module in (api_keys, identity, mfa, sessions, signin, throttle):
        monkeypatch.setattr(module, "utcnow", moved.now)
    return moved
