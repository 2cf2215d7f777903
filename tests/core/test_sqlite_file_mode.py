"""The SQLite database holds every order, password hash and sealed address: the real
``emporium db upgrade`` and ``emporium serve`` create it, and its ``-wal`` and ``-shm``
files, readable by the owner only (0600), like the key file, even under a permissive umask
(000); and they take group and other access off a file that has it."""

from __future__ import annotations

import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from accounts.support import PASSWORD
from servers import EMPORIUM, server_env
from servers import servers as _servers

pytestmark = pytest.mark.slow  # starts real processes


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    """Run child processes started inside with ``mask`` (they inherit the umask)."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _env(folder: Path) -> dict[str, str]:
    return server_env(f"sqlite+aiosqlite:///{folder / 'emporium.db'}", folder / "keys.json")


def test_db_upgrade_creates_the_database_owner_only(tmp_path: Path) -> None:
    """Under umask 000, ``emporium db upgrade`` leaves a 0600 database file."""
    with _umask(0o000):
        done = subprocess.run(
            [EMPORIUM, "db", "upgrade"], env=_env(tmp_path), cwd=tmp_path, capture_output=True
        )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert _mode(tmp_path / "emporium.db") == 0o600


def test_db_upgrade_takes_access_away_from_a_shared_database(tmp_path: Path) -> None:
    """A database file left world-readable (0644) by an older version becomes 0600."""
    database = tmp_path / "emporium.db"
    database.touch()
    database.chmod(0o644)
    done = subprocess.run(
        [EMPORIUM, "db", "upgrade"], env=_env(tmp_path), cwd=tmp_path, capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert _mode(database) == 0o600


def test_serve_creates_the_database_and_its_wal_owner_only(tmp_path: Path) -> None:
    """Under umask 000, ``emporium serve`` on an empty folder creates the database and,
    once a request wrote to it, its ``-wal`` and ``-shm`` files, all 0600; so is the key
    file."""
    with _umask(0o000), _servers(1, _env(tmp_path), tmp_path) as (base,):
        email = f"mode.{uuid.uuid4().hex[:8]}@example.com"
        response = httpx.post(
            f"{base}/api/v1/auth/register", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        files = {
            name: tmp_path / name
            for name in ("emporium.db", "emporium.db-wal", "emporium.db-shm", "keys.json")
        }
        modes = {name: oct(_mode(path)) for name, path in files.items()}
    assert modes == dict.fromkeys(files, oct(0o600))
