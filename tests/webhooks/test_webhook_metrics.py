"""Webhook deliveries show on ``/metrics`` by result: a 2xx is ``succeeded``, a 500 that
will be retried is ``retrying``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from emporium.app import create_app
from emporium.core.config import Settings
from factories import API, Client, create_category, create_product
from metricsupport import Samples, samples, value
from receiver import running_receiver
from runjobs import drain

METRIC = "emporium_webhook_deliveries_total"


@pytest.fixture
async def open_client(settings: Settings) -> AsyncIterator[Client]:
    """A client of an app that allows private webhook targets (the local receiver)."""
    allowed = settings.model_copy(update={"webhooks_allow_private": True})
    async with AsyncTestClient(app=create_app(allowed)) as client:
        yield client


async def _scrape(client: Client, headers: dict[str, str]) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200
    return samples(response.text)


async def test_deliveries_are_counted_by_result(
    open_client: Client, admin_headers: dict[str, str]
) -> None:
    client = open_client
    with running_receiver() as receiver:
        body = {"url": receiver.url, "events": ["product.created"]}
        created = await client.post(f"{API}/webhooks", json=body, headers=admin_headers)
        assert created.status_code == 201, created.text
        receiver.secret = created.json()["secret"]
        category = await create_category(client, admin_headers)
        before = await _scrape(client, admin_headers)
        await create_product(client, admin_headers, category["id"])
        await drain(client)
        delivered = await _scrape(client, admin_headers)
        receiver.status = 500
        await create_product(client, admin_headers, category["id"])
        await drain(client)
        refused = await _scrape(client, admin_headers)
    assert len(receiver.requests) == 2

    def grew(found: Samples, result: str) -> float:
        return value(found, METRIC, result=result) - value(before, METRIC, result=result)

    assert (grew(delivered, "succeeded"), grew(delivered, "retrying")) == (1, 0)
    assert (grew(refused, "succeeded"), grew(refused, "retrying")) == (1, 1)
    assert grew(refused, "failed") == 0
