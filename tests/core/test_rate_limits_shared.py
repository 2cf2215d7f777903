"""Rate-limit counters live in Redis when it is configured: two server processes count the
same attempts, so adding nodes does not multiply an attacker's budget."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from accounts.test_two_nodes import EMPORIUM, _servers
from core.conftest import Serve

REDIS_URL = os.environ.get("EMPORIUM_TEST_REDIS_URL")


@pytest.mark.skipif(not REDIS_URL, reason="EMPORIUM_TEST_REDIS_URL is not set: Redis skipped")
def test_two_nodes_share_the_login_budget_of_an_account(key_file: Path, tmp_path: Path) -> None:
    """Three guesses at one account are allowed in all, whichever node they reach."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPORIUM_")}
    env |= {
        "EMPORIUM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'emporium.db'}",
        "EMPORIUM_KEY_FILE": str(key_file),
        "EMPORIUM_LOG_LEVEL": "WARNING",
        "EMPORIUM_REDIS_URL": str(REDIS_URL),
        "EMPORIUM_RATE_LIMIT_LOGIN_ACCOUNT": "3/minute",
        "EMPORIUM_RATE_LIMIT_LOGIN": "1000/minute",
        "EMPORIUM_RATE_LIMIT_GENERAL": "",
    }
    upgrade = subprocess.run(
        [EMPORIUM, "db", "upgrade"], env=env, cwd=tmp_path, capture_output=True, check=False
    )
    assert upgrade.returncode == 0, upgrade.stderr.decode(errors="replace")
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
    """With Redis down, requests are answered (not 500) and readiness reports it."""
    async with serve(redis_url="redis://127.0.0.1:1/0", rate_limit_login="1/minute") as peer:
        client = peer("198.51.100.8")
        for _ in range(2):
            response = await client.post(
                "/api/v1/auth/login", json={"email": "a@example.com", "password": "x" * 12}
            )
            assert response.status_code == 401
        assert (await client.get("/api/v1/products")).status_code == 200
        assert (await client.get("/readyz")).status_code == 503
