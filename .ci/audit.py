"""CI: pip-audit of the locked dependencies (``requirements.lock`` and
``requirements-dev.lock``) against the PyPI/OSV vulnerability data.

Fails on any known vulnerability. When the vulnerability service cannot be reached (an
offline or filtered network), it says so loudly and does not fail: a missing answer is not
a finding, but the log shows that nothing was checked. ``EMPORIUM_CI_AUDIT_STRICT=1`` makes
that case fail too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent


def _audit(lock: str) -> tuple[list[str], list[str]]:
    """(vulnerabilities found, packages that could not be checked) for one lock file."""
    command = [str(BIN / "pip-audit"), "--disable-pip", "--no-deps", "-r", lock, "-f", "json"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        sys.exit(f"audit: pip-audit failed on {lock}:\n{result.stderr}")
    found, unchecked = [], []
    for dependency in report.get("dependencies", []):
        name = f"{dependency['name']} {dependency.get('version', '')}".strip()
        if "skip_reason" in dependency:
            unchecked.append(name)
        for vulnerability in dependency.get("vulns", []):
            fixes = ", ".join(vulnerability.get("fix_versions", [])) or "no fix yet"
            found.append(f"{lock}: {name}: {vulnerability['id']} (fixed in: {fixes})")
    return found, unchecked


def main() -> int:
    """Audit both lock files; non-zero on a known vulnerability."""
    found: list[str] = []
    unchecked: list[str] = []
    for lock in ("requirements.lock", "requirements-dev.lock"):
        lock_found, lock_unchecked = _audit(lock)
        found += lock_found
        unchecked += lock_unchecked
    for line in found:
        print(f"audit: VULNERABLE: {line}", file=sys.stderr)
    if unchecked:
        print(
            f"audit: WARNING: {len(set(unchecked))} locked package(s) could NOT be checked "
            "(the vulnerability service did not answer for them): "
            + ", ".join(sorted(set(unchecked))),
            file=sys.stderr,
        )
    if not found and not unchecked:
        print("audit: no known vulnerability in the locked dependencies")
    strict = os.environ.get("EMPORIUM_CI_AUDIT_STRICT") == "1"
    return 1 if found or (strict and unchecked) else 0


if __name__ == "__main__":
    sys.exit(main())
