"""Webhooks as an admin and a receiver see them: endpoints with a secret shown once,
signed deliveries verified by the Standard Webhooks library, recorded attempts, retries
with the same webhook id, and no traffic to loopback, link-local or private addresses."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from conftest import SignIn
from emporium.accounts.protect import build_context
from emporium.app import build_registry, create_app
from emporium.core.config import Settings
from emporium.core.crypto.keys import load_key_file
from emporium.core.db.base import create_engine, create_sessionmaker
from emporium.jobs.models import Job
from emporium.jobs.outbox import enqueue
from emporium.jobs.runner import Runner
from emporium.webhooks import sender
from emporium.webhooks.addresses import AddressRefused, Resolver, resolve_target
from emporium.webhooks.delivery import DELIVER, FANOUT, WebhooksContext, fanout_events
from factories import API, Client, create_category, create_product
from receiver import Receiver, running_receiver
from runjobs import drain


def stub_resolver(table: dict[str, list[str]]) -> Resolver:
    """A resolver answering from ``table`` (tests never ask real DNS or leave the machine)."""

    async def resolve(host: str, _port: int) -> list[str]:
        if host not in table:
            raise OSError("unknown host")
        return table[host]

    return resolve


@pytest.fixture
async def open_client(settings: Settings) -> AsyncIterator[Client]:
    """A client of an app that allows private webhook targets (the local receiver)."""
    allowed = settings.model_copy(update={"webhooks_allow_private": True})
    async with AsyncTestClient(app=create_app(allowed)) as client:
        yield client


async def _endpoint(client: Client, headers: dict[str, str], receiver: Receiver) -> str:
    body = {"url": receiver.url, "events": ["user.created", "product.created"]}
    response = await client.post(f"{API}/webhooks", json=body, headers=headers)
    assert response.status_code == 201, response.text
    receiver.secret = response.json()["secret"]
    return str(response.json()["id"])


async def test_endpoints_are_admin_only_and_the_secret_is_shown_once(
    client: Client, admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    """Create, read, change and delete an endpoint; staff may not; unknown events are 422."""
    body = {"url": "https://hooks.example.com/emporium", "events": ["order.created"]}
    staff = await sign_in(roles=["staff"])
    assert (await client.post(f"{API}/webhooks", json=body, headers=staff)).status_code == 403
    created = await client.post(f"{API}/webhooks", json=body, headers=admin_headers)
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["secret"].startswith("whsec_")
    read = await client.get(f"{API}/webhooks/{hook['id']}", headers=admin_headers)
    assert "secret" not in read.json()
    assert hook["secret"] not in (await client.get(f"{API}/webhooks", headers=admin_headers)).text
    patched = await client.patch(
        f"{API}/webhooks/{hook['id']}", json={"is_active": False}, headers=admin_headers
    )
    assert patched.json()["is_active"] is False
    bad = {**body, "events": ["order.shipped_to_mars"]}
    assert (
        await client.post(f"{API}/webhooks", json=bad, headers=admin_headers)
    ).status_code == 422
    gone = await client.delete(f"{API}/webhooks/{hook['id']}", headers=admin_headers)
    assert gone.status_code == 204
    missing = await client.get(f"{API}/webhooks/{hook['id']}", headers=admin_headers)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://[::1]:8080/hook",
        "http://localhost/hook",
        "http://api.localhost/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:127.0.0.1]/hook",
        # Loopback and "this host" spelled as numbers, as inet_aton and getaddrinfo read them.
        "http://2130706433/hook",
        "http://0x7f000001/hook",
        "http://017700000001/hook",
        "http://127.1/hook",
        "http://0177.0.0.1/hook",
        "http://0/hook",
        "http://0x7f.1/hook",
        "http://0x7F.0.0.1:8080/hook",
        "http://127.0.0.1./hook",
        "http://[::ffff:7f00:1]/hook",
        "http://[0:0:0:0:0:ffff:127.0.0.1]/hook",
        "http://[::1%25lo]/hook",
        "http://[::]/hook",
        "http://[2002:7f00:1::]/hook",
        "http://[64:ff9b::127.0.0.1]/hook",
        "http://0xa9.0xfe.0xa9.0xfe/latest/meta-data",
        "http://167772161/hook",
        "ftp://files.example.com/hook",
        "https://user:pass@hooks.example.com/hook",
    ],
)
async def test_private_and_odd_urls_are_refused_at_creation(
    client: Client, admin_headers: dict[str, str], url: str
) -> None:
    """By default a loopback, link-local or private literal, localhost, another scheme or
    credentials in the URL answer 422 ``webhook_url_refused``, whatever the spelling of
    the address; nothing is stored."""
    body = {"url": url, "events": ["order.created"]}
    response = await client.post(f"{API}/webhooks", json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "webhook_url_refused"
    listed = await client.get(f"{API}/webhooks", headers=admin_headers)
    assert url not in listed.text


async def test_a_public_address_in_numeric_spelling_is_accepted(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """Parsing numeric hosts refuses by address, not by spelling: a public address written
    as one number (93.184.216.34) is a valid target."""
    body = {"url": "https://1572395042/hook", "events": ["order.created"]}
    response = await client.post(f"{API}/webhooks", json=body, headers=admin_headers)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.2"],
        ["::1"],
        ["10.0.0.7"],
        ["192.168.1.1"],
        ["172.16.0.1"],
        ["169.254.169.254"],
        ["fe80::1"],
        ["fd00::1"],
        ["100.64.0.1"],
        ["0.0.0.0"],  # noqa: S104
        ["224.0.0.1"],
        ["::ffff:10.0.0.1"],
        ["93.184.216.34", "10.0.0.1"],
    ],
)
async def test_a_name_resolving_to_any_private_address_is_refused(addresses: list[str]) -> None:
    """Checked after resolution: one forbidden address among the answers is enough."""
    resolver = stub_resolver({"hooks.example.com": addresses})
    with pytest.raises(AddressRefused):
        await resolve_target("https://hooks.example.com/x", allow_private=False, resolver=resolver)


async def test_a_public_name_is_pinned_to_its_checked_address() -> None:
    """The delivery connects to the address that was checked, naming the host in Host."""
    resolver = stub_resolver({"hooks.example.com": ["93.184.216.34"]})
    target = await resolve_target(
        "https://hooks.example.com:8443/in?x=1", allow_private=False, resolver=resolver
    )
    assert (target.address, target.host, target.port, target.path) == (
        "93.184.216.34",
        "hooks.example.com",
        8443,
        "/in?x=1",
    )
    assert not ipaddress.ip_address(target.address).is_private


async def test_a_redirect_to_a_private_address_is_refused() -> None:
    """A public endpoint answering 302 to the metadata service: the redirect target is
    checked like the first URL and never requested (an in-memory transport stands in for
    the network: nothing leaves the machine)."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"location": "http://metadata.internal/latest"})

    resolver = stub_resolver(
        {"hooks.example.com": ["93.184.216.34"], "metadata.internal": ["169.254.169.254"]}
    )
    outcome = await sender.send(
        "https://hooks.example.com/in",
        "{}",
        {},
        allow_private=False,
        time_limit=5,
        max_redirects=3,
        resolver=resolver,
        transport=httpx.MockTransport(answer),
    )
    assert outcome.error is not None
    assert outcome.error.startswith("refused")
    assert len(seen) == 1
    assert seen[0].url.host == "93.184.216.34"
    assert seen[0].headers["host"] == "hooks.example.com"


async def test_signed_delivery_recorded_failed_then_retried_by_hand(
    open_client: Client, admin_headers: dict[str, str]
) -> None:
    """A product created by staff reaches the receiver signed (verified with the Standard
    Webhooks library); a 500 is recorded with a next retry; an admin retry sends the same
    webhook id again and succeeds."""
    client = open_client
    with running_receiver() as receiver:
        hook_id = await _endpoint(client, admin_headers, receiver)
        category = await create_category(client, admin_headers)
        product = await create_product(client, admin_headers, category["id"])
        await drain(client)
        (first,) = receiver.requests
        assert first.verified
        assert first.body["type"] == "product.created"
        assert first.body["data"]["product_id"] == product["id"]

        receiver.status = 500
        await client.post(
            f"{API}/auth/register",
            json={
                "email": "hook.reader@example.com",
                "password": "Quartz lantern drifts over 9 fjords",
            },
        )
        await drain(client)
        url = f"{API}/webhooks/{hook_id}/deliveries"
        latest = (await client.get(url, headers=admin_headers)).json()["items"][0]
        assert latest["event_type"] == "user.created"
        assert latest["status"] == "pending"
        assert latest["next_retry_at"] is not None
        assert [a["status_code"] for a in latest["attempts"]] == [500]
        assert latest["attempts"][0]["duration_ms"] >= 0

        receiver.status = 200
        retry = await client.post(f"{url}/{latest['id']}/retry", headers=admin_headers)
        assert retry.status_code == 202, retry.text
        await drain(client)
        ids = receiver.ids()
    assert ids[1] == ids[2] == latest["webhook_id"]
    assert all(r.verified for r in receiver.requests)
    done = (await client.get(url, headers=admin_headers)).json()["items"][0]
    assert done["status"] == "succeeded"
    assert [a["status_code"] for a in done["attempts"]] == [500, 200]


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
async def test_a_delivery_to_loopback_is_refused_by_default(
    client: Client, admin_headers: dict[str, str], settings: Settings, address: str
) -> None:
    """A host name that resolves to 127.0.0.1 or [::1] passes creation (it is a name) but
    every delivery checks the resolved address and refuses it: the receiver listening there
    gets nothing, and the attempt records why."""
    host = "127.0.0.1" if address == "127.0.0.1" else "::1"
    with running_receiver(host) as receiver:
        port = receiver.url.rsplit(":", 1)[1].split("/")[0]
        body = {"url": f"http://hooks.example.com:{port}/hooks", "events": ["user.created"]}
        created = await client.post(f"{API}/webhooks", json=body, headers=admin_headers)
        assert created.status_code == 201, created.text
        await client.post(
            f"{API}/auth/register",
            json={
                "email": "loop.back@example.com",
                "password": "Quartz lantern drifts over 9 fjords",
            },
        )
        ring = load_key_file(settings.key_file)
        webhooks = WebhooksContext(ring, resolver=stub_resolver({"hooks.example.com": [address]}))
        registry = build_registry(settings, build_context(settings, ring), webhooks)
        engine = create_engine(settings)
        await Runner(registry, create_sessionmaker(engine), settings).drain()
        await engine.dispose()
        assert receiver.requests == []
    url = f"{API}/webhooks/{created.json()['id']}/deliveries"
    (delivery,) = (await client.get(url, headers=admin_headers)).json()["items"]
    assert delivery["attempts"][0]["status_code"] is None
    assert delivery["attempts"][0]["error"].startswith("refused")


async def test_a_fanout_job_from_before_delivers_once_and_fanning_out_again_adds_nothing(
    open_client: Client, admin_headers: dict[str, str], settings: Settings
) -> None:
    """Events now fan out when they are dispatched (no ``webhooks.fanout`` job). A fan-out
    job written by an older version still runs and delivers; fanning the same event out
    again (that job retried after a crash) makes no second delivery and no second send."""
    client = open_client
    with running_receiver() as receiver:
        await _endpoint(client, admin_headers, receiver)
        engine = create_engine(settings)
        maker = create_sessionmaker(engine)
        payload = {
            "event_id": "7d1f0f0e-2b1a-4c58-9a55-0f6c7b9f1e01",
            "type": "product.created",
            "data": {"product_id": "from-before"},
            "occurred_at": "2026-12-01T10:00:00+00:00",
        }
        try:
            async with maker() as session, session.begin():
                await enqueue(session, FANOUT, payload, dedupe_key="old-fanout")
            assert await drain(client) == 2  # the fan-out job, then its delivery
            async with maker() as session, session.begin():
                await fanout_events(session, [payload], settings.jobs_max_attempts)
            assert await drain(client) == 0
            async with maker() as session:
                kinds = list(await session.scalars(select(Job.kind).order_by(Job.kind)))
        finally:
            await engine.dispose()
    assert kinds == [DELIVER, FANOUT]
    (got,) = receiver.requests
    assert got.verified
    assert got.body["data"] == {"product_id": "from-before"}
