"""A circuit breaker for an optional service (Redis): after a failure, skip it for a
cool-down, then let one request probe it.

States (Nygard, *Release It!*; the names of Martin Fowler's "CircuitBreaker" article):
``closed`` (the service is used), ``open`` (it is skipped until the cool-down ends) and
``half-open`` (one caller probes; success closes the circuit, failure opens it again). Each
change of state is logged once and shown by the ``emporium_service_up`` gauge, so an outage
costs one short timeout per cool-down instead of one per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog
from prometheus_client import Gauge


def _log() -> Any:
    """The ``emporium.breaker`` logger, looked up at each (rare) change of state so that it
    always writes through the current configuration."""
    return structlog.get_logger("emporium.breaker")


SERVICE_UP = Gauge(
    "emporium_service_up",
    "1 while an optional service (label service) is used, 0 while its circuit is open",
    ["service"],
    multiprocess_mode="livemin",
)


class CircuitBreaker:
    """Decides whether to call ``service`` now; told how each call went."""

    def __init__(
        self, service: str, *, cooldown_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """``cooldown_seconds``: how long the service is skipped after a failure."""
        self.service = service
        self.cooldown = cooldown_seconds
        self._clock = clock
        self._open_until: float | None = None  # None: closed
        self._probing = False
        SERVICE_UP.labels(service).set(1)

    @property
    def is_closed(self) -> bool:
        """True while the service is believed up."""
        return self._open_until is None

    def allows(self) -> bool:
        """True when the caller should use the service now: the circuit is closed, or the
        cool-down is over and nobody else is probing (the caller becomes the probe and must
        report with :meth:`succeeded` or :meth:`failed`)."""
        if self._open_until is None:
            return True
        if self._probing or self._clock() < self._open_until:
            return False
        self._probing = True
        return True

    def succeeded(self) -> None:
        """The service answered: close the circuit (logged when it was open)."""
        self._probing = False
        if self._open_until is not None:
            self._open_until = None
            SERVICE_UP.labels(self.service).set(1)
            _log().warning("service_restored", service=self.service)

    def failed(self, error: str) -> None:
        """The service failed or timed out: skip it for the cool-down (logged when it was
        closed; failed probes while open are not logged again)."""
        self._probing = False
        was_closed = self._open_until is None
        self._open_until = self._clock() + self.cooldown
        if was_closed:
            SERVICE_UP.labels(self.service).set(0)
            _log().error(
                "service_unavailable",
                service=self.service,
                error=error,
                retry_in_seconds=self.cooldown,
            )
