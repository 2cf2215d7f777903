"""E-mails as a user gets them: verification over real SMTP (aiosmtpd), password reset
through the mail folder, order and security notices from events, escaping, no header
injection, and one Message-ID per logical message however often a job retries."""

from __future__ import annotations

import asyncio
import email
import ipaddress
import re
import smtplib
import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from litestar.testing import AsyncTestClient
from sqlalchemy import update

from accounts.support import PASSWORD, bearer, login, new_email, register
from emporium.accounts.models import AccountToken
from emporium.app import create_app
from emporium.core.config import Settings
from emporium.core.db.base import create_engine, create_sessionmaker
from emporium.jobs.outbox import emit_event
from emporium.mail.compose import Composed, UnsafeHeader, compose
from emporium.mail.service import send_once
from emporium.mail.transport import SmtpTransport
from factories import API, Client
from runjobs import drain

NEW_PASSWORD = "Velvet harbour counts 42 copper gulls"


class Inbox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Accept and keep the message."""
        parsed = email.message_from_bytes(envelope.content, policy=default)
        self.messages.append(parsed)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on 127.0.0.1 and a free port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def folder_messages(folder: Path) -> list[EmailMessage]:
    """The messages the file transport wrote."""
    return [
        email.message_from_bytes(p.read_bytes(), policy=default)
        for p in sorted(folder.glob("*.eml"))
    ]


def text_of(message: EmailMessage) -> str:
    """The plain-text part."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    """The HTML part."""
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def token_in(message: EmailMessage) -> str:
    """The token of the link in the message."""
    found = re.search(r"#token=([A-Za-z0-9_-]+)", text_of(message))
    assert found, text_of(message)
    return found.group(1)


@pytest.fixture
async def smtp_client(
    settings: Settings, smtp: tuple[Inbox, int]
) -> AsyncIterator[tuple[Client, Inbox]]:
    """A client of an app that sends e-mail to the test SMTP server."""
    inbox, port = smtp
    smtp_settings = settings.model_copy(
        update={
            "mail_backend": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_starttls": False,
        }
    )
    async with AsyncTestClient(app=create_app(smtp_settings)) as client:
        yield client, inbox


async def test_registration_mails_a_verification_link_over_smtp(
    smtp_client: tuple[Client, Inbox],
) -> None:
    """The link's token verifies the e-mail once; ``email_verified`` becomes true."""
    client, inbox = smtp_client
    address = new_email("Grace")
    await register(client, address, first_name="Grace")
    await drain(client)
    (message,) = inbox.messages
    assert message["To"] == address
    assert message["Subject"] == "Confirm your e-mail address"
    assert message["Message-ID"]
    assert "Hello Grace," in text_of(message)
    token = token_in(message)

    response = await client.post(f"{API}/auth/email/verify", json={"token": token})
    assert response.status_code == 204, response.text
    again = await client.post(f"{API}/auth/email/verify", json={"token": token})
    assert again.status_code == 400
    assert again.json()["code"] == "invalid_or_expired_token"
    pair = await login(client, address)
    me = await client.get(f"{API}/users/me", headers=bearer(pair["access_token"]))
    assert me.json()["email_verified"] is True


async def test_password_reset_by_mail(client: Client, settings: Settings) -> None:
    """Forgot answers 202 for known and unknown e-mails alike and mails only the account
    holder; the link resets the password once, ends every session, and a notice follows."""
    address = new_email("reset")
    await register(client, address)
    old = await login(client, address)
    await drain(client)
    known = await client.post(f"{API}/auth/password/forgot", json={"email": address})
    unknown = await client.post(f"{API}/auth/password/forgot", json={"email": new_email("nobody")})
    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content
    await drain(client)
    messages = folder_messages(settings.mail_dir)
    assert {m["To"] for m in messages} == {address}
    (reset,) = [m for m in messages if m["Subject"] == "Reset your password"]
    token = token_in(reset)

    weak = await client.post(
        f"{API}/auth/password/reset", json={"token": token, "new_password": "password"}
    )
    assert weak.status_code == 422
    ok = await client.post(
        f"{API}/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert ok.status_code == 204, ok.text
    gone = await client.get(f"{API}/users/me", headers=bearer(old["access_token"]))
    assert gone.status_code == 401
    replay = await client.post(
        f"{API}/auth/password/reset", json={"token": token, "new_password": PASSWORD}
    )
    assert replay.status_code == 400
    await login(client, address, NEW_PASSWORD)
    await drain(client)
    subjects = [m["Subject"] for m in folder_messages(settings.mail_dir)]
    assert "Your password was changed" in subjects


async def test_an_expired_reset_link_is_refused(client: Client, settings: Settings) -> None:
    """A token past its ten minutes no longer works."""
    address = new_email("late")
    await register(client, address)
    await client.post(f"{API}/auth/password/forgot", json={"email": address})
    await drain(client)
    (reset,) = [
        m for m in folder_messages(settings.mail_dir) if m["Subject"] == "Reset your password"
    ]
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session, session.begin():
        await session.execute(update(AccountToken).values(expires_at=AccountToken.created_at))
    await engine.dispose()
    body = {"token": token_in(reset), "new_password": NEW_PASSWORD}
    response = await client.post(f"{API}/auth/password/reset", json=body)
    assert response.status_code == 400


async def _emit(settings: Settings, event_type: str, data: dict[str, Any]) -> None:
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session, session.begin():
        emit_event(session, event_type, data)
    await engine.dispose()


@pytest.mark.slow
async def test_order_and_security_mails_come_from_events(
    client: Client, settings: Settings
) -> None:
    """``order.created`` mails a confirmation with lines and totals in the shop's money
    format, ``order.cancelled`` a cancellation, ``security.*`` notices; product titles are
    escaped in HTML."""
    address = new_email("buyer")
    profile = await register(client, address, first_name="Ada")
    await drain(client)
    order = {
        "order_id": str(uuid.uuid4()),
        "number": "EMP-1001",
        "customer_id": profile["id"],
        "status": "pending",
        "subtotal": 2468,
        "total": 2468,
        "currency": "USD",
        "items": [
            {
                "sku": "MUG-1",
                "title": "Mug <b>bold</b>",
                "quantity": 2,
                "unit_price": 1234,
                "line_total": 2468,
            }
        ],
    }
    await _emit(settings, "order.created", order)
    await _emit(settings, "order.cancelled", {**order, "status": "cancelled"})
    for notice in ("security.mfa_enabled", "security.mfa_disabled", "security.account_locked"):
        await _emit(settings, notice, {"user_id": profile["id"]})
    await drain(client)
    by_subject = {m["Subject"]: m for m in folder_messages(settings.mail_dir)}
    confirmation = by_subject["Order EMP-1001 confirmed"]
    assert "2 x Mug <b>bold</b> (MUG-1) at 12.34 USD: 24.68 USD" in text_of(confirmation)
    assert "Mug &lt;b&gt;bold&lt;/b&gt;" in html_of(confirmation)
    assert "<b>bold</b>" not in html_of(confirmation)
    assert "Total: 24.68 USD" in text_of(by_subject["Order EMP-1001 cancelled"]) or (
        "24.68 USD" in text_of(by_subject["Order EMP-1001 cancelled"])
    )
    for subject in ("Two-step sign-in is on", "Two-step sign-in is off", "Your account is locked"):
        assert by_subject[subject]["To"] == address


def test_names_are_escaped_and_headers_cannot_be_injected() -> None:
    """A name is text in HTML; a recipient or subject with a line break is refused."""
    message = compose(
        "password_changed",
        {"first_name": "<script>alert(1)</script>"},
        to="ada@example.com",
        sender="Shop <shop@example.com>",
        message_id="<1@example.com>",
    )
    assert "&lt;script&gt;" in html_of(message.parsed())
    assert "<script>" not in html_of(message.parsed())
    for to in ("ada@example.com\r\nBcc: all@evil.test", "a@example.com, b@example.com"):
        with pytest.raises(UnsafeHeader):
            compose(
                "password_changed",
                {"first_name": None},
                to=to,
                sender="shop@example.com",
                message_id="<2@example.com>",
            )
    with pytest.raises(UnsafeHeader):
        compose(
            "order_cancelled",
            {"first_name": None, "number": "1\r\nBcc: x@evil.test", "total": "1 USD"},
            to="a@example.com",
            sender="shop@example.com",
            message_id="<3@example.com>",
        )


def test_non_ascii_names_subjects_and_domains_travel_in_seven_bits() -> None:
    """A name, subject and body in any script arrive intact (RFC 2047 encoded words,
    quoted-printable), a non-ASCII domain is written and submitted in IDNA, and a non-ASCII
    local part (it would need SMTPUTF8) is refused rather than garbled."""
    message = compose(
        "order_cancelled",
        {"first_name": "Zoë", "number": "Ä-7", "total": "12,00 €"},
        to="Zoë Łódź <zoe@exämple.com>",
        sender="Bäckerei <shop@example.com>",
        message_id="<idn@example.com>",
    )
    assert message.data.isascii()
    assert (message.sender, message.recipient) == ("shop@example.com", "zoe@xn--exmple-cua.com")
    parsed = message.parsed()
    assert parsed["Subject"] == "Order Ä-7 cancelled"
    assert parsed["To"].addresses[0].display_name == "Zoë Łódź"
    assert parsed["From"].addresses[0].display_name == "Bäckerei"
    assert "Hello Zoë," in text_of(parsed)
    assert "12,00 €" in html_of(parsed)
    with pytest.raises(UnsafeHeader, match="SMTPUTF8"):
        compose(
            "password_changed",
            {"first_name": None},
            to="zoë@example.com",
            sender="shop@example.com",
            message_id="<utf8@example.com>",
        )


async def test_a_retried_mail_job_sends_one_message_id(
    settings: Settings, smtp: tuple[Inbox, int]
) -> None:
    """Sent and recorded: a retry sends nothing. Crashed between send and record (the
    record is lost): the retry sends the same Message-ID, never a different message."""
    inbox, port = smtp
    smtp_settings = settings.model_copy(
        update={
            "mail_backend": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_starttls": False,
        }
    )
    engine = create_engine(settings)
    maker = create_sessionmaker(engine)
    kwargs: dict[str, Any] = {
        "key": "event-1:password_changed",
        "template": "password_changed",
        "context": {"first_name": "Ada"},
        "to": "ada@example.com",
        "sender": "shop@example.com",
    }
    transport = SmtpTransport(smtp_settings)
    assert await send_once(maker, transport, **kwargs)
    assert not await send_once(maker, transport, **kwargs)
    assert len(inbox.messages) == 1
    from emporium.mail.models import MailMessage

    async with maker() as session, session.begin():
        await session.execute(update(MailMessage).values(sent_at=None))  # the lost record
    assert await send_once(maker, transport, **kwargs)
    transport.close()
    await engine.dispose()
    assert len(inbox.messages) == 2
    assert inbox.messages[0]["Message-ID"] == inbox.messages[1]["Message-ID"]


@pytest.mark.slow
async def test_the_embedded_runner_sends_without_any_worker(settings: Settings) -> None:
    """With the default ``EMPORIUM_JOBS_EMBEDDED=true`` the server process itself sends
    the verification e-mail shortly after registration."""
    embedded = settings.model_copy(update={"jobs_embedded": True, "jobs_poll_seconds": 0.1})
    address = new_email("embedded")
    async with AsyncTestClient(app=create_app(embedded)) as client:
        await register(client, address)
        for _ in range(100):
            if folder_messages(settings.mail_dir):
                break
            await asyncio.sleep(0.1)
    (message,) = folder_messages(settings.mail_dir)
    assert message["To"] == address


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "smtp.crt", tmp_path / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_smtp_uses_starttls_and_never_falls_back_to_clear_text(
    settings: Settings, tmp_path: Path
) -> None:
    """Against a server that requires STARTTLS the message goes over TLS (certificate
    checked against the configured CA); against one without STARTTLS nothing is sent."""
    cert, key = _self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    message = compose(
        "password_changed",
        {"first_name": None},
        to="ada@example.com",
        sender="shop@example.com",
        message_id="<tls@example.com>",
    )
    secure, plain = Inbox(), Inbox()
    secure_port, plain_port = _free_port(), _free_port()
    servers = [
        Controller(
            secure, hostname="127.0.0.1", port=secure_port, tls_context=tls, require_starttls=True
        ),
        Controller(plain, hostname="127.0.0.1", port=plain_port),
    ]
    for server in servers:
        server.start()
    try:
        base = {"smtp_host": "127.0.0.1", "smtp_starttls": True, "smtp_ca_file": cert}
        good = SmtpTransport(settings.model_copy(update={**base, "smtp_port": secure_port}))
        await good.send(message)
        good.close()
        bad = settings.model_copy(update={**base, "smtp_port": plain_port})
        with pytest.raises(smtplib.SMTPNotSupportedError):
            await SmtpTransport(bad).send(message)
    finally:
        for server in servers:
            server.stop()
    assert [m["Message-ID"] for m in secure.messages] == ["<tls@example.com>"]
    assert plain.messages == []


class CountingInbox(Inbox):
    """An inbox that also counts the sessions clients opened (one greeting each)."""

    def __init__(self) -> None:
        super().__init__()
        self.sessions = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        """Count the greeting, answer as aiosmtpd would."""
        self.sessions += 1
        session.host_name = hostname
        return responses


def _plain_server(inbox: Inbox, port: int) -> Controller:
    """A started SMTP server without STARTTLS on 127.0.0.1:``port``."""
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    return server


def _plain_transport(settings: Settings, port: int) -> SmtpTransport:
    """The SMTP transport for :func:`_plain_server` (no STARTTLS)."""
    update = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False}
    return SmtpTransport(settings.model_copy(update=update))


def _message(n: int) -> Composed:
    return compose(
        "password_changed",
        {"first_name": None},
        to="ada@example.com",
        sender="shop@example.com",
        message_id=f"<reuse-{n}@example.com>",
    )


async def test_smtp_sessions_are_reused_and_a_closed_one_is_replaced(settings: Settings) -> None:
    """Messages sent one after another travel over one SMTP session (no new connection,
    greeting or TLS per message); when the server has dropped the idle session (here: the
    server restarted) the next message still arrives, once, over a new session."""
    inbox, port = CountingInbox(), _free_port()
    server, transport = _plain_server(inbox, port), _plain_transport(settings, port)
    try:
        for n in range(3):
            await transport.send(_message(n))
        assert inbox.sessions == 1
        server.stop()
        server = _plain_server(inbox, port)
        await transport.send(_message(3))
        assert inbox.sessions == 2
        transport.close()
    finally:
        server.stop()
    assert [m["Message-ID"] for m in inbox.messages] == [
        f"<reuse-{n}@example.com>" for n in range(4)
    ]


async def test_an_smtp_session_idle_too_long_is_not_reused(settings: Settings) -> None:
    """A session idle longer than ``IDLE_SECONDS`` is ended, not reused: servers drop idle
    clients, and a message should not wait for the discovery."""
    inbox, port = CountingInbox(), _free_port()
    server, transport = _plain_server(inbox, port), _plain_transport(settings, port)
    transport.IDLE_SECONDS = 0.0
    try:
        await transport.send(_message(0))
        await transport.send(_message(1))
        transport.close()
    finally:
        server.stop()
    assert inbox.sessions == 2
    assert len(inbox.messages) == 2
