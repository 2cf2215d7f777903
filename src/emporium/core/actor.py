"""Who is acting, for the audit trail: a context variable set once per request.

``core.http.middleware.ConventionsMiddleware`` opens a fresh :class:`ActorContext` for every
request (with its request id); the accounts room fills in the actor when it identifies the
caller (a person or an API key, with the client address already pseudonymised). Work outside a
request is the ``system``'s (job runner) unless the code says otherwise with :func:`acting_as`
(the command line uses ``acting_as("cli")``). The audit room reads :func:`current_actor`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Literal

ActorType = Literal["user", "api_key", "system", "cli"]


@dataclasses.dataclass
class ActorContext:
    """The actor of the current unit of work: its type and id, the request id and the
    pseudonymised client address (never the address itself)."""

    actor_type: ActorType = "system"
    actor_id: str | None = None
    request_id: str | None = None
    ip: str | None = None


_current: ContextVar[ActorContext | None] = ContextVar("emporium_actor", default=None)


def current_actor() -> ActorContext:
    """The actor of the current request or block; ``system`` outside both."""
    return _current.get() or ActorContext()


def open_request(request_id: str) -> Token[ActorContext | None]:
    """Start one request with a fresh actor context (anonymous until the caller is known), so
    that nothing about one request's caller leaks into the next; end it with
    :func:`close_request` (the request middleware's form of :func:`request_scope`)."""
    return _current.set(ActorContext(actor_type="system", request_id=request_id))


def close_request(token: Token[ActorContext | None]) -> None:
    """End the request :func:`open_request` started: the previous context is current again."""
    _current.reset(token)


@contextmanager
def request_scope(request_id: str) -> Iterator[ActorContext]:
    """Run one request with a fresh actor context (:func:`open_request`)."""
    token = open_request(request_id)
    try:
        yield current_actor()
    finally:
        close_request(token)


@contextmanager
def acting_as(actor_type: ActorType, actor_id: str | None = None) -> Iterator[ActorContext]:
    """Run the block as ``actor_type`` (``cli`` for the command line, ``system`` for jobs)."""
    context = ActorContext(actor_type=actor_type, actor_id=actor_id)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def identify_actor(actor_type: ActorType, actor_id: str, *, ip: str | None) -> None:
    """Record the caller of the current request once it is authenticated (``ip``: already
    pseudonymised). Outside a request this does nothing: there is no request to describe."""
    context = _current.get()
    if context is not None:
        context.actor_type, context.actor_id, context.ip = actor_type, actor_id, ip
