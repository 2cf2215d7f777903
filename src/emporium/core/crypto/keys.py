"""The secret keys of a deployment, kept outside the database.

A :class:`KeyRing` holds every secret Emporium needs: AES-256 data keys for personal data at
rest (see :mod:`emporium.core.crypto.sealing`), the HMAC key of the blind indexes, the HMAC secrets
that sign tokens, and the password pepper. It comes from one JSON key file (mode 0600) or
from a JSON document given in the settings; it is never stored in the database, so a stolen
database dump alone reveals no personal data (OWASP Cryptographic Storage Cheat Sheet, "Key
Storage"; ASVS 6.4.1).

Key file, version 1 (base64 is standard base64 with padding)::

    {"version": 1,
     "data_keys": {"<kid>": "<base64 of 32 bytes>", ...}, "active_data_key": "<kid>",
     "index_key": "<base64 of 32 bytes>",
     "jwt_keys": {"<kid>": "<base64 of >= 32 bytes>", ...}, "active_jwt_key": "<kid>",
     "pepper": "<base64 of 32 bytes>"}

Rotation adds a key and makes it active; old keys stay for decryption and verification until
no value uses them. Error messages name the field at fault, never its content, so that a
mistake in a key file never copies key material into a log.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import json
import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

KEY_FILE_VERSION = 1
DATA_KEY_BYTES = 32
"""AES-256 (NIST SP 800-38D with a 256-bit key)."""
INDEX_KEY_BYTES = 32
PEPPER_BYTES = 32
JWT_KEY_MIN_BYTES = 32
"""At least the output size of HMAC-SHA256 (RFC 7518 section 3.2)."""
JWT_KEY_MAX_BYTES = 1024
KID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
"""Key ids: short, URL-safe, never '.', ':' or '|' (they are separators in tokens)."""

_FIELDS = frozenset(
    ("version", "data_keys", "active_data_key", "index_key", "jwt_keys", "active_jwt_key", "pepper")
)


class KeyRingError(ValueError):
    """A key ring is invalid (wrong length, unknown active key id, malformed key id)."""


class KeyFileError(KeyRingError):
    """A key file or key document cannot be used; the message names the field, not its value."""


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class KeyRing:
    """Every secret of a deployment; immutable, validated on construction.

    The key maps are stored as read-only copies. ``repr`` shows key ids only. Raises
    :class:`KeyRingError` when a key has the wrong length, a key id is malformed, or an
    active key id names no key.
    """

    data_keys: Mapping[str, bytes]
    active_data_kid: str
    index_key: bytes
    jwt_keys: Mapping[str, bytes]
    active_jwt_kid: str
    pepper: bytes

    def __post_init__(self) -> None:
        _check_keys("data_keys", self.data_keys, DATA_KEY_BYTES, DATA_KEY_BYTES)
        _check_keys("jwt_keys", self.jwt_keys, JWT_KEY_MIN_BYTES, JWT_KEY_MAX_BYTES)
        if self.active_data_kid not in self.data_keys:
            raise KeyRingError("active_data_key names no key in data_keys")
        if self.active_jwt_kid not in self.jwt_keys:
            raise KeyRingError("active_jwt_key names no key in jwt_keys")
        for name, size in (("index_key", INDEX_KEY_BYTES), ("pepper", PEPPER_BYTES)):
            value = getattr(self, name)
            if not isinstance(value, bytes | bytearray) or len(value) != size:
                raise KeyRingError(f"{name} must be exactly {size} bytes")
            object.__setattr__(self, name, bytes(value))
        for name in ("data_keys", "jwt_keys"):
            frozen = {kid: bytes(key) for kid, key in getattr(self, name).items()}
            object.__setattr__(self, name, MappingProxyType(frozen))

    def __repr__(self) -> str:
        return (
            f"KeyRing(data_kids={sorted(self.data_keys)}, active_data_kid={self.active_data_kid!r},"
            f" jwt_kids={sorted(self.jwt_keys)}, active_jwt_kid={self.active_jwt_kid!r})"
        )


def _check_keys(field: str, keys: Mapping[str, bytes], low: int, high: int) -> None:
    """Raise KeyRingError unless ``keys`` is a non-empty map of well-formed ids to keys."""
    if not isinstance(keys, Mapping) or not keys:
        raise KeyRingError(f"{field} must map at least one key id to a key")
    for kid, key in keys.items():
        if not isinstance(kid, str) or not KID_PATTERN.fullmatch(kid):
            raise KeyRingError(f"a key id in {field} is malformed (1-32 of A-Z a-z 0-9 _ -)")
        if not isinstance(key, bytes | bytearray) or not low <= len(key) <= high:
            size = f"exactly {low}" if low == high else f"{low} to {high}"
            raise KeyRingError(f"key {kid!r} in {field} must be {size} bytes")


def new_kid() -> str:
    """A fresh random key id: 8 lowercase base32 characters (40 random bits)."""
    return base64.b32encode(secrets.token_bytes(5)).decode("ascii").lower()


def generate_keyring() -> KeyRing:
    """A new key ring with one fresh key of each kind, from the OS CSPRNG (``secrets``)."""
    data_kid, jwt_kid = new_kid(), new_kid()
    return KeyRing(
        data_keys={data_kid: secrets.token_bytes(DATA_KEY_BYTES)},
        active_data_kid=data_kid,
        index_key=secrets.token_bytes(INDEX_KEY_BYTES),
        jwt_keys={jwt_kid: secrets.token_bytes(JWT_KEY_MIN_BYTES)},
        active_jwt_kid=jwt_kid,
        pepper=secrets.token_bytes(PEPPER_BYTES),
    )


def _unused_kid(taken: Mapping[str, bytes]) -> str:
    kid = new_kid()
    while kid in taken:  # 40 random bits: a clash is rare, but must not replace a key
        kid = new_kid()
    return kid


def add_data_key(ring: KeyRing) -> KeyRing:
    """A copy of ``ring`` with a fresh active data key; old keys stay to decrypt old values."""
    kid = _unused_kid(ring.data_keys)
    keys = {**ring.data_keys, kid: secrets.token_bytes(DATA_KEY_BYTES)}
    return dataclasses.replace(ring, data_keys=keys, active_data_kid=kid)


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def dump_keyring(ring: KeyRing) -> str:
    """The key document (JSON, shape in the module docstring) of ``ring``; it is secret."""
    document = {
        "version": KEY_FILE_VERSION,
        "data_keys": {kid: _b64(key) for kid, key in ring.data_keys.items()},
        "active_data_key": ring.active_data_kid,
        "index_key": _b64(ring.index_key),
        "jwt_keys": {kid: _b64(key) for kid, key in ring.jwt_keys.items()},
        "active_jwt_key": ring.active_jwt_kid,
        "pepper": _b64(ring.pepper),
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _decode(field: str, value: Any) -> bytes:
    """Strict standard base64 of one key; the error names ``field`` only."""
    if not isinstance(value, str):
        raise KeyFileError(f"{field} must be a base64 string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise KeyFileError(f"{field} is not valid base64") from None


def _decode_map(field: str, value: Any) -> dict[str, bytes]:
    if not isinstance(value, dict) or not value:
        raise KeyFileError(f"{field} must be a non-empty object of key id to base64 key")
    decoded: dict[str, bytes] = {}
    for kid, key in value.items():
        if not KID_PATTERN.fullmatch(kid):  # checked before use in any message
            raise KeyFileError(f"a key id in {field} is malformed (1-32 of A-Z a-z 0-9 _ -)")
        decoded[kid] = _decode(f"{field}[{kid!r}]", key)
    return decoded


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a repeated name (which would silently drop a key)."""
    document = dict(pairs)
    if len(document) != len(pairs):
        raise KeyFileError("a field or key id appears twice in one object")
    return document


def parse_keyring(text: str) -> KeyRing:
    """Parse and validate a key document (JSON, shape in the module docstring).

    Raises :class:`KeyFileError` naming the first problem (invalid JSON, unknown version,
    missing, unknown or repeated field, bad base64, wrong key length, active key id absent);
    messages never contain key material.
    """
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:  # its message quotes no document content
        raise KeyFileError(f"not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(document, dict):
        raise KeyFileError("the key document must be a JSON object")
    version = document.get("version")
    if type(version) is not int or version != KEY_FILE_VERSION:  # true == 1 in Python
        raise KeyFileError(f"unsupported key file version (expected {KEY_FILE_VERSION})")
    if missing := sorted(_FIELDS - document.keys()):
        raise KeyFileError(f"missing field(s): {', '.join(missing)}")
    if document.keys() - _FIELDS:  # not named: a misplaced key could be the name
        raise KeyFileError(f"unknown field(s); version 1 has only: {', '.join(sorted(_FIELDS))}")
    for field in ("active_data_key", "active_jwt_key"):
        if not isinstance(document[field], str) or not KID_PATTERN.fullmatch(document[field]):
            raise KeyFileError(f"{field} is not a well-formed key id")
    try:
        return KeyRing(
            data_keys=_decode_map("data_keys", document["data_keys"]),
            active_data_kid=document["active_data_key"],
            index_key=_decode("index_key", document["index_key"]),
            jwt_keys=_decode_map("jwt_keys", document["jwt_keys"]),
            active_jwt_kid=document["active_jwt_key"],
            pepper=_decode("pepper", document["pepper"]),
        )
    except KeyFileError:
        raise
    except KeyRingError as exc:
        raise KeyFileError(str(exc)) from None


def is_private(path: str | os.PathLike[str]) -> bool:
    """True when no one but the owner may read or write the file (no group/other bits).

    Always True on Windows, where POSIX mode bits do not describe access.
    """
    if os.name == "nt":
        return True
    return os.stat(path).st_mode & 0o077 == 0


def load_key_file(path: str | os.PathLike[str], *, allow_shared: bool = False) -> KeyRing:
    """Read and validate the key file at ``path``.

    Raises :class:`KeyFileError` (message prefixed with the path) when the file is malformed,
    or when group or others have any access to it and ``allow_shared`` is false (like
    OpenSSH with a private key); :class:`FileNotFoundError` when it does not exist.
    """
    if not allow_shared and not is_private(path):
        raise KeyFileError(f"{path}: group or others may access this key file; chmod 600 it")
    try:
        return parse_keyring(Path(path).read_text(encoding="utf-8-sig"))  # a BOM is harmless
    except UnicodeDecodeError:  # its message quotes the offending byte
        raise KeyFileError(f"{path}: not UTF-8 text") from None
    except KeyFileError as exc:
        raise KeyFileError(f"{path}: {exc}") from None


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX); a lost key file loses the data."""
    if os.name == "nt":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_key_file(path: str | os.PathLike[str], ring: KeyRing, *, overwrite: bool = False) -> None:
    """Write ``ring`` to ``path`` atomically, readable by the owner only (mode 0600).

    The document goes to a 0600 temporary file in the same directory, is flushed to disk,
    then takes the final name in one step: ``os.replace`` when ``overwrite`` is true, else
    ``os.link``, which fails if the name exists, so two processes creating the key file at
    once never replace each other's keys. Raises :class:`FileExistsError` when ``path``
    exists and ``overwrite`` is false.
    """
    target = Path(path)
    # mkstemp creates the file with O_EXCL and mode 0600 (a umask can only remove bits).
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as tmp:
            tmp.write(dump_keyring(ring))
            tmp.flush()
            os.fsync(tmp.fileno())
        if overwrite:
            os.replace(tmp_name, target)
        else:
            os.link(tmp_name, target)
    finally:
        with contextlib.suppress(FileNotFoundError):  # gone after os.replace
            os.unlink(tmp_name)
    _fsync_directory(target.parent)


def load_or_create_key_file(path: str | os.PathLike[str]) -> tuple[KeyRing, bool]:
    """Load the key file, or create it with fresh keys on first start; ``(ring, created)``.

    For the embedded default. Creates a missing parent directory with mode 0700. When two
    processes start at once, one creates the file and both return its keys.
    """
    target = Path(path)
    try:
        return load_key_file(target), False
    except FileNotFoundError:
        pass
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    ring = generate_keyring()
    try:
        write_key_file(target, ring)
    except FileExistsError:
        return load_key_file(target), False
    return ring, True
