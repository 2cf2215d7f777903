"""The shape issue 11 settled: no function over 60 lines outside migrations, no
``# fmt: skip`` anywhere (the formatter formats), so that the code stays readable as rooms
are added. (Complexity is ruff's C901, max 10, in pyproject.toml.)"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 60


def _python_files(*tops: str) -> list[Path]:
    return [p for top in tops for p in sorted((ROOT / top).rglob("*.py"))]


def test_no_function_is_longer_than_60_lines_outside_migrations() -> None:
    long = []
    for path in _python_files("src"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length})")
    assert long == [], "split these functions (60 lines at most):\n" + "\n".join(long)


def test_the_formatter_formats_everything() -> None:
    marker = "# fmt: " + "skip"
    skipped = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in _python_files("src", "tests", "bench", ".ci")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if line.rstrip().endswith(marker)
    ]
    assert skipped == [], "let ruff format these lines:\n" + "\n".join(skipped)
