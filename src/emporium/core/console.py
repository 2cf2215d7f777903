"""What the ``emporium`` command prints: one-line errors, and "listening" once bound.

Imports only click and the standard library, so ``emporium --help`` stays fast.
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
from typing import Any

import click

HINT_DATABASE = "check EMPORIUM_DATABASE_URL and that the database server is running"
HINT_NETWORK = "check the host names and ports in the settings, and that those services run"
HINT_DEBUG = "run with --debug or EMPORIUM_DEBUG=1 for the traceback"


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _from_database(exc: BaseException) -> bool:
    chain: BaseException | None = exc
    while chain is not None:
        module = type(chain).__module__
        if module.startswith(("sqlalchemy", "asyncpg", "sqlite3", "aiosqlite")):
            return True
        chain = chain.__cause__ or chain.__context__
    return False


def one_line(exc: BaseException) -> str:
    """``<what> (<hint>)`` for an error that escaped a command: the innermost cause's first
    line (SQLAlchemy's "Background on this error" links and SQL are left out), with a hint
    for database and network failures."""
    root = getattr(exc, "orig", None) or exc
    what = _first_line(str(root)) or type(root).__name__
    unreachable = isinstance(root, socket.gaierror | ConnectionError | TimeoutError)
    if unreachable or (isinstance(root, OSError) and "connect" in what.lower()):
        hint = HINT_DATABASE if _from_database(exc) or _is_connect(exc) else HINT_NETWORK
        return f"cannot connect: {what} ({hint})"
    if _from_database(exc):
        return f"database error: {what} ({HINT_DATABASE})"
    if isinstance(root, OSError):
        return f"{what} ({HINT_DEBUG})"
    return f"{type(root).__name__}: {what} ({HINT_DEBUG})"


def _is_connect(exc: BaseException) -> bool:
    """True when the traceback passed through the database engine's connect."""
    frames = traceback.extract_tb(exc.__traceback__)
    return any("sqlalchemy" in f.filename or "asyncpg" in f.filename for f in frames)


class CommandGroup(click.Group):
    """The top-level group: an error that escapes any command is printed as
    ``emporium: error: <one line> (<hint>)`` with exit code 1 (click's own errors keep their
    exit codes, in the same shape); with ``--debug`` or ``EMPORIUM_DEBUG=1`` it propagates
    with its traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; an escaping error becomes one line and exit code 1."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, click.UsageError, KeyboardInterrupt):
            raise
        except click.ClickException as exc:
            click.echo(f"emporium: error: {exc.format_message()}", err=True)
            ctx.exit(exc.exit_code)
        except Exception as exc:
            if _debug(ctx):
                raise
            click.echo(f"emporium: error: {one_line(exc)}", err=True)
            ctx.exit(1)


def _debug(ctx: click.Context) -> bool:
    if isinstance(ctx.obj, dict) and ctx.obj.get("debug"):
        return True
    return os.environ.get("EMPORIUM_DEBUG", "").lower() in ("1", "true", "yes")


class ListeningFilter(logging.Filter):
    """On uvicorn's ``uvicorn.error`` logger: lets warnings and errors through, turns the
    line uvicorn logs once its socket is bound (``Uvicorn running on ...``) into
    ``Emporium listening on <url>/api/v1/products``, and drops uvicorn's other info lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep warnings and errors, and the one line saying where the server listens."""
        if record.levelno >= logging.WARNING:
            return True
        message = str(record.msg)
        if not message.startswith("Uvicorn running on ") or "unix socket" in message:
            return False
        record.msg = message.replace("Uvicorn running on ", "Emporium listening on ").replace(
            " (Press CTRL+C to quit)", "/api/v1/products (Ctrl+C stops)"
        )
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's ``log_config``: its errors and warnings on standard error as they are, and
    one "listening" line once the socket is bound (:class:`ListeningFilter`); no access log
    (the application logs each request itself)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"listening": {"()": ListeningFilter}},
        "formatters": {"plain": {"format": "%(message)s"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "plain",
                "filters": ["listening"],
            }
        },
        "loggers": {
            "uvicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
