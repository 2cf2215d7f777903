"""Fixtures of the backup tests: an age key pair, a real S3-compatible server (moto's
server mode on a loopback port) and settings that back up to two folders and a bucket."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emporium.core.config import Settings
from servers import free_port

pytest.importorskip("pyrage")
pytest.importorskip("moto.server", reason="moto[server] is in the test extra")

S3_KEY, S3_SECRET, S3_REGION = "testing-key", "testing-secret", "us-east-1"


@dataclass(frozen=True)
class AgeKeys:
    """An identity file and its public key (the recipient)."""

    identity: Path
    recipient: str


def make_age_keys(folder: Path) -> AgeKeys:
    """A fresh X25519 key pair, the identity written as ``age-keygen`` writes it."""
    from pyrage import x25519

    identity = x25519.Identity.generate()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "identity.txt"
    path.write_text(f"# public key: {identity.to_public()}\n{identity}\n", encoding="utf-8")
    path.chmod(0o600)
    return AgeKeys(path, str(identity.to_public()))


@pytest.fixture
def age_keys(tmp_path: Path) -> AgeKeys:
    """The operator's age key pair for this test."""
    return make_age_keys(tmp_path / "operator")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port, for the whole run."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def s3_client(endpoint: str) -> Any:
    """A boto3 client of the test server."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=S3_REGION,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
    )


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    """A new, empty bucket on the test server."""
    name = f"shop-{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=name)
    return name


def s3_settings(endpoint: str) -> dict[str, Any]:
    """The settings that point boto3 at the test server."""
    return {
        "backup_s3_endpoint_url": endpoint,
        "backup_s3_region": S3_REGION,
        "backup_s3_access_key_id": S3_KEY,
        "backup_s3_secret_access_key": S3_SECRET,
    }


@pytest.fixture
def backup_settings(
    settings: Settings, tmp_path: Path, age_keys: AgeKeys, s3_endpoint: str, bucket: str
) -> Settings:
    """The test's settings backing up to two folders and a bucket, with its own copy of
    the key file (the run's key file is shared by every test and never destroyed)."""
    if not settings.is_sqlite and shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed (Debian: postgresql-client)")
    key_file = tmp_path / "live" / "emporium-keys.json"
    key_file.parent.mkdir()
    key_file.write_bytes(settings.key_file.read_bytes())
    key_file.chmod(0o600)
    return Settings.model_validate(
        settings.model_dump()
        | s3_settings(s3_endpoint)
        | {
            "key_file": key_file,
            "backup_recipients": [age_keys.recipient],
            "backup_destinations": [
                (tmp_path / "copies-a").as_uri(),
                (tmp_path / "copies-b").as_uri(),
                f"s3://{bucket}/emporium",
            ],
            "backup_spool_dir": tmp_path / "spool",
        }
    )
