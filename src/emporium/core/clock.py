"""The clock seam: all business code asks :func:`utcnow` for the time, and the clock behind
it is injected, not patched: ``create_app(settings, clock=...)`` answers every request of
that app with its clock, the job runner runs every job with its own
(``Runner(..., clock=...)``), and :func:`use` sets one for code called directly. Without
one, the system clock. A test, a drill or a replay moves time in one place: the clock it
hands over (:class:`MovableClock`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol


class Clock(Protocol):
    """Tells the current instant (timezone-aware, UTC)."""

    def now(self) -> datetime:
        """The current instant (timezone-aware, UTC)."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        return datetime.now(UTC)


class MovableClock:
    """Real time plus an offset that only moves when told to (never sleeps)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        """The moved current instant."""
        return datetime.now(UTC) + self.offset

    def advance(self, by: float | timedelta) -> None:
        """Move forward by ``by`` (seconds, or a timedelta)."""
        self.offset += by if isinstance(by, timedelta) else timedelta(seconds=by)

    def timestamp(self, shift: float = 0.0) -> float:
        """Unix time of this clock, ``shift`` seconds later (TOTP codes, for example)."""
        return self.now().timestamp() + shift


SYSTEM_CLOCK = SystemClock()
_current: ContextVar[Clock] = ContextVar("emporium_clock", default=SYSTEM_CLOCK)


def utcnow() -> datetime:
    """The current instant of the clock in use, timezone-aware, in UTC."""
    return _current.get().now()


@contextmanager
def use(clock: Clock) -> Iterator[None]:
    """Run the block (and the tasks it starts) with ``clock`` behind :func:`utcnow`."""
    token = _current.set(clock)
    try:
        yield
    finally:
        _current.reset(token)


class ClockMiddleware:
    """ASGI middleware: the wrapped app handles every request with ``clock``."""

    def __init__(self, app: Any, clock: Clock) -> None:
        self.app, self.clock = app, clock

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Call the app with the clock in use."""
        with use(self.clock):
            await self.app(scope, receive, send)
