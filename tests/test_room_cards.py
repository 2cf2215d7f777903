"""Room cards tell the truth.

Every room (each package directly under ``emporium``) has a card, its ``__init__.py``
docstring, with one sentence ``May import: ``emporium.<room>``, ...``. These tests hold the
cards to the real import graph (grimp, which import-linter uses; imports inside functions
and ``TYPE_CHECKING`` blocks count) and to the layers contract in ``pyproject.toml``: a room
may import only the rooms its card names, and a card may name only rooms below it.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "src" / "emporium"
# Alembic's history: no room, it imports what each migration needs.
NOT_ROOMS = frozenset({"migrations"})
ROOMS = sorted(
    path.parent.name for path in PACKAGE.glob("*/__init__.py") if path.parent.name not in NOT_ROOMS
)
_SENTENCE = re.compile(r"May import:(?P<names>.*?)\.(?=\s|$)", re.DOTALL)
_NAME = re.compile(r"``emporium\.(\w+)[\w.]*``")


def card_of(room: str) -> str:
    """The room's card: the docstring of ``src/emporium/<room>/__init__.py``."""
    tree = ast.parse((PACKAGE / room / "__init__.py").read_text(encoding="utf-8"))
    return ast.get_docstring(tree) or ""


def names_on_card(card: str) -> set[str] | None:
    """The rooms the card's ``May import:`` sentence names (``None`` when it has none)."""
    sentence = _SENTENCE.search(card)
    if sentence is None:
        return None
    return set(_NAME.findall(sentence.group("names")))


def imports_between_rooms(graph: grimp.ImportGraph, room: str) -> dict[str, list[str]]:
    """Every other top-level ``emporium`` module that ``room`` imports, with the imports
    (``importer -> imported``) that make it so."""
    package = f"emporium.{room}"
    found: dict[str, list[str]] = {}
    for importer in sorted(graph.find_descendants(package) | {package}):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            parts = imported.split(".")
            if parts[0] != "emporium" or len(parts) < 2 or parts[1] == room:
                continue
            found.setdefault(parts[1], []).append(f"{importer} -> {imported}")
    return found


def card_violations(
    graph: grimp.ImportGraph, cards: Mapping[str, set[str]], rooms: Iterable[str]
) -> list[str]:
    """One message for each room that imports a room its card does not name."""
    problems = []
    for room in rooms:
        for other, lines in imports_between_rooms(graph, room).items():
            if other not in cards[room]:
                problems.append(
                    f"emporium.{room} imports emporium.{other}, which its card does not name "
                    f"(src/emporium/{room}/__init__.py, 'May import:'): " + "; ".join(lines)
                )
    return problems


def rooms_below() -> dict[str, set[str]]:
    """For each room in the layers contract of ``pyproject.toml``, the rooms below it."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    (layers,) = [contract["layers"] for contract in contracts if contract["type"] == "layers"]
    levels = [
        {name.strip().removeprefix("emporium.") for name in re.split(r"[|:]", layer)}
        for layer in layers
    ]
    return {
        room: set().union(*levels[index + 1 :])
        for index, level in enumerate(levels)
        for room in level
    }


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    """The import graph of the installed ``emporium`` package."""
    return grimp.build_graph("emporium", cache_dir=None)


@pytest.fixture(scope="module")
def cards() -> dict[str, set[str]]:
    """The rooms each card names (rooms without a sentence are left out)."""
    named = {room: names_on_card(card_of(room)) for room in ROOMS}
    return {room: names for room, names in named.items() if names is not None}


def test_the_rooms_are_found() -> None:
    assert {"core", "accounts", "catalog", "orders", "jobs"} <= set(ROOMS)


@pytest.mark.parametrize("room", ROOMS)
def test_every_room_has_a_card_that_names_real_rooms(room: str) -> None:
    names = names_on_card(card_of(room))
    assert names is not None, (
        f"src/emporium/{room}/__init__.py: the docstring has no 'May import: "
        "``emporium.<room>``, ...' sentence"
    )
    unknown = names - set(ROOMS)
    assert not unknown, f"the {room} card names rooms that do not exist: {sorted(unknown)}"


def test_every_room_imports_only_what_its_card_names(
    graph: grimp.ImportGraph, cards: dict[str, set[str]]
) -> None:
    problems = card_violations(graph, cards, sorted(cards))
    assert not problems, "cards and code disagree:\n" + "\n".join(problems)


def test_cards_stay_inside_the_layers_contract(cards: dict[str, set[str]]) -> None:
    below = rooms_below()
    missing = set(cards) - set(below)
    assert not missing, f"rooms missing from the layers contract in pyproject.toml: {missing}"
    above = {room: sorted(names - below[room]) for room, names in cards.items()}
    above = {room: names for room, names in above.items() if names}
    assert not above, f"cards name rooms that are not below them in the layers: {above}"


def test_a_room_importing_past_its_card_is_reported() -> None:
    # The check itself, on a made-up graph: catalog imports orders, which its card omits.
    graph = grimp.ImportGraph()
    for module in ["emporium", "emporium.catalog", "emporium.catalog.service"]:
        graph.add_module(module)
    for module in ["emporium.core", "emporium.core.db.base", "emporium.orders"]:
        graph.add_module(module)
    graph.add_import(importer="emporium.catalog.service", imported="emporium.core.db.base")
    graph.add_import(importer="emporium.catalog.service", imported="emporium.orders")
    card = "The catalog.\n\nMay import: ``emporium.core`` (the kernel). Publishes ``service``."
    names = names_on_card(card)
    assert names == {"core"}

    problems = card_violations(graph, {"catalog": names}, ["catalog"])

    assert problems == [
        "emporium.catalog imports emporium.orders, which its card does not name "
        "(src/emporium/catalog/__init__.py, 'May import:'): "
        "emporium.catalog.service -> emporium.orders"
    ]
