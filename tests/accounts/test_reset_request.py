"""A password-reset request must not tell whether an account exists, neither by its answer
nor by its time: the request runs the very same SQL for a real account and for an unknown
address (counted statement by statement), and the medians of interleaved requests match;
the link goes out afterwards, from a job, to the real account only."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from accounts.support import API, Client, new_email, register
from emporium.accounts.models import AccountToken
from emporium.core.resources import resources_of
from runjobs import drain

FORGOT = f"{API}/auth/password/forgot"


@contextmanager
def _statements(client: Client) -> Iterator[list[str]]:
    """Every SQL statement the app sends while inside, on its write and read engines, with
    literal values and placeholders normalised away."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(re.sub(r"\s+", " ", re.sub(r"\$\d+|\?", "?", statement)).strip())

    state = resources_of(client.app.state)
    engines = {
        e.sync_engine if isinstance(e, AsyncEngine) else e
        for e in (state.engine, state.read_engine)
    }
    for engine in engines:
        assert isinstance(engine, Engine)
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


async def test_a_known_and_an_unknown_address_run_the_same_statements(
    client: Client, session: AsyncSession
) -> None:
    """The same statements, in the same order, for a real account and for an address
    nobody registered (202 and the same body for both); after the jobs ran, exactly one
    reset token exists, the real account's."""
    address = new_email("real")
    profile = await register(client, address)
    await drain(client)
    with _statements(client) as known:
        answer_known = await client.post(FORGOT, json={"email": address})
    with _statements(client) as unknown:
        answer_unknown = await client.post(FORGOT, json={"email": new_email("nobody")})
    assert answer_known.status_code == answer_unknown.status_code == 202
    assert answer_known.content == answer_unknown.content
    assert known, "the request ran no SQL at all: the counter saw nothing"
    assert known == unknown

    await drain(client)
    tokens = await session.execute(
        select(AccountToken.user_id, func.count())
        .where(AccountToken.purpose == "password_reset")
        .group_by(AccountToken.user_id)
    )
    assert [(str(user_id), count) for user_id, count in tokens] == [(profile["id"], 1)]


async def test_known_and_unknown_addresses_take_the_same_time(client: Client) -> None:
    """30 requests each, interleaved: the medians are within a factor 1.5 of each other
    (before the fix a real account took about twice as long)."""
    address = new_email("timed")
    await register(client, address)
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    for _ in range(30):
        for kind, email in (("known", address), ("unknown", new_email("ghost"))):
            started = time.perf_counter()
            response = await client.post(FORGOT, json={"email": email})
            timings[kind].append(time.perf_counter() - started)
            assert response.status_code == 202, response.text
    known, unknown = (statistics.median(timings[k]) for k in ("known", "unknown"))
    assert max(known, unknown) / min(known, unknown) < 1.5, (known, unknown)
