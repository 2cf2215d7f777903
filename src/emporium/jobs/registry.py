"""What the runner knows: job handlers by kind, event subscriptions and periodic schedules.

Rooms register on one :class:`Registry` built by the application (``emporium.app``), so
the jobs room never imports the rooms whose work it runs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from emporium.core.config import Settings

ALL_EVENTS = "*"


Write = Callable[[AsyncSession], Awaitable[None]]
"""A write a handler leaves for the transaction that records its attempt's outcome."""


@dataclass(frozen=True)
class JobRun:
    """One attempt of a job, as its handler sees it (``attempt`` counts from 1)."""

    id: str
    kind: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    writes: list[Write] = field(default_factory=list)

    def record_with_result(self, write: Write) -> None:
        """Run ``write(session)`` in the transaction that records this attempt's outcome
        (done, or failed and retried), whether the handler then returns or raises: a record
        of what the handler did outside the database (an e-mail's ``sent_at``, a webhook
        attempt) commits with the job's result instead of in a transaction of its own. A
        crash before that commit runs the job again, as one before a handler's own commit
        would. The runner drops (and logs) writes that fail for another reason than an
        outage, so that the job's result is still recorded."""
        self.writes.append(write)


Handler = Callable[[JobRun], Awaitable[None]]
DispatchWork = Callable[[AsyncSession, list[dict[str, Any]], int], Awaitable[None]]
"""Work done for a batch of events inside the transaction that dispatches them, instead of
one job per event: ``(session, the events' job payloads, max_attempts)``."""
Condition = Callable[[dict[str, Any]], bool]
"""Whether an event's data calls for a job at all (a subscription's ``when``)."""


class RetryLater(Exception):
    """Raised by a handler that failed and chose its own retry delay (it may have shown
    that time to users, e.g. a webhook delivery's ``next_retry_at``)."""

    def __init__(self, reason: str, *, delay: timedelta) -> None:
        super().__init__(reason)
        self.delay = delay


@dataclass(frozen=True)
class Schedule:
    """Run a job of ``kind`` once per ``every`` across all runners."""

    kind: str
    every: timedelta


@dataclass
class Registry:
    """Handlers, subscriptions and schedules; filled at start-up, read by the runner."""

    handlers: dict[str, Handler] = field(default_factory=dict)
    subscriptions: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    conditions: dict[tuple[str, str], Condition] = field(default_factory=dict)
    schedules: list[Schedule] = field(default_factory=list)
    closers: list[Callable[[], None]] = field(default_factory=list)
    dispatch_work: dict[str, DispatchWork] = field(default_factory=dict)

    def handle(self, kind: str, handler: Handler) -> None:
        """Run ``handler`` for jobs of ``kind``; it must be idempotent (it may run again
        after a crash) and raise to ask for a retry."""
        if kind in self.handlers:
            raise ValueError(f"a handler for {kind!r} is registered already")
        self.handlers[kind] = handler

    def subscribe(self, event_type: str, kind: str, *, when: Condition | None = None) -> None:
        """Make a job of ``kind`` for every event ``event_type`` (``*``: every event); the
        job's payload is ``{"event_id", "type", "data", "occurred_at"}``. With ``when``,
        only for events whose data it accepts (the handler would do nothing for the others:
        no job is written, claimed and finished for nothing)."""
        if kind not in self.subscriptions[event_type]:
            self.subscriptions[event_type].append(kind)
        if when is not None:
            self.conditions[(event_type, kind)] = when

    def at_dispatch(self, kind: str, work: DispatchWork) -> None:
        """Do what jobs of the subscribed ``kind`` would do, in the transaction that
        dispatches the events, once per batch (``work``), instead of writing, claiming and
        finishing a job per event. Only for work that writes rows and calls nothing outside
        the database (a webhook fan-out): a failure of ``work`` fails the dispatch, which
        is tried again at the next turn. The kind's handler stays registered for jobs of
        that kind written before."""
        self.dispatch_work[kind] = work

    def on_close(self, closer: Callable[[], None]) -> None:
        """Call ``closer`` when the registry's process stops (e.g. end kept SMTP sessions)."""
        self.closers.append(closer)

    def close(self) -> None:
        """Release what the handlers keep between jobs (:meth:`on_close`)."""
        for closer in self.closers:
            closer()

    def every(self, kind: str, interval: timedelta) -> None:
        """Run a job of ``kind`` once per ``interval`` (e.g. clean-ups)."""
        self.schedules.append(Schedule(kind, interval))

    def kinds_for(self, event_type: str) -> list[str]:
        """The job kinds subscribed to ``event_type``."""
        return [*self.subscriptions.get(event_type, []), *self.subscriptions.get(ALL_EVENTS, [])]

    def jobs_for(self, event_type: str, data: dict[str, Any]) -> list[str]:
        """The job kinds an event ``event_type`` with ``data`` calls for: those subscribed,
        less those whose ``when`` refuses the data."""
        kinds = []
        for pattern in (event_type, ALL_EVENTS):
            for kind in self.subscriptions.get(pattern, []):
                condition = self.conditions.get((pattern, kind))
                if condition is None or condition(data):
                    kinds.append(kind)
        return kinds
