"""The key file belongs to its database: a missing or different one is refused at start, with
one line naming the problem and the fix, instead of a silently created new key file that
would lock every customer out. Driven through the ``emporium`` command."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from servers import EMPORIUM, server_env

pytestmark = pytest.mark.slow
PASSWORD = "Quartz lantern drifts over 9 fjords"


def _run(
    env: dict[str, str], cwd: Path, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EMPORIUM, *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _create_admin(env: dict[str, str], cwd: Path, email: str) -> subprocess.CompletedProcess[str]:
    return _run(
        env, cwd, "users", "create-admin", "--email", email, "--password-stdin", stdin=PASSWORD
    )


def _refused(done: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit status 1 and one line on stderr that contains ``words``."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1, done.stderr
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def shop(tmp_path: Path) -> tuple[dict[str, str], Path, Path]:
    """An embedded shop with personal data in it: (environment, folder, key file)."""
    key_file = tmp_path / "keys" / "emporium-keys.json"
    env = server_env(f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}", key_file)
    first = _create_admin(env, tmp_path, "first@example.com")
    assert first.returncode == 0, first.stderr
    assert "created the key file" in first.stderr
    assert key_file.is_file()
    return env, tmp_path, key_file


def test_a_missing_key_file_is_refused_not_recreated(
    shop: tuple[dict[str, str], Path, Path],
) -> None:
    """With the key file gone, commands and ``serve`` refuse to start and create nothing;
    once it is restored they work again."""
    env, cwd, key_file = shop
    backup = key_file.read_bytes()
    key_file.unlink()
    _refused(_create_admin(env, cwd, "second@example.com"), "no key file", "restore")
    _refused(_run(env, cwd, "serve", "--port", "9"), "no key file", str(key_file))
    _refused(_run(env, cwd, "worker"), "no key file")
    assert not key_file.exists()
    key_file.write_bytes(backup)
    key_file.chmod(0o600)
    assert _create_admin(env, cwd, "second@example.com").returncode == 0


def test_a_different_key_file_is_refused(
    shop: tuple[dict[str, str], Path, Path], tmp_path: Path
) -> None:
    """Another deployment's key file (``keys init`` elsewhere) does not open this database."""
    env, cwd, _ = shop
    other = tmp_path / "other-keys.json"
    made = _run({**env, "EMPORIUM_KEY_FILE": str(other)}, cwd, "keys", "init")
    assert made.returncode == 0, made.stderr
    wrong = {**env, "EMPORIUM_KEY_FILE": str(other)}
    _refused(_create_admin(wrong, cwd, "third@example.com"), "key set", "EMPORIUM_KEY_FILE")
    _refused(_run(wrong, cwd, "keys", "rotate"), "key set")
    assert _create_admin(env, cwd, "third@example.com").returncode == 0


def test_rotation_keeps_the_key_file_valid(shop: tuple[dict[str, str], Path, Path]) -> None:
    """After ``keys rotate`` (a new active data key) the rotated file is still accepted."""
    env, cwd, key_file = shop
    before = key_file.read_text()
    rotated = _run(env, cwd, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert key_file.read_text() != before
    done = _create_admin(env, cwd, "fourth@example.com")
    assert done.returncode == 0, done.stderr


def test_a_database_from_before_the_check_is_protected_too(
    shop: tuple[dict[str, str], Path, Path],
) -> None:
    """A database with data but no recorded key set (upgraded from an older release) gets
    no new key file either; its existing key file is adopted."""
    env, cwd, key_file = shop
    with sqlite3.connect(cwd / "shop.db") as db:
        db.execute("DELETE FROM key_set")
    moved = key_file.with_name("moved.json")
    shutil.move(key_file, moved)
    _refused(_create_admin(env, cwd, "fifth@example.com"), "no key file", "restore")
    assert not key_file.exists()
    shutil.move(moved, key_file)
    assert _create_admin(env, cwd, "fifth@example.com").returncode == 0
    with sqlite3.connect(cwd / "shop.db") as db:
        assert db.execute("SELECT count(*) FROM key_set").fetchone() == (1,)
