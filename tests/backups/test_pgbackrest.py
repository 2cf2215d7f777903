"""The pgBackRest setup of docs/operations.md, run once: a throwaway PostgreSQL cluster on
a free loopback port (never the shared server) archives its WAL to a pgBackRest
repository; after a full backup, a restore point and a table dropped after it, a
point-in-time restore brings the table back.

Opt-in and slow: ``EMPORIUM_TEST_PGBACKREST=1``, with pgBackRest (``apt-get install
pgbackrest``), ``initdb``, ``pg_ctl`` and ``psql`` installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from servers import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("EMPORIUM_TEST_PGBACKREST") != "1",
        reason="opt-in: set EMPORIUM_TEST_PGBACKREST=1 (needs pgbackrest, initdb, pg_ctl)",
    ),
]
STANZA = "drill"


def _tool(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in Path("/usr/lib/postgresql").glob(f"*/bin/{name}")), None
    )
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


class Cluster:
    """A PostgreSQL cluster in ``base`` on ``port``, run as the ``postgres`` user when the
    tests run as root (initdb refuses root)."""

    def __init__(self, base: Path, port: int) -> None:
        self.base, self.port = base, port
        self.data, self.sock = base / "data", base / "sock"
        self.config = base / "pgbackrest.conf"

    def run(self, *args: str) -> str:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [*prefix, *args], capture_output=True, text=True, timeout=180, check=False
        )
        assert done.returncode == 0, f"{args[0]}: {done.stderr or done.stdout}"
        return done.stdout.strip()

    def sql(self, statement: str) -> str:
        psql = _tool("psql")
        return self.run(
            psql,
            "-h",
            str(self.sock),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-Atc",
            statement,
        )

    def backrest(self, *args: str) -> str:
        return self.run(_tool("pgbackrest"), f"--config={self.config}", f"--stanza={STANZA}", *args)

    def pg_ctl(self, action: str) -> None:
        log = self.base / "log" / "postgresql.log"
        self.run(_tool("pg_ctl"), "-D", str(self.data), "-l", str(log), "-w", "-m", "fast", action)


def _configure(cluster: Cluster) -> None:
    base = cluster.base
    cluster.run(_tool("initdb"), "-D", str(cluster.data), "-U", "postgres", "--auth=trust")
    archive = f"pgbackrest --config={cluster.config} --stanza={STANZA} archive-push %p"
    with (cluster.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(
            f"port = {cluster.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{cluster.sock}'\nwal_level = replica\n"
            f"archive_mode = on\narchive_command = '{archive}'\n"
        )
    cluster.config.write_text(
        f"[global]\nrepo1-path={base / 'repo'}\nlog-path={base / 'log'}\n"
        f"lock-path={base / 'lock'}\nlog-level-console=warn\nstart-fast=y\n\n"
        f"[{STANZA}]\npg1-path={cluster.data}\npg1-port={cluster.port}\n"
        f"pg1-socket-path={cluster.sock}\n",
        encoding="utf-8",
    )


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A configured, started throwaway cluster; stopped and removed afterwards."""
    for name in ("pgbackrest", "initdb", "pg_ctl", "psql"):
        _tool(name)
    base = Path(tempfile.mkdtemp(prefix="emporium-pgbackrest-"))
    for sub in ("sock", "log", "lock", "repo"):
        (base / sub).mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        for path in base.iterdir():
            shutil.chown(path, "postgres", "postgres")
    made = Cluster(base, free_port())
    try:
        _configure(made)
        made.pg_ctl("start")
        yield made
    finally:
        subprocess.run(
            [_tool("pg_ctl"), "-D", str(made.data), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
            user="postgres" if os.geteuid() == 0 else None,
        )
        shutil.rmtree(base, ignore_errors=True)


def test_point_in_time_recovery_brings_a_dropped_table_back(cluster: Cluster) -> None:
    cluster.backrest("stanza-create")
    cluster.backrest("check")  # WAL archiving works
    cluster.backrest("--type=full", "backup")
    cluster.sql("CREATE TABLE customer_order (n int)")
    cluster.sql("INSERT INTO customer_order SELECT generate_series(1, 100)")
    cluster.sql("SELECT pg_create_restore_point('before_the_mistake')")
    cluster.sql("DROP TABLE customer_order")
    cluster.backrest("check")  # switches WAL and waits until it is archived
    cluster.pg_ctl("stop")

    cluster.backrest(
        "--delta",
        "--type=name",
        "--target=before_the_mistake",
        "--target-action=promote",
        "restore",
    )
    cluster.pg_ctl("start")
    assert cluster.sql("SELECT count(*) FROM customer_order") == "100"
    assert "full" in cluster.backrest("info")
