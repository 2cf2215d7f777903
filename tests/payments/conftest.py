"""Fixtures of the payments tests: the Stripe API double (``doubles.stripe_api``) and an
app with the ``stripe`` provider pointed at it, served on loopback so that the double's
webhooks reach it over HTTP while the test's own requests are in flight."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from litestar import Litestar
from pydantic import SecretStr

from doubles.stripe_api import SECRET_KEY, WEBHOOK_SECRET, StripeDouble, running_stripe_api
from emporium.app import create_app
from emporium.core.config import Settings
from factories import API


@pytest.fixture
def stripe_api() -> Iterator[StripeDouble]:
    """A test double of the Stripe API on 127.0.0.1. Point Emporium at it with
    ``stripe_api_base=stripe_api.url``, ``stripe_secret_key=doubles.stripe_api.SECRET_KEY``
    and ``stripe_webhook_secret=doubles.stripe_api.WEBHOOK_SECRET``; its events are held
    until released to ``stripe_api.webhook_url``, or taken signed with
    ``stripe_api.take_signed()`` for an app served in-process."""
    with running_stripe_api() as double:
        yield double


@dataclass
class StripeShop:
    """An app with the stripe provider, served at ``base`` (``http`` talks to it), and the
    Stripe double it pays through, whose ``webhook_url`` is the app's Stripe webhook."""

    app: Litestar
    base: str
    http: httpx.AsyncClient
    stripe: StripeDouble

    @property
    def webhook(self) -> str:
        """The path of the app's Stripe webhook."""
        return f"{API}/payments/webhooks/stripe"


@pytest.fixture
def stripe_settings(settings: Settings, stripe_api: StripeDouble) -> Settings:
    """The test settings with ``stripe`` enabled against the double (and the general rate
    limit off: every request of a race comes from 127.0.0.1)."""
    return settings.model_copy(
        update={
            "payment_providers": ["manual", "test", "stripe"],
            "stripe_secret_key": SecretStr(SECRET_KEY),
            "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET),
            "stripe_publishable_key": "pk_test_emporium_double",
            "stripe_api_base": stripe_api.url,
            "rate_limit_general": "",
        }
    )


@pytest.fixture
async def stripe_shop(
    stripe_settings: Settings, stripe_api: StripeDouble
) -> AsyncIterator[StripeShop]:
    """The app of ``stripe_settings`` served by uvicorn on a free loopback port (its own
    thread and event loop, lifespan run), the double's webhooks pointed at it."""
    app = create_app(stripe_settings)
    with serving(app) as base:
        stripe_api.webhook_url = f"{base}{API}/payments/webhooks/stripe"
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            yield StripeShop(app, base, http, stripe_api)


@contextmanager
def serving(app: Litestar) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port of 127.0.0.1 (its own thread and event
    loop, lifespan run) until the block ends; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive(), "the app did not start"
            assert time.monotonic() < deadline, "the app did not start in time"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
