"""The quick start works: ``emporium serve --demo`` on an empty folder answers at once."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from servers import EMPORIUM, free_port, wait_ready


@pytest.mark.slow
def test_serve_demo_on_a_fresh_folder(tmp_path: Path) -> None:
    """With no settings at all, serve creates emporium.db, migrates it, loads the demo
    catalog and serves it; a second start keeps the same catalog instead of adding another."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPORIUM_")}
    base = f"http://127.0.0.1:{port}"
    products: list[list[str]] = []
    for _ in range(2):
        proc = subprocess.Popen(
            [EMPORIUM, "serve", "--demo", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(base, proc, time.monotonic() + 60)
            page = httpx.get(f"{base}/api/v1/products", params={"limit": 100}).json()
            assert len(page["items"]) == 100
            assert page["next_cursor"]
            rest = httpx.get(
                f"{base}/api/v1/products", params={"limit": 100, "cursor": page["next_cursor"]}
            ).json()
            products.append(sorted(p["id"] for p in page["items"] + rest["items"]))
            categories = httpx.get(f"{base}/api/v1/categories").json()
            assert {c["slug"] for c in categories} >= {"apparel", "apparel-t-shirts"}
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    assert (tmp_path / "emporium.db").is_file()
    assert len(products[0]) == 120
    assert products[0] == products[1]
