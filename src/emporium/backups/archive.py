"""The parts of a backup on disk: age encryption, SHA-256 checksums and the manifest.

A backup is a folder named by its id holding ``database.age`` (the snapshot), ``keys.age``
(the key file, every key ever used) and ``manifest.json`` (plain JSON, written last: a copy
without it is incomplete). The parts are encrypted with age (https://age-encryption.org/v1)
to X25519 recipients through pyrage; only the operator's identity file opens them. The
manifest records each part's size and SHA-256, both of the encrypted file (checked before
decrypting: a tampered or truncated copy is named before any work) and of the plain
content (checked after).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyrage
from pyrage import x25519

from emporium.backups.exceptions import BackupError, PartCorrupt, WrongIdentity

MANIFEST = "manifest.json"
DATABASE = "database.age"
KEYS = "keys.age"
PARTS = (DATABASE, KEYS)
FORMAT = 1
CHUNK = 1 << 20
ID_TIME = "%Y%m%dT%H%M%S%fZ"


def new_backup_id(now: datetime) -> str:
    """A backup id that sorts by time (to the microsecond): ``20261204T031500123456Z-1a2b3c``."""
    return now.astimezone(UTC).strftime(ID_TIME) + "-" + secrets.token_hex(3)


def created_of(backup_id: str) -> datetime:
    """The instant a backup id was made at (UTC); raises ValueError for a malformed id."""
    return datetime.strptime(backup_id[:22], ID_TIME).replace(tzinfo=UTC)


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, in hex, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def recipients_of(keys: Sequence[str]) -> list[x25519.Recipient]:
    """Parse age public keys (``age1...``); raises BackupError naming the bad entry's index."""
    found = []
    for index, key in enumerate(keys):
        try:
            found.append(x25519.Recipient.from_str(key.strip()))
        except Exception as exc:  # pyrage raises its own RecipientError
            raise BackupError(f"backup recipient #{index + 1} is not an age public key") from exc
    return found


def identities_in(path: Path) -> list[x25519.Identity]:
    """The ``AGE-SECRET-KEY-1...`` lines of an identity file (as ``age-keygen`` writes it;
    ``#`` comments skipped); raises BackupError when there is none or one is malformed."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            found.append(x25519.Identity.from_str(line))
        except Exception as exc:
            raise BackupError(f"{path} holds a line that is not an age identity") from exc
    if not found:
        raise BackupError(f"{path} holds no age identity (AGE-SECRET-KEY-1...)")
    return found


def encrypt(plain: Path, sealed: Path, recipients: Sequence[x25519.Recipient]) -> None:
    """Encrypt the file ``plain`` to ``sealed`` for every recipient (age, streaming)."""
    pyrage.encrypt_file(str(plain), str(sealed), list(recipients))


def decrypt(sealed: Path, plain: Path, identities: Sequence[x25519.Identity], part: str) -> None:
    """Decrypt ``sealed`` into ``plain``; raises WrongIdentity when no identity opens it and
    PartCorrupt when the ciphertext fails age's authentication."""
    try:
        pyrage.decrypt_file(str(sealed), str(plain), list(identities))
    except pyrage.DecryptError as exc:
        if "No matching keys" in str(exc):
            raise WrongIdentity(
                f"part {part}: the identity file holds none of the keys this backup was "
                "encrypted to"
            ) from exc
        raise PartCorrupt(f"part {part}: it does not decrypt ({exc})") from exc


@dataclass(frozen=True)
class Part:
    """One part as the manifest lists it: encrypted and plain sizes (bytes) and SHA-256."""

    name: str
    size: int
    sha256: str
    plain_size: int
    plain_sha256: str

    def as_json(self) -> dict[str, Any]:
        """The part's manifest entry."""
        return {
            "size": self.size,
            "sha256": self.sha256,
            "plain_size": self.plain_size,
            "plain_sha256": self.plain_sha256,
        }


def seal_part(plain: Path, folder: Path, name: str, recipients: Sequence[x25519.Recipient]) -> Part:
    """Encrypt ``plain`` to ``folder/name`` and measure both; the plain file is left."""
    sealed = folder / name
    encrypt(plain, sealed, recipients)
    return Part(
        name, sealed.stat().st_size, sha256_of(sealed), plain.stat().st_size, sha256_of(plain)
    )


def write_manifest(folder: Path, manifest: dict[str, Any]) -> str:
    """Write ``folder/manifest.json`` (sorted keys); returns its SHA-256."""
    path = folder / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return sha256_of(path)


def read_manifest(path: Path) -> dict[str, Any]:
    """Read a manifest; raises PartCorrupt when it is not a manifest of this format."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PartCorrupt(f"part {MANIFEST}: not valid JSON") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise PartCorrupt(f"part {MANIFEST}: not a format-{FORMAT} Emporium backup manifest")
    for name in PARTS:
        if not isinstance(manifest.get("parts", {}).get(name), dict):
            raise PartCorrupt(f"part {MANIFEST}: lists no {name}")
    return manifest


def check_part(folder: Path, name: str, manifest: dict[str, Any]) -> None:
    """Compare a fetched encrypted part with the manifest; raises PartCorrupt naming it
    (truncated, too long, or same size but altered)."""
    expected = manifest["parts"][name]
    path = folder / name
    size = path.stat().st_size if path.exists() else 0
    if size != expected["size"]:
        how = "truncated" if size < expected["size"] else "longer than recorded"
        raise PartCorrupt(f"part {name}: {how} ({size} of {expected['size']} bytes)")
    if sha256_of(path) != expected["sha256"]:
        raise PartCorrupt(f"part {name}: SHA-256 differs from the manifest (altered)")


def check_plain(path: Path, name: str, manifest: dict[str, Any]) -> None:
    """Compare a decrypted part with the manifest's plain checksum; raises PartCorrupt."""
    if sha256_of(path) != manifest["parts"][name]["plain_sha256"]:
        raise PartCorrupt(f"part {name}: decrypted content differs from the manifest")
