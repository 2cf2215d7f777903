"""Structured logging with structlog: JSON lines or console lines (by default console on a
terminal, JSON otherwise), UTC, request id bound, and with tracing on the ``trace_id`` and
``span_id`` of the current span. Servers and workers write the same shape, on standard
error."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

from emporium.core.config import Settings
from emporium.core.tracing import add_trace_ids


def log_format(settings: Settings, stream: TextIO) -> str:
    """``json`` or ``console``: the setting, or for ``auto`` console when ``stream`` is a
    terminal (a person reads it) and JSON otherwise (a log collector reads it)."""
    if settings.log_format != "auto":
        return settings.log_format
    isatty = getattr(stream, "isatty", None)
    return "console" if callable(isatty) and isatty() else "json"


def configure_logging(settings: Settings) -> None:
    """Route structlog and the standard library's logging through one renderer, on
    standard error, in :func:`log_format`."""
    level = getattr(logging, settings.log_level)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if log_format(settings, sys.stderr) == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if settings.tracing:  # trace_id and span_id of the current span (core.tracing)
        shared.append(add_trace_ids)
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
