"""CI: the server's OpenAPI document is valid OpenAPI 3.1 (openapi-spec-validator).

Builds the app on a throw-away SQLite database, reads ``/openapi.json`` as a client would
(start-up hooks included), validates it and prints every error. The generated-client flow
runs in the test suite (tests/test_openapi_client.py).

Usage: ``.venv/bin/python .ci/openapi.py [OUT.json]`` (writes the document there if given).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from litestar.testing import TestClient
from openapi_spec_validator import OpenAPIV31SpecValidator

from emporium.app import create_app
from emporium.core.config import Settings
from emporium.core.crypto.keys import load_or_create_key_file
from emporium.core.db.migrate import upgrade


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp}/openapi.db",
            key_file=Path(tmp) / "k.json",
            jobs_embedded=False,
            redis_url=None,
            log_level="WARNING",
        )
        upgrade(settings)
        load_or_create_key_file(settings.key_file)
        with TestClient(create_app(settings)) as client:
            document = client.get("/openapi.json").json()
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(json.dumps(document, indent=1), encoding="utf-8")
    errors = list(OpenAPIV31SpecValidator(document).iter_errors())
    for error in errors:
        print(f"openapi: {'/'.join(map(str, error.absolute_path))}: {error.message}")
    operations = sum(
        1 for item in document["paths"].values() for key in item if key != "parameters"
    )
    print(f"openapi: {operations} operations, {len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
