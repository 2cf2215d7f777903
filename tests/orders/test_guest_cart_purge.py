"""Abandoned guest carts are purged by the hourly job after ``EMPORIUM_GUEST_CART_DAYS``
without a change, their lines with them; carts changed since, younger carts and customers'
carts stay. Time moves through the clock seam, never by sleeping."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import SignIn
from emporium.core.config import Settings
from emporium.jobs import runner
from emporium.orders import cart_purge, carts
from emporium.orders.models import CartItem
from factories import API, Client
from orders.support import stocked_variants
from runjobs import run_schedules

DAYS = 10
Json = dict[str, Any]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test settings with guest carts kept ``DAYS`` days (not the default 30)."""
    return settings.model_copy(update={"guest_cart_days": DAYS})


class Clock:
    """The time carts, the purge and the runner's schedules see: now plus an offset the
    test moves."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = timedelta()
        for module in (carts, cart_purge, runner):
            monkeypatch.setattr(module, "utcnow", self.now)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


async def _guest_cart(client: Client, variant: str) -> tuple[str, dict[str, str]]:
    body = {"items": [{"variant_id": variant, "quantity": 1}]}
    created = await client.post(f"{API}/carts", json=body)
    assert created.status_code == 201, created.text
    return f"{API}/carts/{created.json()['id']}", {"Cart-Token": created.json()["token"]}


async def _lines(session: AsyncSession, url: str) -> int:
    cart_id = uuid.UUID(url.rsplit("/", 1)[1])
    count = await session.scalar(
        select(func.count()).select_from(CartItem).where(CartItem.cart_id == cart_id)
    )
    await session.rollback()
    return int(count or 0)


async def test_the_hourly_job_purges_guest_carts_unchanged_for_the_set_days(
    client: Client,
    admin_headers: dict[str, str],
    sign_in: SignIn,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch)
    (variant,) = await stocked_variants(client, admin_headers, 50)
    abandoned, abandoned_token = await _guest_cart(client, variant["id"])
    revisited, revisited_token = await _guest_cart(client, variant["id"])
    customer = await sign_in()
    two = {"items": [{"variant_id": variant["id"], "quantity": 2}]}
    mine = await client.post(f"{API}/carts", json=two, headers=customer)
    assert mine.status_code == 201, mine.text
    clock.offset = timedelta(days=2)
    younger, younger_token = await _guest_cart(client, variant["id"])

    clock.offset = timedelta(days=DAYS, minutes=1)
    email = {"email": "back@example.com"}
    touched = await client.patch(revisited, json=email, headers=revisited_token)
    assert touched.status_code == 200, touched.text
    assert await _lines(session, abandoned) == 1
    assert (await client.get(abandoned, headers=abandoned_token)).status_code == 200

    assert await run_schedules(client) >= 1
    gone = await client.get(abandoned, headers=abandoned_token)
    assert gone.status_code == 404
    assert gone.json()["code"] == "cart_not_found"
    assert await _lines(session, abandoned) == 0
    for url, token in ((revisited, revisited_token), (younger, younger_token)):
        kept = await client.get(url, headers=token)
        assert kept.status_code == 200, kept.text
        assert len(kept.json()["items"]) == 1

    clock.offset = timedelta(days=10 * DAYS)  # every cart long unchanged now
    assert await run_schedules(client) >= 1  # a later hour: the schedule runs again
    assert (await client.get(revisited, headers=revisited_token)).status_code == 404
    assert (await client.get(younger, headers=younger_token)).status_code == 404
    own = await client.get(f"{API}/carts/{mine.json()['id']}", headers=customer)
    assert own.status_code == 200, own.text
    assert [line["quantity"] for line in own.json()["items"]] == [2]
