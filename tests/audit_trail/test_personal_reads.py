"""Every read of another person's personal data by staff, an admin or an API key, through
the routes and callers of the access matrix (``tests/security/test_access_matrix.py``),
writes exactly one audit event naming the fields shown; the person reading their own data
writes none; no audit event holds a personal value."""

from __future__ import annotations

import pytest
from litestar import Litestar
from sqlalchemy import func, select

from emporium.audit.models import AuditEvent
from emporium.core.config import Settings
from factories import API
from security.test_access_matrix import (
    A_OBJECTS,
    ADMIN,
    KEY,
    STAFF,
    A,
    Setup,
    _call,
    _key_headers,
    _matrix,
    _worlds,
)

PERSONAL_READS = {
    ("GET", f"{API}/users"): "user.listed",
    ("GET", f"{API}/users/{{user_id}}"): "user.viewed",
    ("GET", f"{API}/orders"): "order.listed",
    ("GET", f"{API}/orders/{{order_id}}"): "order.personal_data_read",
}
"""The matrix's routes that show another person's personal data, and the action of the one
event each such read writes."""


async def _events(setup: Setup) -> list[AuditEvent]:
    async with setup.sessionmaker() as session:
        return list(await session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


async def _count(setup: Setup) -> int:
    async with setup.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


@pytest.mark.slow
async def test_each_staff_read_of_personal_data_writes_one_event(
    matrix_app: Litestar, settings: Settings
) -> None:
    async with _matrix(matrix_app, settings) as (client, setup):
        world = await (await _worlds(client, setup, A_OBJECTS))()
        for (method, template), action in PERSONAL_READS.items():
            expect = A_OBJECTS.expectations[(method, template)]
            for caller in (STAFF, ADMIN, KEY):
                if caller not in expect.allowed:
                    continue
                if caller == KEY:  # made first: issuing the key is an audit event of its own
                    await _key_headers(client, world, expect.key_scopes(KEY))
                before = await _count(setup)
                call = (method, template, caller)
                assert await _call(client, setup, world, A_OBJECTS, call) == ""
                events = (await _events(setup))[before:]
                assert [e.action for e in events] == [action], (template, caller)
                event = events[0]
                assert event.actor_type == ("api_key" if caller == KEY else "user")
                assert event.details["fields"], (template, caller)
        # A reading her own order and list is not another person's read: no event.
        for template in (f"{API}/orders/{{order_id}}", f"{API}/orders"):
            before = await _count(setup)
            assert await _call(client, setup, world, A_OBJECTS, ("GET", template, A)) == ""
            assert await _count(setup) == before, template
        a_email = world.a_email
        for event in await _events(setup):
            text = repr((event.details, event.object_id, event.actor_id, event.ip))
            assert a_email not in text
            assert a_email.split("@")[0] not in text


@pytest.fixture
def matrix_app(settings: Settings) -> Litestar:
    """The app without rate limits (as in the matrix)."""
    from emporium.app import create_app

    no_limits = {f"rate_limit_{name}": "" for name in settings.rate_limit_policies()}
    return create_app(settings.model_copy(update=no_limits))
