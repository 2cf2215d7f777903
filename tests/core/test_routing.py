"""``core.http.routing``: an audience declared once on a router guards, documents and
refuses like the same settings written on each handler, and leaves OPTIONS open."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.testing import TestClient

from emporium.core.errors import problem_responses
from emporium.core.http.routing import Audience, audience_router

Connection = ASGIConnection[Any, Any, Any, Any]


def _app(ran: list[str]) -> Litestar:
    """A one-room app: a members-only audience (header ``X-Member``) over two handlers, one
    with its own guard and its own refusal (409)."""

    async def member(connection: Connection, _: BaseRouteHandler) -> None:
        ran.append("audience")
        if "x-member" not in connection.headers:
            raise NotAuthorizedException("members only")

    async def own(_: Connection, __: BaseRouteHandler) -> None:
        ran.append("handler")

    @get("/things", sync_to_thread=False)
    def list_things() -> list[str]:
        return ["a"]

    @post("/things", guards=[own], responses=problem_responses(409), sync_to_thread=False)
    def add_thing() -> str:
        return "added"

    members = Audience(guards=(member,), security=({"bearer": []},), refusals=(401,))
    router = audience_router(
        members, tags=["things"], refusals=(404,), route_handlers=[list_things, add_thing]
    )
    return Litestar(route_handlers=[router])


def test_the_audience_guard_runs_first_and_refuses_before_the_handlers_own() -> None:
    ran: list[str] = []
    with TestClient(_app(ran)) as client:
        assert client.post("/things").status_code == 401
        assert ran == ["audience"]
        ran.clear()
        assert client.post("/things", headers={"X-Member": "1"}).text == "added"
        assert ran == ["audience", "handler"]
        assert client.get("/things").status_code == 401


def test_options_stays_open_to_anyone() -> None:
    ran: list[str] = []
    with TestClient(_app(ran)) as client:
        response = client.options("/things")
    assert response.status_code == 204
    assert ran == []


def test_the_document_has_the_tags_security_and_every_refusal() -> None:
    with TestClient(_app([])) as client:
        item = client.get("/schema/openapi.json").json()["paths"]["/things"]
    for operation in (item["get"], item["post"]):
        assert operation["tags"] == ["things"]
        assert operation["security"] == [{"bearer": []}]
    assert [s for s in item["get"]["responses"] if s != "200"] == ["400", "401", "404", "422"]
    assert [s for s in item["post"]["responses"] if s != "201"] == [
        "400",
        "401",
        "404",
        "409",
        "422",
    ]
