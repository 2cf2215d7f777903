"""Personal data: the export a user can download, erasure on request, and encryption at
rest, checked on the bytes a thief of the database file or of a dump would hold."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from litestar.enums import ScopeType
from litestar.testing import AsyncTestClient
from litestar.types import Receive, Scope, Send
from sqlalchemy import func, make_url, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.support import (
    API,
    OTHER_PASSWORD,
    PASSWORD,
    Client,
    Json,
    assert_problem,
    enable_mfa,
    login,
    register,
    sign_up,
)
from emporium.accounts.models import Address, AuthSession, RecoveryCode, UserAccount
from emporium.accounts.protect import Vault
from emporium.app import create_app
from emporium.core.config import Settings
from emporium.core.crypto.keys import load_key_file
from emporium.core.crypto.sealing import DecryptionError
from emporium.orders import idempotency
from emporium.orders.models import IdempotencyKey
from factories import create_category, create_product, variant_body
from payments.support import pay_in_full
from runjobs import drain

CLIENT_IP = "198.51.100.23"
"""The address the clients of this module connect from (TEST-NET-2, RFC 5737)."""

ADDRESS: Json = {
    "name": "Quentin Zabriskie",
    "line1": "742 Evergreen Terrace",
    "line2": "Apartment 5B",
    "city": "Springfield",
    "postal_code": "49007",
    "country": "US",
    "phone": "+1 (939) 555-0142",
}


@pytest.fixture
async def ip_client(settings: Settings) -> AsyncIterator[Client]:
    """A client of a fresh app whose requests come from ``CLIENT_IP``."""
    app = create_app(settings)
    inner = app.asgi_handler

    async def from_ip(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            scope["client"] = (CLIENT_IP, 51515)
        await inner(scope, receive, send)

    app.asgi_handler = from_ip
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


def _variants(value: str) -> set[str]:
    return {value, value.lower(), value.upper(), value.casefold(), value.title()}


async def _stored_bytes(settings: Settings) -> bytes:
    """What a thief of the database gets: the SQLite file and its WAL, or a pg_dump."""
    path = settings.sqlite_path()
    if path is not None:
        files = sorted(path.parent.glob(path.name + "*"))
        assert path in files
        return b"".join(f.read_bytes() for f in files)
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        pytest.skip("pg_dump is not on PATH: the dump of the PostgreSQL database is not checked")
    url = make_url(settings.database_url).set(drivername="postgresql")
    done = await asyncio.to_thread(
        subprocess.run,
        [pg_dump, "--no-owner", url.render_as_string(hide_password=False)],
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def _assert_absent(data: bytes, secrets: dict[str, str]) -> None:
    """No spelling of any secret in ``data``: UTF-8, UTF-16, or the hex pg_dump writes for a
    ``bytea`` value."""
    found = []
    for name, value in secrets.items():
        for variant in _variants(value):
            spellings = {
                "utf-8": variant.encode(),
                "utf-16-le": variant.encode("utf-16-le"),
                "bytea hex": variant.encode().hex().encode(),
            }
            found += [(name, variant, how) for how, raw in spellings.items() if raw in data]
    assert found == [], found


def _vault(settings: Settings) -> Vault:
    return Vault(load_key_file(settings.key_file))


async def test_personal_data_is_encrypted_at_rest(
    ip_client: Client, settings: Settings, session: AsyncSession
) -> None:
    """The e-mail, names, phone, street and sign-in IP address of a customer appear nowhere
    in clear text in the database file (SQLite, with its WAL) or in a pg_dump."""
    marker = uuid.uuid4().hex[:8]
    email = f"Quentin.Zabriskie.{marker}@Quokka-Mail.example"
    phone = "+31 (6) 8123-4567"
    account = await sign_up(
        ip_client, email, first_name="Quentin", last_name=f"Zabriskie{marker}", phone=phone
    )
    response = await ip_client.post(
        f"{API}/users/me/addresses", json=ADDRESS, headers=account.headers
    )
    assert response.status_code == 201
    await ip_client.post(f"{API}/auth/refresh", json={"refresh_token": account.refresh_token})
    profile = (await ip_client.get(f"{API}/users/me", headers=account.headers)).json()
    assert (profile["email"], profile["phone"]) == (email, phone)

    stored = await _stored_bytes(settings)
    vault = _vault(settings)
    assert vault.email_index(email).encode() in stored, "not the database the app wrote to"
    assert account.refresh_token.encode() not in stored
    assert account.access_token.encode() not in stored
    _assert_absent(
        stored,
        {
            "e-mail": email,
            "e-mail local part": email.split("@")[0],
            "phone": phone,
            "phone digits": "3168123456",
            "last name": f"Zabriskie{marker}",
            "street": ADDRESS["line1"],
            "address line 2": ADDRESS["line2"],
            "address phone": ADDRESS["phone"],
            "sign-in IP": CLIENT_IP,
            "password": PASSWORD,
        },
    )

    stored_ip = await session.scalar(
        select(AuthSession.ip_enc).where(AuthSession.user_id == uuid.UUID(account.id))
    )
    await session.rollback()
    assert stored_ip is not None, "the sign-in IP address is not recorded at all"


async def test_ciphertext_moved_to_another_row_does_not_decrypt(
    client: Client, settings: Settings, session: AsyncSession, admin_headers: dict[str, str]
) -> None:
    """Someone with write access to the database copies Alice's encrypted e-mail onto
    Mallory's row: reading Mallory's profile fails safely (a problem answer without Alice's
    e-mail), never shows Alice's e-mail; Alice is unaffected."""
    alice = await sign_up(client, phone="+1 202 555 0111")
    mallory = await sign_up(client)
    alice_row = await session.get(UserAccount, uuid.UUID(alice.id))
    assert alice_row is not None
    await session.execute(
        update(UserAccount)
        .where(UserAccount.id == uuid.UUID(mallory.id))
        .values(email_enc=alice_row.email_enc, phone_enc=alice_row.phone_enc)
    )
    await session.commit()

    for path, headers in (
        ("/users/me", mallory.headers),
        ("/users/me/export", mallory.headers),
        (f"/users/{mallory.id}?reveal=true", admin_headers),
        ("/users?limit=100", admin_headers),
    ):
        response = await client.get(f"{API}{path}", headers=headers)
        assert response.status_code >= 400, (path, response.text)
        assert_problem(response, response.status_code)
        assert alice.email not in response.text, path
        assert "202 555 0111" not in response.text, path
        assert "Traceback" not in response.text
        if response.status_code == 500:
            assert response.json()["request_id"]
    response = await client.get(f"{API}/users/me", headers=alice.headers)
    assert response.status_code == 200
    assert response.json()["email"] == alice.email


async def test_export_holds_everything_about_the_caller(client: Client) -> None:
    """The export contains the profile, every address and every live session of the caller,
    and nothing about anybody else."""
    alice = await sign_up(client, first_name="Alice", phone="+1 202 555 0123")
    await login(client, alice.email)
    bob = await sign_up(client, first_name="Bob")
    await client.post(f"{API}/users/me/addresses", json=ADDRESS, headers=alice.headers)
    await client.post(
        f"{API}/users/me/addresses", json={**ADDRESS, "line1": "1 Bob Street"}, headers=bob.headers
    )
    response = await client.get(f"{API}/users/me/export", headers=alice.headers)
    assert response.status_code == 200
    assert "no-store" in response.headers["cache-control"]
    export = response.json()
    assert {"profile", "addresses", "sessions"} <= set(export)
    profile = (await client.get(f"{API}/users/me", headers=alice.headers)).json()
    assert export["profile"] == profile
    assert [{k: a[k] for k in ADDRESS} for a in export["addresses"]] == [ADDRESS]
    assert len(export["sessions"]) == 2
    assert [s["current"] for s in export["sessions"]].count(True) == 1
    assert "Bob" not in response.text
    assert bob.email not in response.text
    assert PASSWORD not in response.text


async def test_export_includes_the_sign_in_ip(ip_client: Client) -> None:
    """The IP address stored with each session is personal data held on the caller, so the
    export (every piece of personal data, API.md) shows it."""
    account = await sign_up(ip_client)
    response = await ip_client.get(f"{API}/users/me/export", headers=account.headers)
    assert response.status_code == 200
    assert CLIENT_IP in response.text, response.json()["sessions"]


async def _decrypted_rows(settings: Settings, session: AsyncSession) -> list[tuple[str, Any]]:
    """Every protected value in the account tables, decrypted with the deployment's keys."""
    vault = _vault(settings)
    values: list[tuple[str, Any]] = []
    for user in await session.scalars(select(UserAccount)):
        for column in ("email", "first_name", "last_name", "phone"):
            token = getattr(user, f"{column}_enc")
            values.append((f"user {column}", vault.open("user_account", column, user.id, token)))
    for address in await session.scalars(select(Address)):
        values.append(("address", vault.open("address", "data", address.id, address.data_enc)))
    await session.rollback()
    return values


async def test_erasure_removes_personal_data(
    client: Client, settings: Settings, session: AsyncSession
) -> None:
    """DELETE /users/me needs the password (401 otherwise, nothing erased); then the user
    is signed out everywhere, cannot sign in, the e-mail is free for someone else, and not
    even the deployment's keys recover the old e-mail, names, phone or address."""
    marker = uuid.uuid4().hex[:8]
    email = f"erase.me.{marker}@example.org"
    phone = "+44 7700 900461"
    account = await sign_up(
        client, email, first_name="Ingrid", last_name=f"Erasmus{marker}", phone=phone
    )
    mfa = await enable_mfa(client, account.headers)
    challenge = await login(client, email)
    response = await client.post(
        f"{API}/auth/login/mfa",
        json={"mfa_token": challenge["mfa_token"], "code": mfa.recovery_codes[0]},
    )
    assert response.status_code == 200, response.text
    other_device = response.json()
    response = await client.post(f"{API}/users/me/addresses", json=ADDRESS, headers=account.headers)
    assert response.status_code == 201
    export_before = (await client.get(f"{API}/users/me/export", headers=account.headers)).json()

    for wrong in ({"password": "Not my password at all 1"}, {"password": ""}):
        response = await client.request(
            "DELETE", f"{API}/users/me", json=wrong, headers=account.headers
        )
        assert response.status_code in (401, 422), response.text
        assert_problem(response, response.status_code)
    response = await client.request(
        "DELETE",
        f"{API}/users/me",
        json={"password": "Not my password at all 1"},
        headers=account.headers,
    )
    assert_problem(response, 401, "invalid_credentials")
    export_after = (await client.get(f"{API}/users/me/export", headers=account.headers)).json()
    assert export_after["profile"] == export_before["profile"]
    assert export_after["addresses"] == export_before["addresses"]
    assert len(export_after["sessions"]) == 2

    response = await client.request(
        "DELETE", f"{API}/users/me", json={"password": PASSWORD}, headers=account.headers
    )
    assert response.status_code == 204, response.text
    for token in (account.access_token, other_device["access_token"]):
        response = await client.get(f"{API}/users/me", headers={"Authorization": f"Bearer {token}"})
        assert_problem(response, 401)
    for token in (account.refresh_token, other_device["refresh_token"]):
        response = await client.post(f"{API}/auth/refresh", json={"refresh_token": token})
        assert_problem(response, 401)
    response = await client.post(f"{API}/auth/login", json={"email": email, "password": PASSWORD})
    assert_problem(response, 401, "invalid_credentials")

    newcomer = await register(client, email, OTHER_PASSWORD)
    assert newcomer["id"] != account.id
    assert (newcomer["first_name"], newcomer["phone"]) == (None, None)
    pair = await login(client, email, OTHER_PASSWORD)
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    assert (await client.get(f"{API}/users/me/addresses", headers=headers)).json() == []

    vault = _vault(settings)
    holders = await session.scalars(
        select(UserAccount.id).where(UserAccount.email_index == vault.email_index(email))
    )
    assert [str(i) for i in holders] == [newcomer["id"]]
    await session.rollback()
    old_row = await session.get(UserAccount, uuid.UUID(account.id))
    assert old_row is not None
    assert old_row.password_hash is None
    assert old_row.is_active is False
    assert (old_row.totp_secret_enc, old_row.mfa_enabled) == (None, False)
    codes = await session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == old_row.id))
    assert codes.all() == []
    await session.rollback()

    leftovers = []
    secrets = {
        "e-mail": email,
        "phone": phone,
        "last name": f"Erasmus{marker}",
        "first name": "Ingrid",
        "street": ADDRESS["line1"],
        "address phone": ADDRESS["phone"],
    }
    for place, value in await _decrypted_rows(settings, session):
        for name, secret in secrets.items():
            if value and secret.casefold() in value.casefold():
                if name == "e-mail" and place == "user email" and value == email:
                    continue  # the newcomer's own e-mail
                leftovers.append((place, name))
    assert leftovers == []
    emails = [v for p, v in await _decrypted_rows(settings, session) if p == "user email"]
    assert emails.count(email) == 1
    _assert_absent(await _stored_bytes(settings), secrets)


async def test_stored_email_opens_only_in_its_place(
    client: Client, settings: Settings, session: AsyncSession
) -> None:
    """The stored e-mail opens with the deployment's keys, for its own row and column only."""
    account = await sign_up(client)
    row = await session.get(UserAccount, uuid.UUID(account.id))
    assert row is not None
    row_id, token = row.id, row.email_enc
    await session.rollback()
    vault = _vault(settings)
    assert vault.open("user_account", "email", row_id, token) == account.email
    with pytest.raises(DecryptionError):
        vault.open("user_account", "email", uuid.uuid4(), token)
    with pytest.raises(DecryptionError):
        vault.open("user_account", "phone", row_id, token)


async def _guest_flows(
    client: Client,
    items: list[dict[str, Any]],
    email: str,
    address: dict[str, str],
    check: Callable[[str], Awaitable[None]],
    canaries: dict[str, str],
) -> None:
    """A guest's cart with e-mail and addresses, its order with a key, the replay, the
    confirmation e-mail job and a payment holding a client secret (added to ``canaries``),
    each followed by ``check``."""
    created = await client.post(f"{API}/carts", json={"email": email, "items": items})
    assert created.status_code == 201, created.text
    url, guest = f"{API}/carts/{created.json()['id']}", {"Cart-Token": created.json()["token"]}
    await check("a guest cart with an e-mail")
    patched = await client.patch(
        url, headers=guest, json={"shipping_address": address, "billing_address": address}
    )
    assert patched.status_code == 200, patched.text
    await check("a guest cart with addresses")
    keyed = guest | {"Idempotency-Key": "canary-guest"}
    body = {"cart_id": created.json()["id"]}
    placed = await client.post(f"{API}/orders", json=body, headers=keyed)
    assert placed.status_code == 201, placed.text
    assert placed.json()["email"] == email
    await check("a guest order")
    replay = await client.post(f"{API}/orders", json=body, headers=keyed)
    assert replay.json()["billing_address"]["line1"] == address["line1"]
    await check("the replay of a guest order")
    assert await drain(client) > 0
    await check("the guest's confirmation e-mail")
    paying = await client.post(
        f"{API}/orders/{placed.json()['id']}/payments",
        json={"provider": "test", "payment_method": "pm_card_authenticationRequired"},
        headers={"Order-Token": replay.json()["order_token"]},  # the replay's new token
    )
    assert paying.status_code == 201, paying.text
    canaries["payment client secret"] = paying.json()["client_secret"]
    await check("a payment awaiting 3-D Secure (its client secret)")


async def _gift_card_flow(
    client: Client,
    staff: dict[str, str],
    marker: str,
    check: Callable[[str], Awaitable[None]],
    canaries: dict[str, str],
) -> None:
    """Staff issue a gift card whose note names a person; its code (as shown and as typed)
    and the note are canaries from then on; its balance is checked by code."""
    note = f"For Gideon Giftee{marker}"
    issued = await client.post(
        f"{API}/gift-cards",
        json={"initial_balance": 500, "currency": "USD", "note": note},
        headers=staff,
    )
    assert issued.status_code == 201, issued.text
    code = issued.json()["code"]
    canaries |= {"gift card code": code, "typed code": code.replace("-", ""), "note": note}
    await check("issuing a gift card")
    balance = await client.post(f"{API}/gift-cards/balance", json={"code": code.lower()})
    assert balance.status_code == 200, balance.text
    await check("a gift card's balance check")


async def _parcel_flow(
    client: Client,
    staff: dict[str, str],
    items: list[dict[str, Any]],
    email: str,
    address: dict[str, str],
    check: Callable[[str], Awaitable[None]],
) -> None:
    """A guest's order paid, shipped with the customer told (the shipping e-mail to the
    guest's address), delivered and partly returned: the places this stores data
    (parcels, the shipping e-mail, returns and their events) hold no canary either."""
    created = await client.post(f"{API}/carts", json={"email": email, "items": items})
    holder = {"Cart-Token": created.json()["token"]}
    cart_url = f"{API}/carts/{created.json()['id']}"
    await client.patch(cart_url, headers=holder, json={"shipping_address": address})
    placed = await client.post(
        f"{API}/orders", json={"cart_id": created.json()["id"]}, headers=holder
    )
    assert placed.status_code == 201, placed.text
    order = placed.json()
    await pay_in_full(client, order["id"], staff)
    line = order["items"][0]["id"]
    shipped = await client.post(
        f"{API}/orders/{order['id']}/fulfillments",
        json={
            "lines": [{"order_line_id": line, "quantity": 1}],
            "carrier": "DHL",
            "tracking_number": "JD0146000062",
            "tracking_url": "https://www.dhl.com/track?id=JD0146000062",
            "notify_customer": True,
        },
        headers=staff,
    )
    assert shipped.status_code == 201, shipped.text
    assert await drain(client) > 0
    await check("a parcel shipped and the guest's shipping e-mail")
    delivered = await client.post(
        f"{API}/fulfillments/{shipped.json()['id']}/delivered", headers=staff
    )
    assert delivered.status_code == 200, delivered.text
    returned = await client.post(
        f"{API}/orders/{order['id']}/returns",
        json={"lines": [{"order_line_id": line, "quantity": 1, "reason": "too big"}]},
        headers={"Order-Token": order["order_token"]},
    )
    assert returned.status_code == 201, returned.text
    await drain(client)
    await check("a guest's return")


async def _staff_read_flow(
    client: Client, admin: dict[str, str], user_id: str, check: Callable[[str], Awaitable[None]]
) -> None:
    """An admin lists accounts and orders and reveals the customer's profile: each read is
    an audit event (``audit_event``, from the admin's address), which must name fields, not
    hold their values or the address."""
    for path in ("/users", f"/users/{user_id}?reveal=true", "/orders"):
        response = await client.get(f"{API}{path}", headers=admin)
        assert response.status_code == 200, response.text
    events = await client.get(f"{API}/audit-events", params={"limit": 100}, headers=admin)
    actions = {e["action"] for e in events.json()["items"]}
    assert {"user.listed", "user.personal_data_revealed", "order.listed"} <= actions
    await check("staff reads of personal data, audited")


@pytest.mark.slow
async def test_no_canary_is_stored_in_clear_after_any_flow(
    ip_client: Client, settings: Settings, session: AsyncSession, admin_headers: dict[str, str]
) -> None:
    """After each flow that takes personal data (sign-up, address book, refresh, orders with
    an ``Idempotency-Key`` and their replay, a cart checkout, a guest's cart with e-mail and
    addresses, the guest's order, its replay and confirmation e-mail, a gift card, a guest's
    order shipped with its e-mail, delivered and returned, staff reads of the person's data
    (audit events), the export, erasure)
    the database file and its WAL, or a pg_dump, hold no canary in any spelling; erasure
    also forgets the customer's idempotency keys."""
    marker = uuid.uuid4().hex[:8]
    email = f"Cassandra.Canary.{marker}@Quokka-Mail.example"
    guest_email = f"Gwendolyn.Guest.{marker}@Quokka-Mail.example"
    guest_address = {**ADDRESS, "name": f"Gwendolyn Guest{marker}", "line1": "7 Quince Row"}
    phone = "+31 (6) 8765-4321"
    canaries = {
        "e-mail": email,
        "e-mail local part": email.split("@")[0],
        "phone": phone,
        "phone digits": "3168765432",
        "last name": f"Canary{marker}",
        "shipping name": ADDRESS["name"],
        "street": ADDRESS["line1"],
        "address line 2": ADDRESS["line2"],
        "address phone": ADDRESS["phone"],
        "address phone digits": "19395550142",
        "sign-in IP": CLIENT_IP,
        "password": PASSWORD,
        "guest e-mail": guest_email,
        "guest e-mail local part": guest_email.split("@")[0],
        "guest name": guest_address["name"],
        "guest street": guest_address["line1"],
    }

    async def check(flow: str) -> None:
        stored = await _stored_bytes(settings)
        assert sku.encode() in stored, f"not the database the app wrote to ({flow})"
        try:
            _assert_absent(stored, canaries)
        except AssertionError as exc:
            raise AssertionError(f"after {flow}: {exc}") from None

    category = await create_category(ip_client, admin_headers)
    product = await create_product(
        ip_client, admin_headers, category["id"], variants=[variant_body(stock=50)]
    )
    variant_id, sku = product["variants"][0]["id"], product["variants"][0]["sku"]
    account = await sign_up(
        ip_client, email, first_name="Cassandra", last_name=f"Canary{marker}", phone=phone
    )
    await check("sign-up")
    saved = await ip_client.post(f"{API}/users/me/addresses", json=ADDRESS, headers=account.headers)
    assert saved.status_code == 201, saved.text
    await check("adding an address")
    await ip_client.post(f"{API}/auth/refresh", json={"refresh_token": account.refresh_token})
    await check("a refresh")

    items = [{"variant_id": variant_id, "quantity": 1}]
    bodies = {
        "an order with a key and a shipping address": {"items": items, "shipping_address": ADDRESS},
        "an order with a key and a saved address": {
            "items": items,
            "address_id": saved.json()["id"],
        },
        "a cart checkout with a key": {"shipping_address": ADDRESS},
    }
    for n, (flow, body) in enumerate(bodies.items()):
        if "items" not in body:
            added = await ip_client.post(
                f"{API}/cart/items", json=items[0], headers=account.headers
            )
            assert added.status_code in (200, 201), added.text
        headers = account.headers | {"Idempotency-Key": f"canary-{n}"}
        placed = await ip_client.post(f"{API}/orders", json=body, headers=headers)
        assert placed.status_code == 201, placed.text
        await check(flow)
        replay = await ip_client.post(f"{API}/orders", json=body, headers=headers)
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.json() == placed.json()
        assert replay.json()["shipping_address"]["line1"] == ADDRESS["line1"]
        await check(f"the replay of {flow}")
    await _guest_flows(ip_client, items, guest_email, guest_address, check, canaries)
    await _gift_card_flow(ip_client, admin_headers, marker, check, canaries)
    await _parcel_flow(ip_client, admin_headers, items, guest_email, guest_address, check)
    await _staff_read_flow(ip_client, admin_headers, account.id, check)
    exported = await ip_client.get(f"{API}/users/me/export", headers=account.headers)
    assert exported.status_code == 200
    await check("the export")

    scope = idempotency.scope_of(uuid.UUID(account.id))
    keys = select(func.count()).select_from(IdempotencyKey).where(IdempotencyKey.scope == scope)
    assert await session.scalar(keys) == 3
    await session.rollback()
    erased = await ip_client.request(
        "DELETE", f"{API}/users/me", json={"password": PASSWORD}, headers=account.headers
    )
    assert erased.status_code == 204, erased.text
    await check("erasure")
    assert await session.scalar(keys) == 0
    await session.rollback()
