"""The application's wiring: process-wide ORM hooks come from ``create_app``, not imports."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# A fresh interpreter: this test process has long had the hooks from other tests' apps.
_PROBE = textwrap.dedent(
    """
    import sys

    from sqlalchemy import event
    from sqlalchemy.orm import Session

    import emporium.cli
    import emporium.importers.common
    from emporium.app import create_app
    from emporium.catalog.changes import _collect
    from emporium.core.config import Settings
    from emporium.inventory.ledger import _record

    def hooks():
        return [event.contains(Session, "before_flush", hook) for hook in (_collect, _record)]

    print(hooks())
    create_app(Settings(database_url="sqlite+aiosqlite:///" + sys.argv[1], log_level="WARNING"))
    print(hooks())
    """
)


def test_orm_hooks_are_registered_by_create_app_and_not_by_imports(tmp_path: Path) -> None:
    """Importing every module registers neither the product-change hook nor the ledger hook;
    building the application registers both."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path / "probe.db")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert done.stdout.splitlines()[-2:] == ["[False, False]", "[True, True]"]
