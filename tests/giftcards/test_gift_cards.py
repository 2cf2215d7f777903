"""Gift cards by staff and by code holders: a card is issued with a code shown once, stored
only as a keyed hash, listed and read with its ledger, disabled; nonsense is refused with
422 and nothing is written; every staff change is in the security log without the code;
the public balance check answers an unknown, a disabled and an expired code identically,
and is rate limited per client address."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, MutableMapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
import structlog
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.testing import capture_logs

from emporium.app import create_app
from emporium.core import security_events
from emporium.core.clock import MovableClock
from emporium.core.config import Settings
from emporium.giftcards.codes import ALPHABET, normalise
from emporium.giftcards.models import GiftCard, GiftCardMovement
from factories import API, Client, assert_problem

Json = dict[str, Any]
CARDS = f"{API}/gift-cards"


@pytest.fixture
def clock() -> MovableClock:
    """The time cards expire by."""
    return MovableClock()


@contextmanager
def security_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[MutableMapping[str, Any]]]:
    """The log lines written meanwhile (the security logger caches its configuration on
    first use, maybe in an earlier test: a fresh one writes to the capture)."""
    with capture_logs() as logs:
        monkeypatch.setattr(security_events, "log", structlog.get_logger("emporium.security"))
        yield logs


async def issue(client: Client, staff: dict[str, str], **body: Any) -> Json:
    """A card issued by staff (``initial_balance`` 5000 USD unless told)."""
    made = await client.post(
        CARDS, json={"initial_balance": 5000, "currency": "USD", **body}, headers=staff
    )
    assert made.status_code == 201, made.text
    card: Json = made.json()
    return card


async def test_a_card_is_issued_with_a_code_shown_once_and_read_with_its_ledger(
    client: Client, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with security_logs(monkeypatch) as logs:
        card = await issue(client, admin_headers, note="For Ada Lovelace, thank you")
    code = card["code"]
    groups = code.split("-")
    assert [len(g) for g in groups] == [4, 4, 4, 4]
    assert set("".join(groups)) <= set(ALPHABET)
    assert card["last4"] == groups[-1]
    assert (card["balance"], card["initial_balance"], card["status"]) == (5000, 5000, "active")
    assert card["note"] == "For Ada Lovelace, thank you"
    assert [(e["event"], e["action"]) for e in logs if e.get("security_event")] == [
        ("authz_admin", "gift_card.created")
    ]
    assert code not in repr(logs)
    assert code.replace("-", "") not in repr(logs)

    read = await client.get(f"{CARDS}/{card['id']}", headers=admin_headers)
    assert read.status_code == 200, read.text
    body = read.json()
    assert "code" not in body
    assert [(m["kind"], m["amount"], m["balance_after"]) for m in body["movements"]] == [
        ("issued", 5000, 5000)
    ]
    listed = await client.get(CARDS, headers=admin_headers)
    assert [c["id"] for c in listed.json()["items"]] == [card["id"]]
    assert "code" not in listed.json()["items"][0]


async def test_the_code_is_stored_only_as_a_keyed_hash_and_the_note_sealed(
    client: Client, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    card = await issue(client, admin_headers, note="Gift for Grace Hopper")
    code = card["code"].replace("-", "")
    row = (await session.execute(text("SELECT * FROM gift_card"))).one()._mapping
    stored = " ".join(str(v) for v in row.values())
    assert code not in stored
    assert card["code"] not in stored
    assert "Grace" not in stored
    assert len(row["code_index"]) == 64


async def test_codes_are_typed_loosely(client: Client, admin_headers: dict[str, str]) -> None:
    """Case, spaces, hyphens and the look-alikes O/0 and I/L/1 do not matter."""
    card = await issue(client, admin_headers)
    code = card["code"].replace("-", "")
    loose = " ".join(code[i : i + 2] for i in range(0, 16, 2)).lower()
    loose = loose.replace("0", "o").replace("1", "l")
    assert normalise(loose) == code
    answer = await client.post(f"{CARDS}/balance", json={"code": loose})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"balance": 5000, "currency": "USD", "expires_at": None}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"initial_balance": 0, "currency": "USD"}, "initial_balance"),
        ({"initial_balance": -100, "currency": "USD"}, "initial_balance"),
        ({"initial_balance": 10.5, "currency": "USD"}, "initial_balance"),
        ({"initial_balance": 100, "currency": "usd"}, "currency"),
        ({"initial_balance": 100, "currency": "XQQ"}, "currency"),
        ({"initial_balance": 100, "currency": "USD", "expires_at": "2001-01-01T00:00:00Z"}, ""),
        ({"initial_balance": 100, "currency": "USD", "expires_at": "2999-01-01T00:00:00"}, ""),
        ({"initial_balance": 100, "currency": "USD", "balance": 1}, ""),
    ],
)
async def test_nonsense_is_refused_and_nothing_is_written(
    client: Client,
    admin_headers: dict[str, str],
    session: AsyncSession,
    body: Json,
    field: str,
) -> None:
    answer = await client.post(CARDS, json=body, headers=admin_headers)
    problem = assert_problem(answer, 422)
    assert field in str(problem.get("errors", problem))
    assert await session.scalar(select(func.count()).select_from(GiftCard)) == 0
    assert await session.scalar(select(func.count()).select_from(GiftCardMovement)) == 0


async def test_cards_are_staff_only(
    client: Client, admin_headers: dict[str, str], sign_in: Any
) -> None:
    card = await issue(client, admin_headers)
    customer = await sign_in()
    staff_without_mfa = await sign_in(roles=["staff"], mfa=False)
    for headers, status in ((customer, 403), (staff_without_mfa, 403), ({}, 401)):
        for method, path in (
            ("GET", CARDS),
            ("GET", f"{CARDS}/{card['id']}"),
            ("POST", f"{CARDS}/{card['id']}/disable"),
        ):
            assert_problem(await client.request(method, path, headers=headers), status)
        made = await client.post(
            CARDS, json={"initial_balance": 1, "currency": "USD"}, headers=headers
        )
        assert_problem(made, status)
    missing = await client.get(
        f"{CARDS}/00000000-0000-4000-8000-000000000000", headers=admin_headers
    )
    assert_problem(missing, 404, "gift_card_not_found")


async def test_unknown_disabled_and_expired_codes_get_the_same_answer(
    client: Client,
    admin_headers: dict[str, str],
    clock: MovableClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    soon = (clock.now() + timedelta(minutes=1)).isoformat()
    disabled = await issue(client, admin_headers)
    expiring = await issue(client, admin_headers, expires_at=soon)
    live = await client.post(f"{CARDS}/balance", json={"code": expiring["code"]})
    assert live.status_code == 200
    assert datetime.fromisoformat(live.json()["expires_at"]) == datetime.fromisoformat(soon)

    with security_logs(monkeypatch) as logs:
        off = await client.post(f"{CARDS}/{disabled['id']}/disable", headers=admin_headers)
        again = await client.post(f"{CARDS}/{disabled['id']}/disable", headers=admin_headers)
    assert off.status_code == again.status_code == 200
    assert off.json()["status"] == "disabled"
    assert [e.get("action") for e in logs if e.get("security_event")] == ["gift_card.disabled"]
    clock.advance(timedelta(minutes=2))
    read = await client.get(f"{CARDS}/{expiring['id']}", headers=admin_headers)
    assert read.json()["status"] == "expired"

    unknown = "ZZZZ-ZZZZ-ZZZZ-ZZZZ"
    with security_logs(monkeypatch) as logs:
        answers = [
            await client.post(f"{CARDS}/balance", json={"code": code})
            for code in (unknown, disabled["code"], expiring["code"], "not a code")
        ]
    bodies = [assert_problem(a, 404, "gift_card_not_found") for a in answers]
    assert all(b == bodies[0] for b in bodies), bodies
    assert len({a.headers["content-length"] for a in answers}) == 1
    fails = [e for e in logs if e.get("event") == "input_validation_fail"]
    assert len(fails) == 4
    assert disabled["code"] not in repr(logs)
    assert expiring["code"] not in repr(logs)


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[Client]:
    """An app with the balance check limited to 3 a minute (the test default turns limits
    off)."""
    app: Litestar = create_app(
        settings.model_copy(update={"rate_limit_gift_card_balance": "3/minute"})
    )
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


async def test_the_balance_check_is_rate_limited_per_address(
    limited: Client, admin_headers: dict[str, str]
) -> None:
    card = await issue(limited, admin_headers)
    answers = [
        await limited.post(f"{CARDS}/balance", json={"code": code})
        for code in ("AAAA-AAAA-AAAA-AAAA", "BBBB-BBBB-BBBB-BBBB", card["code"], card["code"])
    ]
    assert [a.status_code for a in answers] == [404, 404, 200, 429]
    assert_problem(answers[-1], 429, "rate_limited")
    assert int(answers[-1].headers["retry-after"]) > 0
    assert answers[0].headers["ratelimit-limit"] == "3"


async def test_cards_are_listed_newest_first_page_by_page(
    client: Client, admin_headers: dict[str, str]
) -> None:
    made = [(await issue(client, admin_headers, initial_balance=100 + n))["id"] for n in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await client.get(CARDS, params=params, headers=admin_headers)
        assert page.status_code == 200, page.text
        seen += [c["id"] for c in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == made[::-1]
    bad = await client.get(CARDS, params={"cursor": "nonsense"}, headers=admin_headers)
    assert_problem(bad, 422)
