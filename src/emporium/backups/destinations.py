"""Where backups are copied: ``file:///folder`` and ``s3://bucket/prefix``.

Every destination stores a backup as ``<prefix>/<backup id>/<part>`` and writes the manifest
last, so a listing shows only complete copies. S3 goes through boto3 (any S3-compatible
service): endpoint, region and credentials come from the ``EMPORIUM_BACKUP_S3_*`` settings
or, when unset, from boto3's standard chain (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``,
``~/.aws``, instance roles). Calls are blocking: run them in a thread from async code.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from emporium.backups.archive import MANIFEST
from emporium.backups.exceptions import DestinationError
from emporium.core.config import Settings


class Destination(Protocol):
    """A place holding backups; ``name`` is its URL (never with credentials)."""

    name: str

    def put(self, backup_id: str, part: str, source: Path) -> None:
        """Store ``source`` as ``part`` of ``backup_id``; raises DestinationError."""

    def get(self, backup_id: str, part: str, target: Path) -> None:
        """Fetch ``part`` of ``backup_id`` into ``target``; raises DestinationError."""

    def backup_ids(self) -> list[str]:
        """The ids of the complete backups here (with a manifest), oldest first."""

    def delete(self, backup_id: str) -> None:
        """Remove every part of ``backup_id`` (no error when it is absent)."""


class FileDestination:
    """A folder (local disk, a mounted NAS or another disk)."""

    def __init__(self, url: str) -> None:
        self.name = url
        self.root = Path(unquote(urlsplit(url).path))

    def put(self, backup_id: str, part: str, source: Path) -> None:
        """Copy ``source`` in, through a temporary name renamed at the end."""
        folder = self.root / backup_id
        try:
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / f".{part}.partial"
            shutil.copyfile(source, partial)
            with partial.open("rb") as stream:
                os.fsync(stream.fileno())
            partial.replace(folder / part)
        except OSError as exc:
            raise DestinationError(f"{self.name}: cannot write {part}: {exc.strerror}") from exc

    def get(self, backup_id: str, part: str, target: Path) -> None:
        """Copy a part out."""
        try:
            shutil.copyfile(self.root / backup_id / part, target)
        except OSError as exc:
            raise DestinationError(f"{self.name}: cannot read {backup_id}/{part}") from exc

    def backup_ids(self) -> list[str]:
        """Folders holding a manifest."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / MANIFEST).is_file())

    def delete(self, backup_id: str) -> None:
        """Remove the backup's folder."""
        shutil.rmtree(self.root / backup_id, ignore_errors=True)


class S3Destination:
    """A bucket (and key prefix) on AWS S3 or any S3-compatible service."""

    def __init__(self, url: str, settings: Settings) -> None:
        parts = urlsplit(url)
        self.name = url
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.client = _s3_client(settings)

    def _key(self, backup_id: str, part: str) -> str:
        return "/".join(p for p in (self.prefix, backup_id, part) if p)

    def put(self, backup_id: str, part: str, source: Path) -> None:
        """Upload (multipart for large parts, by boto3's transfer manager)."""
        try:
            self.client.upload_file(str(source), self.bucket, self._key(backup_id, part))
        except Exception as exc:  # botocore's errors have no common public base
            raise DestinationError(f"{self.name}: cannot write {part}: {_reason(exc)}") from exc

    def get(self, backup_id: str, part: str, target: Path) -> None:
        """Download a part."""
        try:
            self.client.download_file(self.bucket, self._key(backup_id, part), str(target))
        except Exception as exc:
            raise DestinationError(
                f"{self.name}: cannot read {backup_id}/{part}: {_reason(exc)}"
            ) from exc

    def backup_ids(self) -> list[str]:
        """Ids whose manifest object exists under the prefix."""
        base = f"{self.prefix}/" if self.prefix else ""
        found = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base
            )
            for page in pages:
                for item in page.get("Contents", []):
                    rest = str(item["Key"])[len(base) :].split("/")
                    if len(rest) == 2 and rest[1] == MANIFEST:
                        found.append(rest[0])
        except Exception as exc:
            raise DestinationError(f"{self.name}: cannot list: {_reason(exc)}") from exc
        return sorted(found)

    def delete(self, backup_id: str) -> None:
        """Delete the backup's objects (manifest first: the copy stops being listed)."""
        from emporium.backups.archive import PARTS

        for part in (MANIFEST, *PARTS):
            try:
                self.client.delete_object(Bucket=self.bucket, Key=self._key(backup_id, part))
            except Exception as exc:
                raise DestinationError(f"{self.name}: cannot delete: {_reason(exc)}") from exc


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def _s3_client(settings: Settings) -> Any:
    import boto3
    from botocore.config import Config

    secret = settings.backup_s3_secret_access_key
    return boto3.client(
        "s3",
        endpoint_url=settings.backup_s3_endpoint_url,
        region_name=settings.backup_s3_region,
        aws_access_key_id=settings.backup_s3_access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5),
    )


def open_destination(url: str, settings: Settings) -> Destination:
    """The destination of a ``file:///`` or ``s3://`` URL; raises DestinationError for
    another scheme."""
    if url.startswith("file:///"):
        return FileDestination(url)
    if url.startswith("s3://"):
        return S3Destination(url, settings)
    raise DestinationError(f"{url}: not a file:/// or s3:// destination")


def pick_destination(settings: Settings, chosen: str | None) -> Destination:
    """The destination named by ``--from``: a URL, or the 1-based position in
    ``EMPORIUM_BACKUP_DESTINATIONS`` (default the first)."""
    if chosen and "://" in chosen:
        return open_destination(chosen, settings)
    index = int(chosen or 1) - 1
    if not 0 <= index < len(settings.backup_destinations):
        raise DestinationError(f"no destination #{index + 1} in EMPORIUM_BACKUP_DESTINATIONS")
    return open_destination(settings.backup_destinations[index], settings)
