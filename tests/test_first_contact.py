"""First contact: the README stands alone and tells the truth, and the ``emporium`` command
is quick to ask for help, says "listening" only once it is, and fails in one line."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import structlog

from emporium.core.config import Settings
from emporium.core.logging import configure_logging, log_format
from emporium.importers import demo
from servers import EMPORIUM, free_port, server_env

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
HEAVY = ("litestar", "sqlalchemy", "uvicorn", "msgspec", "alembic", "emporium.app")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPORIUM_")}
    return env | extra


# --- the README --------------------------------------------------------------------------------


def test_the_readme_points_only_inside_the_repository() -> None:
    assert "../" not in README
    links = re.findall(r"\]\(([^)]+)\)", README)
    assert [link for link in links if not link.startswith(("http://", "https://", "#"))] == [
        link for link in links if (ROOT / link).exists()
    ]
    paths = set(re.findall(r"`((?:docs|src|tests|\.ci)/[A-Za-z0-9_./-]+)`", README))
    assert paths, "the README names files of the repository"
    assert sorted(p for p in paths if not (ROOT / p).exists()) == []


def test_the_readme_demo_numbers_are_what_the_demo_creates() -> None:
    products, reviews = demo.generate()
    categories = {tuple(p.category_path[:n]) for p in products for n in (1, 2)}
    top = {path for path in categories if len(path) == 1}
    wanted = (
        f"{len(products)} products with {sum(len(p.variants) for p in products)} variants and "
        f"{len(reviews)} reviews, in {len(categories)} categories: {len(top)} top-level\n"
        f"categories with {len(categories) - len(top)} sub-categories"
    )
    assert wanted in README


# --- the command -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [["--help"], ["import", "shopify-csv", "--help"], ["serve", "--help"]]
)
def test_help_imports_neither_the_web_framework_nor_the_database_layer(args: list[str]) -> None:
    probe = (
        "import sys\nfrom emporium.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit as exit:\n    assert exit.code == 0\n"
        f"print('LOADED', [m for m in {HEAVY!r} if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=_clean_env(), timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "LOADED []"


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["db", "upgrade"],
        ["serve"],
        ["users", "create-admin", "--email", "a@example.com", "--password-stdin"],
    ],
)
def test_an_unreachable_database_is_a_one_line_error(command: list[str], tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/shop"  # nothing listens
    env = _clean_env(EMPORIUM_DATABASE_URL=url, EMPORIUM_KEY_FILE=str(tmp_path / "keys.json"))
    done = subprocess.run(
        [EMPORIUM, *command],
        capture_output=True,
        text=True,
        env=env,
        input="x\n",
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("emporium: error: cannot connect: ")
    assert "(check EMPORIUM_DATABASE_URL and that the database server is running)" in lines[0]
    debug = subprocess.run(
        [EMPORIUM, "--debug", *command],
        capture_output=True,
        text=True,
        env=env,
        input="x\n",
        timeout=60,
        cwd=tmp_path,
    )
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr


@pytest.mark.slow
def test_click_errors_keep_their_code_in_the_same_shape(tmp_path: Path) -> None:
    env = _clean_env(EMPORIUM_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/x.db")
    bad = tmp_path / "bad.csv"
    bad.write_text("Handle,Title\nlamp,Lamp\n", encoding="utf-8")
    done = subprocess.run(
        [EMPORIUM, "import", "shopify-csv", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("emporium: error: 1 problem(s) found")


@pytest.mark.slow
def test_serve_says_listening_only_once_the_port_is_bound(tmp_path: Path) -> None:
    """The line comes after the demo catalog is loaded and the socket bound: a connection
    made the moment it appears is accepted and answered."""
    port = free_port()
    env = server_env(f"sqlite+aiosqlite:///{tmp_path}/shop.db", tmp_path / "keys.json")
    proc = subprocess.Popen(
        [EMPORIUM, "serve", "--demo", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        seen: list[str] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, f"serve ended before listening: {seen}"
            seen.append(line.strip())
            if line.startswith("Emporium listening on "):
                break
        answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30)
        assert answer.status_code == 200
        assert (
            seen[-1]
            == f"Emporium listening on http://127.0.0.1:{port}/api/v1/products (Ctrl+C stops)"
        )
        assert any(line.startswith("demo catalog loaded") for line in seen[:-1])
        assert sum(line.startswith("Emporium listening") for line in seen) == 1
    finally:
        proc.terminate()
        proc.communicate(timeout=20)  # drains and closes the pipe


# --- log format --------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream", "expected"), [(_Terminal(), "console"), (io.StringIO(), "json")]
)
def test_logs_are_console_lines_on_a_terminal_and_json_otherwise(
    stream: io.StringIO, expected: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", log_format="auto")
    assert log_format(settings, stream) == expected
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging(settings)
    try:
        structlog.get_logger().warning("probe_event", order_number=42)
        line = stream.getvalue().strip().splitlines()[-1]
        if expected == "json":
            assert json.loads(line)["event"] == "probe_event"
        else:
            assert "probe_event" in line
            assert "order_number=42" in line
            assert not line.startswith("{")
    finally:
        monkeypatch.undo()
        configure_logging(Settings(database_url=settings.database_url, log_format="json"))
    explicit = Settings(database_url=settings.database_url, log_format="json")
    assert log_format(explicit, _Terminal()) == "json"
