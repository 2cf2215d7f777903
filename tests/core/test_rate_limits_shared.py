"""Rate-limit counters live in Redis when it is configured: two server processes count the
same attempts, so adding nodes does not multiply an attacker's budget."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import httpx
import pytest

from core.conftest import Serve
from servers import server_env, upgrade_database
from servers import servers as _servers

REDIS_URL = os.environ.get("EMPORIUM_TEST_REDIS_URL")


@pytest.mark.skipif(not REDIS_URL, reason="EMPORIUM_TEST_REDIS_URL is not set: Redis skipped")
@pytest.mark.slow
def test_two_nodes_share_the_login_budget_of_an_account(key_file: Path, tmp_path: Path) -> None:
    """Three guesses at one account are allowed in all, whichever node they reach."""
    env = server_env(
        f"sqlite+aiosqlite:///{tmp_path / 'emporium.db'}",
        key_file,
        redis_url=str(REDIS_URL),
        rate_limit_login_account="3/minute",
        rate_limit_login="1000/minute",
        rate_limit_general="",
    )
    upgrade_database(env, tmp_path)
    guess = {"email": f"shared.{uuid.uuid4().hex}@example.com", "password": "wrong guess"}
    with _servers(2, env, tmp_path) as (one, two):
        statuses = [
            httpx.post(f"{base}/api/v1/auth/login", json=guess).status_code
            for base in (one, two, one, two, one)
        ]
        assert statuses == [401, 401, 401, 429, 429]
        refused = httpx.post(f"{two}/api/v1/auth/login", json=guess)
        assert refused.headers["ratelimit-limit"] == "3"
        assert int(refused.headers["retry-after"]) > 0


async def test_an_unreachable_counter_store_does_not_take_the_shop_down(serve: Serve) -> None:
    """With Redis down, requests are answered (not 500), limits count per process, and
    readiness stays 200 while saying so (tests/core/test_redis_outage.py drills the rest)."""
    async with serve(redis_url="redis://127.0.0.1:1/0", rate_limit_login="1/minute") as peer:
        client = peer("198.51.100.8")
        statuses = [
            (
                await client.post(
                    "/api/v1/auth/login", json={"email": "a@example.com", "password": "x" * 12}
                )
            ).status_code
            for _ in range(2)
        ]
        assert statuses == [401, 429]
        assert (await client.get("/api/v1/products")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["rate_limits"] == "per_process"
