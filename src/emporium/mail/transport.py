"""Where composed e-mails go: SMTP (STARTTLS) or, by default, a folder of ``.eml`` files."""

from __future__ import annotations

import asyncio
import hashlib
import os
import smtplib
import ssl
import tempfile
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from emporium.core.config import Settings


class Transport(Protocol):
    """Delivers one message; raises on failure (the job is then retried)."""

    async def send(self, message: EmailMessage) -> None:
        """Deliver ``message``."""


class FileTransport:
    """Writes each message to ``folder`` as ``<hash of Message-ID>.eml`` (embedded default).

    The name follows the Message-ID, so a retried message replaces its own file rather than
    adding a second one; the write is atomic (temporary file, then rename).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _write(self, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(str(message["Message-ID"]).encode()).hexdigest()[:32] + ".eml"
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(message.as_bytes())
        os.replace(tmp, self.folder / name)

    async def send(self, message: EmailMessage) -> None:
        """Write ``message`` (in a thread: file I/O)."""
        await asyncio.to_thread(self._write, message)


class SmtpTransport:
    """Submits messages over SMTP (RFC 5321) with STARTTLS (RFC 3207) unless turned off.

    With STARTTLS on, a server that does not offer it is an error: the message is never
    sent in clear text (no downgrade). Credentials are sent only after STARTTLS, or when
    the operator turned it off explicitly.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _tls(self) -> ssl.SSLContext:
        cafile = self.settings.smtp_ca_file
        return ssl.create_default_context(cafile=str(cafile) if cafile else None)

    def _send(self, message: EmailMessage) -> None:
        s = self.settings
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds) as smtp:
            smtp.ehlo()
            if s.smtp_starttls:
                smtp.starttls(context=self._tls())
                smtp.ehlo()
            if s.smtp_username:
                password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                smtp.login(s.smtp_username, password)
            smtp.send_message(message)

    async def send(self, message: EmailMessage) -> None:
        """Submit ``message`` (in a thread: smtplib blocks)."""
        await asyncio.to_thread(self._send, message)


def build_transport(settings: Settings) -> Transport:
    """The transport the settings ask for (``EMPORIUM_MAIL_BACKEND``)."""
    if settings.mail_backend == "smtp":
        return SmtpTransport(settings)
    return FileTransport(settings.mail_dir)
