"""An asyncpg pool that serves its callers in the order they came (first come, first served).

asyncpg's ``Pool`` keeps its free connections in an ``asyncio.Queue``. A connection handed
back wakes the caller that has waited longest, but a caller arriving before that one runs
finds the connection in the queue and takes it; the woken caller finds the queue empty and
queues again, at the back. With more callers than connections (a busy server: 32 requests
in flight per process, 3 connections) some requests lose many turns in a row, which is where
the catalog reads' tail latency came from (``bench/README.md``, issue 18 round 5).

:class:`FairPool` admits callers through an ``asyncio.Semaphore`` with one slot per
connection, which is first come, first served (a newcomer never overtakes a waiter), so a
caller let through always finds a connection free in the pool.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg


class FairPool:
    """The part of ``asyncpg.Pool`` the catalog reads use (:meth:`fetch`, :meth:`fetchval`),
    callers served in arrival order: one slot per connection the pool may open."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self.pool = pool
        self._slots = asyncio.Semaphore(pool.get_max_size())

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """``asyncpg.Pool.fetch``: every row of ``query`` run with ``args``."""
        async with self._slots:
            rows: list[asyncpg.Record] = await self.pool.fetch(query, *args)
            return rows

    async def fetchval(self, query: str, *args: Any) -> Any:
        """``asyncpg.Pool.fetchval``: the first column of the first row (``None``: no row)."""
        async with self._slots:
            return await self.pool.fetchval(query, *args)

    def get_max_size(self) -> int:
        """Connections the pool may open."""
        return int(self.pool.get_max_size())

    def get_size(self) -> int:
        """Connections open now (idle or in use)."""
        return int(self.pool.get_size())

    def get_idle_size(self) -> int:
        """Connections open and idle now."""
        return int(self.pool.get_idle_size())

    async def close(self) -> None:
        """Close the pool's connections (waits for those in use)."""
        await self.pool.close()
