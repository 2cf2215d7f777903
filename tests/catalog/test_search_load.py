"""Searches cannot starve other requests: on SQLite no request holds the event loop for
more than a few milliseconds, and a single search's cost is bounded.

Found by outside testing: on 20,000 products a search for a word in every product
(~100 ms) or an 18-word query (~200 ms) ran on the event loop, so five searching clients
pushed every other request from ~10 ms to ~600 ms. The probe here times each callback the
loop runs in CPU time of the loop's thread (``time.thread_time``), so it measures what held
the loop, not how busy the shared machine is.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from catalog.bigcatalog import WORDS, fill
from conftest import NO_ROUTE_RATE_LIMITS
from emporium.app import create_app
from emporium.catalog.search import MAX_QUERY_WORDS, MAX_RANKED, query_words
from emporium.core.config import Settings
from factories import asgi_transport

pytestmark = pytest.mark.slow
PRODUCTS = 10_000
HELD_MS = 30  # generous: a request's own work on the loop is a few ms
QUERIES = ["emporium", " ".join(WORDS[:18]), "lamp", "emporium oak"]


class LoopProbe:
    """Times every callback the event loop runs (``asyncio.Handle._run``: task steps,
    I/O callbacks) in CPU time of the loop's thread: how long each held the loop."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.held: list[float] = []
        self.active = False
        run = asyncio.events.Handle._run

        def timed(handle: asyncio.events.Handle) -> None:
            started = time.thread_time()
            run(handle)
            if self.active:
                self.held.append(time.thread_time() - started)

        monkeypatch.setattr(asyncio.events.Handle, "_run", timed)


@pytest.fixture(scope="module")
def big_catalog(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Path:
    database = tmp_path_factory.mktemp("big") / "big.db"
    shutil.copy(sqlite_template, database)
    fill(database, PRODUCTS)
    return database


def test_searching_clients_do_not_hold_the_loop(
    big_catalog: Path, key_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five clients searching broad and long queries at once: every answer is right, and
    the event loop is never held longer than ``HELD_MS``."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{big_catalog}",
        key_file=key_file,
        log_level="WARNING",
        jobs_embedded=False,
        mail_dir=tmp_path / "mail",
        **NO_ROUTE_RATE_LIMITS | {"rate_limit_general": ""},
    )
    app = create_app(settings)

    async def drill() -> list[float]:
        transport = asgi_transport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:

            async def searcher(first: int) -> None:
                for n in range(4):
                    q = QUERIES[(first + n) % len(QUERIES)]
                    page = await client.get("/api/v1/products", params={"q": q})
                    assert page.status_code == 200, page.text
                    assert len(page.json()["items"]) == 20, q

            await client.get("/api/v1/products", params={"q": "lamp"})  # warm up
            probe.active = True
            await asyncio.gather(*(searcher(i) for i in range(5)))
            probe.active = False
            return probe.held

    probe = LoopProbe(monkeypatch)

    with TestClient(app=app) as client, client.portal() as portal:
        held = portal.call(drill)
    longest = max(held) * 1000
    assert longest < HELD_MS, f"the loop was held for {longest:.1f} ms"


def test_one_search_buys_a_bounded_amount_of_work() -> None:
    """At most ``MAX_QUERY_WORDS`` words are searched and ``MAX_RANKED`` matches ranked."""
    assert query_words(" ".join(WORDS)) == WORDS[:MAX_QUERY_WORDS]
    assert MAX_QUERY_WORDS <= 8
    assert MAX_RANKED <= 1000
