"""Compose e-mails from templates: a plain-text and an HTML part, safe headers.

HTML parts are rendered by Jinja2 with autoescaping, so a name such as ``<script>`` arrives
as text (OWASP ASVS 5.3.1). Headers are built by the standard library's ``email`` package
with the SMTP policy, and any CR or LF in a recipient, subject or sender is refused before
that: no header injection (OWASP ASVS 5.2.x, CWE-93).
"""

from __future__ import annotations

import hashlib
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import getaddresses
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


def _address(value: str, what: str) -> Address:
    _one_line(value, what)
    found = getaddresses([value])
    name, addr = found[0] if len(found) == 1 else ("", "")
    if addr.count("@") != 1 or any(c in addr for c in " ,;<>\"'"):
        raise UnsafeHeader(f"{what} is not one e-mail address")
    local, domain = addr.split("@")
    return Address(display_name=name, username=local, domain=domain)


def message_id_for(key: str, sender: str) -> str:
    """A Message-ID fixed by ``key`` (RFC 5322 3.6.4): every retry of one logical e-mail
    carries the same id, so receivers and tests can recognise a duplicate."""
    domain = _address(sender, "sender").domain or "localhost"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{domain}>"


def compose(
    template: str, context: dict[str, Any], *, to: str, sender: str, message_id: str
) -> EmailMessage:
    """The e-mail ``template`` (one of :data:`TEMPLATES`) for ``to``, multipart/alternative
    (text, then HTML). Raises UnsafeHeader for a recipient or sender that is not exactly one
    address on one line, KeyError for an unknown template."""
    subject = _one_line(SUBJECTS[template].format(**context), "subject")
    message = EmailMessage(policy=SMTP)
    message["From"] = _address(sender, "sender")
    message["To"] = _address(to, "recipient")
    message["Subject"] = subject
    message["Message-ID"] = _one_line(message_id, "message id")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(_env.get_template(f"{template}.txt").render(context))
    message.add_alternative(_env.get_template(f"{template}.html").render(context), subtype="html")
    return message
