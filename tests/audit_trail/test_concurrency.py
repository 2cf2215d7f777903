"""Concurrent writers keep one chain: 20 staff stock adjustments (of 20 variants) sent at once
to two ``emporium serve`` processes (on PostgreSQL, 20 transactions racing for the chain's
head row; nothing else lines them up) leave 20 events numbered without gaps or forks, each
chained to the one before. (A head read without its lock fails this: duplicate numbers.)"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.support import API, Client
from conftest import SignIn
from emporium.audit.chain import verify_chain
from emporium.audit.models import AuditEvent
from emporium.core.config import Settings
from factories import create_category, create_product, variant_body
from servers import server_env, servers

WRITERS = 20


async def test_concurrent_staff_actions_keep_one_unforked_chain(
    client: Client, sign_in: SignIn, session: AsyncSession, settings: Settings, tmp_path: Path
) -> None:
    if settings.is_sqlite:
        pytest.skip("SQLite lets one writer in at a time: there is no race to lose there")
    staff = await sign_in(roles=["staff"])
    category = await create_category(client, staff)
    # One variant per writer: no row but the chain's head is shared, so nothing else lines
    # the transactions up.
    bodies = [variant_body(stock=0) for _ in range(WRITERS)]
    product = await create_product(client, staff, category["id"], variants=bodies)
    variants = [v["id"] for v in product["variants"]]
    base = await session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    await session.rollback()

    env = server_env(settings.database_url, settings.key_file, route_limits=False)
    with servers(2, env, tmp_path) as bases:
        async with httpx.AsyncClient(timeout=60) as http:

            async def adjust(n: int) -> int:
                response = await http.post(
                    f"{bases[n % 2]}{API}/variants/{variants[n]}/stock-adjustments",
                    json={"delta": 1, "reason": f"count {n}"},
                    headers=staff,
                )
                return response.status_code

            statuses = await asyncio.gather(*(adjust(n) for n in range(WRITERS)))
    assert statuses == [201] * WRITERS
    events = list(
        await session.scalars(
            select(AuditEvent).where(AuditEvent.action == "stock.adjusted").order_by(AuditEvent.seq)
        )
    )
    assert len(events) == WRITERS
    first = (base or 0) + 1
    assert [e.seq for e in events] == list(range(first, first + WRITERS))
    for older, newer in itertools.pairwise(events):
        assert newer.prev_hash == older.hash
    assert sorted(str(e.object_id) for e in events) == sorted(variants)
    report = await verify_chain(session)
    assert report.ok, report.problem
    assert report.head_seq == first + WRITERS - 1
