"""The change feed: tell every server process which rows a committed transaction changed.

A write records ``(topic, key)`` pairs on its session (:func:`record_change`). The unit of
work then, inside the transaction, sends them with PostgreSQL's ``pg_notify`` (delivered to
every listening process if and only if the transaction commits), and after the commit
delivers them to this process's subscribers at once, so a process reads its own writes.
Each process keeps one listening connection (:meth:`ChangeFeed.run`); when it is lost the
feed tells subscribers to forget everything (``topic="*"``), since notifications may have
been missed. SQLite has no notifications: other processes rely on their caches' TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import asyncpg
import msgspec
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

CHANNEL = "emporium_changes"
MAX_KEYS_PER_NOTICE = 100  # NOTIFY payloads are capped at 8000 bytes; more means "everything"
ALL = "*"

Changes = dict[str, set[str]]
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")
Subscriber = Callable[[str, set[str]], None]
log = structlog.get_logger("emporium.changes")


def record_change(session: AsyncSession | Session, topic: str, key: object) -> None:
    """Note that the row ``key`` of ``topic`` changes in ``session``'s transaction (an ORM
    hook passes the synchronous session behind an ``AsyncSession``; both share ``info``)."""
    changes: Changes = session.info.setdefault("changes", defaultdict(set))
    changes[topic].add(str(key))


def _payloads(changes: Changes) -> Iterable[bytes]:
    for topic, keys in changes.items():
        if len(keys) > MAX_KEYS_PER_NOTICE:
            yield msgspec.json.encode([topic, [ALL]])
        else:
            yield msgspec.json.encode([topic, sorted(keys)])


class ChangeFeed:
    """Delivers committed changes to this process's subscribers (caches)."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call ``subscriber(topic, keys)`` for every committed change; ``keys`` may be
        ``{"*"}`` (everything of that topic) and ``topic`` may be ``"*"`` (everything)."""
        self._subscribers.append(subscriber)

    def deliver(self, changes: Changes) -> None:
        """Hand ``changes`` to every subscriber."""
        for topic, keys in changes.items():
            for subscriber in self._subscribers:
                subscriber(topic, set(keys))

    async def before_commit(self, session: AsyncSession) -> Changes:
        """Send the session's changes with ``pg_notify`` inside its transaction (PostgreSQL
        only) and return them; call :meth:`deliver` after the commit succeeded."""
        changes = session.info.pop("changes", {})
        if changes and session.get_bind().dialect.name == "postgresql":
            for payload in _payloads(changes):
                await session.execute(_NOTIFY, {"channel": CHANNEL, "payload": payload.decode()})
        return dict(changes)

    def _on_notice(self, *args: Any) -> None:
        payload = args[-1]
        try:
            topic, keys = msgspec.json.decode(payload)
            self.deliver({str(topic): {str(k) for k in keys}})
        except (msgspec.DecodeError, ValueError, TypeError):
            log.warning("change_feed_bad_payload")

    async def run(self, dsn: str, *, retry_seconds: float = 1.0) -> None:
        """Listen on PostgreSQL until cancelled, reconnecting after failures; after any
        disconnection subscribers are told to forget everything."""
        failures = 0  # in a row: an outage is logged once, not at every retry
        while True:
            try:
                await self._listen_until_lost(dsn)
                failures = 0
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                if not failures:
                    log.warning("change_feed_unavailable")
                failures += 1
            self.deliver({ALL: {ALL}})
            await asyncio.sleep(retry_seconds)

    async def _listen_until_lost(self, dsn: str) -> None:
        lost = asyncio.Event()
        connection = await asyncpg.connect(dsn)
        try:
            connection.add_termination_listener(lambda _conn: lost.set())
            await connection.add_listener(CHANNEL, self._on_notice)
            self.deliver({ALL: {ALL}})  # anything before now may have been missed
            await lost.wait()
            log.warning("change_feed_lost")
        finally:
            with contextlib.suppress(Exception):
                await connection.close(timeout=2)
