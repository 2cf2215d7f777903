"""Compose e-mails from templates: a plain-text and an HTML part, safe headers.

HTML parts are rendered by Jinja2 with autoescaping, so a name such as ``<script>`` arrives
as text (OWASP ASVS 5.3.1). Any CR or LF in a recipient, subject or sender is refused before
the headers are written: no header injection (OWASP ASVS 5.2.x, CWE-93).

The message is written once, as bytes (:class:`Composed`), with the standard library's
``email.mime`` classes and its ``compat32`` policy: 7-bit throughout (RFC 2047 encoded words
for non-ASCII names and subjects, IDNA for non-ASCII domains, quoted-printable bodies). The
``email.policy.SMTP`` objects it replaced parsed every header they were given again and cost
three times the CPU per message (issue 18: a third of an order's e-mail job).
"""

from __future__ import annotations

import email
import hashlib
from dataclasses import dataclass
from email.charset import QP, Charset
from email.header import Header
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32, default
from email.utils import formataddr, getaddresses
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

SUBJECTS = {
    "verify_email": "Confirm your e-mail address",
    "password_reset": "Reset your password",
    "password_changed": "Your password was changed",
    "order_confirmation": "Order {number} confirmed",
    "order_cancelled": "Order {number} cancelled",
    "order_paid": "Order {number} paid",
    "order_shipped": "Order {number} shipped",
    "late_payment_refunded": "Order {number}: money after cancellation refunded",
    "mfa_enabled": "Two-step sign-in is on",
    "mfa_disabled": "Two-step sign-in is off",
    "account_locked": "Your account is locked",
    "backup_copy_failed": "Backup {backup_id}: the copy to one destination failed",
}
TEMPLATES = tuple(SUBJECTS)

_env = Environment(
    loader=PackageLoader("emporium.mail", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    auto_reload=False,  # templates ship with the code: compiled once, never stat()ed again
)


class UnsafeHeader(ValueError):
    """A header value would break out of its header (CR/LF) or is not one address."""


def _one_line(value: str, what: str) -> str:
    if "\r" in value or "\n" in value or "\x00" in value:
        raise UnsafeHeader(f"{what} contains a line break")
    return value


def _address(value: str, what: str) -> tuple[str, str]:
    """``(display name, addr-spec)`` of exactly one address, its domain in IDNA (ASCII).

    Raises UnsafeHeader for a line break, not exactly one address, or a non-ASCII local
    part (it would need SMTPUTF8, RFC 6531, which Emporium does not send)."""
    _one_line(value, what)
    found = getaddresses([value])
    name, addr = found[0] if len(found) == 1 else ("", "")
    if addr.count("@") != 1 or any(c in addr for c in " ,;<>\"'"):
        raise UnsafeHeader(f"{what} is not one e-mail address")
    local, domain = addr.split("@")
    if not local.isascii():
        raise UnsafeHeader(f"{what} has a non-ASCII local part (SMTPUTF8 is not supported)")
    try:
        domain = domain if domain.isascii() else domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise UnsafeHeader(f"{what} has a domain that is not a valid IDN") from exc
    return name, f"{local}@{domain}"


_WIRE = compat32.clone(linesep="\r\n")
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP  # readable 7-bit bodies (base64 is compat32's default for UTF-8)


@dataclass(frozen=True)
class Composed:
    """An e-mail ready to submit: the envelope's sender and recipient (addr-specs, RFC 5321),
    its ``Message-ID`` and the message itself (``data``: RFC 5322 and MIME bytes, 7-bit,
    CRLF line ends)."""

    message_id: str
    sender: str
    recipient: str
    data: bytes

    def parsed(self) -> EmailMessage:
        """The message parsed back with the standard library's default policy."""
        return email.message_from_bytes(self.data, policy=default)


def _header_text(value: str) -> str | Header:
    return value if value.isascii() else Header(value, _UTF8)


def message_id_for(key: str, sender: str) -> str:
    """A Message-ID fixed by ``key`` (RFC 5322 3.6.4): every retry of one logical e-mail
    carries the same id, so receivers and tests can recognise a duplicate."""
    domain = _address(sender, "sender")[1].rpartition("@")[2] or "localhost"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{domain}>"


def compose(
    template: str, context: dict[str, Any], *, to: str, sender: str, message_id: str
) -> Composed:
    """The e-mail ``template`` (one of :data:`TEMPLATES`) for ``to``, multipart/alternative
    (text, then HTML). Raises UnsafeHeader for a recipient or sender that is not exactly one
    address on one line (or one :func:`_address` refuses), KeyError for an unknown
    template."""
    subject = _one_line(SUBJECTS[template].format(**context), "subject")
    from_name, from_addr = _address(sender, "sender")
    to_name, to_addr = _address(to, "recipient")
    text = _env.get_template(f"{template}.txt").render(context)
    html = _env.get_template(f"{template}.html").render(context)
    message = MIMEMultipart("alternative", policy=_WIRE)
    message["From"] = formataddr((from_name, from_addr), charset="utf-8")
    message["To"] = formataddr((to_name, to_addr), charset="utf-8")
    message["Subject"] = _header_text(subject)  # type: ignore[assignment]  # a Header is allowed
    message["Message-ID"] = _one_line(message_id, "message id")
    message["Auto-Submitted"] = "auto-generated"
    for body, subtype in ((text, "plain"), (html, "html")):
        part = MIMEText(body, subtype, _UTF8, policy=_WIRE)  # type: ignore[arg-type]
        del part["MIME-Version"]  # the message's own header; not repeated in each part
        message.attach(part)
    return Composed(message_id, from_addr, to_addr, message.as_bytes())
