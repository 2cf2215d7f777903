"""Where composed e-mails go: SMTP (STARTTLS) or, by default, a folder of ``.eml`` files."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import smtplib
import ssl
import tempfile
import threading
import time
from pathlib import Path
from typing import Protocol

from emporium.core.config import Settings
from emporium.mail.compose import Composed


class Transport(Protocol):
    """Delivers one message; raises on failure (the job is then retried)."""

    async def send(self, message: Composed) -> None:
        """Deliver ``message``."""

    def close(self) -> None:
        """Release what the transport keeps between messages (blocking; at shutdown)."""


class FileTransport:
    """Writes each message to ``folder`` as ``<hash of Message-ID>.eml`` (embedded default).

    The name follows the Message-ID, so a retried message replaces its own file rather than
    adding a second one; the write is atomic (temporary file, then rename).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _write(self, message: Composed) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(message.message_id.encode()).hexdigest()[:32] + ".eml"
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(message.data)
        os.replace(tmp, self.folder / name)

    async def send(self, message: Composed) -> None:
        """Write ``message`` (in a thread: file I/O)."""
        await asyncio.to_thread(self._write, message)

    def close(self) -> None:
        """Nothing to release."""


class SmtpTransport:
    """Submits messages over SMTP (RFC 5321) with STARTTLS (RFC 3207) unless turned off.

    With STARTTLS on, a server that does not offer it is an error: the message is never
    sent in clear text (no downgrade). Credentials are sent only after STARTTLS, or when
    the operator turned it off explicitly.

    Sessions are kept open between messages (RFC 5321 allows any number of mail
    transactions per session): a session that sent a message goes back to a stack of idle
    ones, at most ``jobs_concurrency`` (the jobs a runner runs at once), and the next
    message reuses it instead of connecting, greeting, negotiating TLS and logging in again.
    An idle session older than ``IDLE_SECONDS`` is dropped rather than reused (servers drop
    idle clients after a few minutes; RFC 5321 4.5.3.2.7), without a ``QUIT`` that a silent server
    would make the message wait for. A reused session the server closed while it was idle
    fails at its first command; the message then goes once more over a new session (a
    server that hung up after taking the data gets it twice, with the same Message-ID, as
    from a retried job). Any other failure closes the session and raises (the job is
    retried).
    """

    IDLE_SECONDS = 30.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._idle: list[tuple[float, smtplib.SMTP]] = []
        self._lock = threading.Lock()

    @functools.cached_property
    def _tls(self) -> ssl.SSLContext:
        """Built once: loading the CA bundle costs milliseconds of CPU."""
        cafile = self.settings.smtp_ca_file
        return ssl.create_default_context(cafile=str(cafile) if cafile else None)

    def _open(self) -> smtplib.SMTP:
        s = self.settings
        smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds)
        try:
            smtp.ehlo()
            if s.smtp_starttls:
                smtp.starttls(context=self._tls)
                smtp.ehlo()
            if s.smtp_username:
                password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                smtp.login(s.smtp_username, password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _reuse(self) -> smtplib.SMTP | None:
        """The most recently used idle session, if it is fresh enough. The stack is in
        order of use, so when the newest is too old all are: they are closed."""
        with self._lock:
            if not self._idle:
                return None
            since, smtp = self._idle[-1]
            if time.monotonic() - since <= self.IDLE_SECONDS:
                self._idle.pop()
                return smtp
            stale, self._idle = self._idle, []
        for _since, old in stale:
            old.close()
        return None

    def _release(self, smtp: smtplib.SMTP) -> None:
        with self._lock:
            if len(self._idle) < self.settings.jobs_concurrency:
                self._idle.append((time.monotonic(), smtp))
                return
        _quit(smtp)

    def _send(self, message: Composed) -> None:
        smtp = self._reuse()
        if smtp is not None:
            try:
                _submit(smtp, message)
            except (smtplib.SMTPServerDisconnected, ConnectionError):
                smtp.close()  # closed by the server while idle: once more on a new session
            except BaseException:
                smtp.close()
                raise
            else:
                self._release(smtp)
                return
        smtp = self._open()
        try:
            _submit(smtp, message)
        except BaseException:
            smtp.close()
            raise
        self._release(smtp)

    async def send(self, message: Composed) -> None:
        """Submit ``message`` (in a thread: smtplib blocks)."""
        await asyncio.to_thread(self._send, message)

    def close(self) -> None:
        """End the idle sessions (``QUIT``)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for _since, smtp in idle:
            _quit(smtp)


QUIT_SECONDS = 1.0
"""How long a ``QUIT`` (at shutdown, or of a session beyond those kept) waits for the reply."""


def _quit(smtp: smtplib.SMTP) -> None:
    """End a session politely, or just drop it when the server is gone or slow."""
    try:
        if smtp.sock is not None:
            smtp.sock.settimeout(QUIT_SECONDS)
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def build_transport(settings: Settings) -> Transport:
    """The transport the settings ask for (``EMPORIUM_MAIL_BACKEND``)."""
    if settings.mail_backend == "smtp":
        return SmtpTransport(settings)
    return FileTransport(settings.mail_dir)


def _submit(smtp: smtplib.SMTP, message: Composed) -> None:
    """One mail transaction on an open session: ``MAIL FROM``, ``RCPT TO``, ``DATA``."""
    smtp.sendmail(message.sender, [message.recipient], message.data)
