"""Route configuration declared once per group of routes: :class:`Audience` (who calls:
guards, OpenAPI security, the refusals they bring) and :func:`audience_router`, the Litestar
``Router`` that carries an audience and a room's tags for its handlers.

A room's ``routes.py`` writes each handler with only what is its own (path, status code,
summary, a rate-limit guard, the refusals only it gives) and groups its handlers by
audience; see docs/architecture.md, "Routes".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from litestar import Router
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import SecurityRequirement
from litestar.types import Guard

from emporium.core.errors import problem_responses


@dataclass(frozen=True, slots=True)
class Audience:
    """Who a group of routes serves, declared once for all of them.

    ``guards`` run before each handler's own guards; ``security`` is the OpenAPI security
    requirement of every operation (a handler's own is appended to it); ``refusals`` are
    the HTTP statuses of the problem+json answers the guards give (401, 403), documented
    on every operation.
    """

    guards: tuple[Guard, ...] = ()
    security: tuple[SecurityRequirement, ...] = ()
    refusals: tuple[int, ...] = ()


def audience_router(
    audience: Audience,
    *,
    tags: Sequence[str],
    route_handlers: Sequence[HTTPRouteHandler],
    refusals: Iterable[int] = (),
    **options: Any,
) -> Router:
    """A ``Router`` at ``/`` for a room's ``route_handlers`` that serve ``audience``: it
    carries the tags, the audience's security and ``options`` (other Router settings:
    ``dependencies``, ``cache_control``...).

    Two settings are put on each handler here, before the router copies it. Guards: the
    audience's come first in the handler's own list, not on the Router, because Litestar
    gives a router's guards to the ``OPTIONS`` handler it adds to every path (which
    answers CORS preflights and ``Allow``): those must stay open. Responses (Litestar has
    no router-level ``responses``): ``problem_responses`` of the audience's refusals, of
    ``refusals`` (what every route of this router may answer, e.g. 404) and the handler's
    own ``responses`` (what only it answers), ordered by status.
    """
    shared = problem_responses(*audience.refusals, *refusals)
    for handler in route_handlers:
        handler.guards = [*audience.guards, *(handler.guards or [])]
        merged = {**shared, **(handler.responses or {})}
        handler.responses = dict(sorted(merged.items()))
    return Router(
        path="/",
        route_handlers=list(route_handlers),
        tags=list(tags),
        security=list(audience.security),
        **options,
    )
