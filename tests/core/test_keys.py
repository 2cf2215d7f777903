"""The key ring and its key file: validation, permissions, atomic writes, first start, rotation."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emporium.core.crypto.keys import (
    JWT_KEY_MIN_BYTES,
    KeyFileError,
    KeyRing,
    KeyRingError,
    add_data_key,
    dump_keyring,
    generate_keyring,
    load_key_file,
    load_or_create_key_file,
    parse_keyring,
    write_key_file,
)

posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")


def _secrets_of(ring: KeyRing) -> list[str]:
    """Every key of ``ring`` in the spellings a message could leak: base64, hex, repr."""
    keys = [*ring.data_keys.values(), *ring.jwt_keys.values(), ring.index_key, ring.pepper]
    spellings: list[str] = []
    for key in keys:
        spellings += [base64.b64encode(key).decode(), key.hex(), repr(key)]
        spellings.append(base64.b64encode(key).decode()[:12])  # a telling fragment
    return spellings


def _assert_no_key_material(message: str, ring: KeyRing) -> None:
    for secret in _secrets_of(ring):
        assert secret not in message


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.fixture
def ring() -> KeyRing:
    """A fresh key ring per test."""
    return generate_keyring()


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Run with umask 000, the worst case for a file that must stay private."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_generated_ring_has_the_right_sizes_and_ids(ring: KeyRing) -> None:
    """AES-256 data key, 32-byte index key and pepper, >= 32-byte JWT secret, short ids."""
    assert len(ring.data_keys[ring.active_data_kid]) == 32
    assert len(ring.jwt_keys[ring.active_jwt_kid]) >= 32
    assert len(ring.index_key) == 32
    assert len(ring.pepper) == 32
    for kid in (ring.active_data_kid, ring.active_jwt_kid):
        assert len(kid) == 8
        assert kid.isalnum()
        assert kid == kid.lower()
    assert len({*ring.data_keys.values(), ring.index_key, ring.pepper}) == 3
    assert generate_keyring() != ring


def test_ring_is_immutable(ring: KeyRing) -> None:
    """Neither fields nor key maps can be changed, nor through the dict it was built from."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        ring.active_data_kid = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ring.data_keys["x"] = bytes(32)  # type: ignore[index]
    source = {"abc": bytes(32)}
    built = dataclasses.replace(ring, data_keys=source, active_data_kid="abc")
    source["abc"] = b"\x01" * 32
    assert built.data_keys["abc"] == bytes(32)


def test_repr_shows_ids_not_keys(ring: KeyRing) -> None:
    """A ring logged by accident shows key ids only."""
    text = repr(ring)
    assert ring.active_data_kid in text
    assert ring.active_jwt_kid in text
    _assert_no_key_material(text, ring)
    assert "\\x" not in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"active_data_kid": "missing"}, "active_data_key"),
        ({"active_jwt_kid": "missing"}, "active_jwt_key"),
        ({"index_key": bytes(31)}, "index_key"),
        ({"pepper": bytes(33)}, "pepper"),
        ({"data_keys": {}}, "data_keys"),
        ({"jwt_keys": {"j": bytes(31)}, "active_jwt_kid": "j"}, "jwt_keys"),
        ({"data_keys": {"a.b": bytes(32)}, "active_data_kid": "a.b"}, "malformed"),
        ({"data_keys": {"a:b": bytes(32)}, "active_data_kid": "a:b"}, "malformed"),
    ],
)
def test_invalid_ring_is_refused(ring: KeyRing, change: dict[str, Any], message: str) -> None:
    """Wrong lengths, absent active ids and ids with separators never make a ring."""
    with pytest.raises(KeyRingError, match=message) as caught:
        dataclasses.replace(ring, **change)
    _assert_no_key_material(str(caught.value), ring)


def test_add_data_key_keeps_old_keys(ring: KeyRing) -> None:
    """Rotation adds an active key and keeps the old one to decrypt old values."""
    rotated = add_data_key(ring)
    assert rotated.active_data_kid != ring.active_data_kid
    assert rotated.data_keys[ring.active_data_kid] == ring.data_keys[ring.active_data_kid]
    assert rotated.data_keys[rotated.active_data_kid] != ring.data_keys[ring.active_data_kid]
    assert len(rotated.data_keys) == 2
    assert (rotated.jwt_keys, rotated.index_key, rotated.pepper) == (
        ring.jwt_keys,
        ring.index_key,
        ring.pepper,
    )
    assert len(add_data_key(rotated).data_keys) == 3


@posix_only
@pytest.mark.usefixtures("permissive_umask")
def test_key_file_round_trip_is_private(tmp_path: Path, ring: KeyRing) -> None:
    """Written with mode 0600 even under umask 000, read back equal, no temp file left."""
    path = tmp_path / "keys.json"
    rotated = add_data_key(ring)
    signing_key = secrets.token_bytes(JWT_KEY_MIN_BYTES)
    rotated = dataclasses.replace(
        rotated, jwt_keys={**ring.jwt_keys, "jwt2": signing_key}, active_jwt_kid="jwt2"
    )
    write_key_file(path, rotated)
    assert _mode(path) == 0o600
    assert load_key_file(path) == rotated
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]
    document = json.loads(path.read_text())
    assert document["version"] == 1
    assert document["active_data_key"] == rotated.active_data_kid
    assert set(document["data_keys"]) == set(rotated.data_keys)


@posix_only
def test_write_refuses_to_overwrite_unless_asked(tmp_path: Path, ring: KeyRing) -> None:
    """Replacing a key file loses every value encrypted under it: only on request."""
    path = tmp_path / "keys.json"
    write_key_file(path, ring)
    other = generate_keyring()
    with pytest.raises(FileExistsError):
        write_key_file(path, other)
    assert load_key_file(path) == ring
    write_key_file(path, other, overwrite=True)
    assert load_key_file(path) == other
    assert _mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]


@posix_only
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602], ids=oct)
def test_shared_key_file_is_refused(tmp_path: Path, ring: KeyRing, mode: int) -> None:
    """A key file others can read (or rewrite) is refused unless explicitly allowed."""
    path = tmp_path / "keys.json"
    write_key_file(path, ring)
    path.chmod(mode)
    with pytest.raises(KeyFileError, match="chmod 600") as caught:
        load_key_file(path)
    _assert_no_key_material(str(caught.value), ring)
    assert load_key_file(path, allow_shared=True) == ring


def _document(ring: KeyRing) -> dict[str, Any]:
    return json.loads(dump_keyring(ring))  # type: ignore[no-any-return]


CORRUPTIONS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "short data key": (
        lambda d: d["data_keys"].update(
            {d["active_data_key"]: base64.b64encode(base64.b64decode(d["index_key"])[:16]).decode()}
        ),
        "32 bytes",
    ),
    "short index key": (
        lambda d: d.update(index_key=base64.b64encode(base64.b64decode(d["pepper"])[:31]).decode()),
        "index_key",
    ),
    "short jwt key": (
        lambda d: d["jwt_keys"].update(
            {d["active_jwt_key"]: base64.b64encode(base64.b64decode(d["pepper"])[:20]).decode()}
        ),
        "jwt_keys",
    ),
    "missing active kid": (lambda d: d.update(active_data_key="zzzzzzzz"), "active_data_key"),
    "absent active field": (lambda d: d.pop("active_jwt_key"), "missing field"),
    "bad base64 index key": (lambda d: d.update(index_key=d["index_key"][:-2] + "!!"), "base64"),
    "bad base64 pepper": (lambda d: d.update(pepper=d["pepper"][1:]), "base64"),
    "bad base64 data key": (
        lambda d: d["data_keys"].update({d["active_data_key"]: "%" + d["index_key"]}),
        "base64",
    ),
    "key as number": (lambda d: d.update(pepper=12345), "base64 string"),
    "wrong version": (lambda d: d.update(version=2), "version"),
    "boolean version": (lambda d: d.update(version=True), "version"),
    "unknown field": (lambda d: d.update({d["pepper"]: "oops"}), "unknown field"),
    "key in the kid's place": (
        lambda d: d.update(data_keys={d["index_key"]: d["index_key"]}, active_data_key="x"),
        "malformed",
    ),
    "key as active kid": (lambda d: d.update(active_data_key=d["pepper"]), "active_data_key"),
    "no data keys": (lambda d: d.update(data_keys={}), "data_keys"),
}


@posix_only
@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_malformed_key_file_is_refused_without_leaking(
    tmp_path: Path, ring: KeyRing, name: str
) -> None:
    """Each mistake gets a message naming the field and the path, never key material."""
    corrupt, expected = CORRUPTIONS[name]
    document = _document(ring)
    corrupt(document)
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(document))
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=expected) as caught:
        load_key_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    _assert_no_key_material(message, ring)


@pytest.mark.parametrize(
    "text",
    ["", "{", "[]", "null", '"keys"', '{"version": 1', "\ufeff{}", "{'version': 1}"],
)
def test_unparsable_key_document_is_refused(text: str) -> None:
    """Not JSON, or not an object: a KeyFileError, not a JSONDecodeError or TypeError."""
    with pytest.raises(KeyFileError):
        parse_keyring(text)


def test_repeated_key_id_is_refused(ring: KeyRing) -> None:
    """A hand-edited file naming one key id twice would silently drop a key: refused."""
    rotated = add_data_key(ring)
    old, new = ring.active_data_kid, rotated.active_data_kid
    text = dump_keyring(rotated).replace(f'"{new}": ', f'"{old}": ', 1)
    with pytest.raises(KeyFileError, match="twice") as caught:
        parse_keyring(text)
    _assert_no_key_material(str(caught.value), rotated)


def test_invalid_json_message_quotes_no_content(ring: KeyRing) -> None:
    """A truncated key file is reported by position, not by quoting what is in it."""
    text = dump_keyring(ring)
    with pytest.raises(KeyFileError, match="line") as caught:
        parse_keyring(text[: len(text) // 2])
    _assert_no_key_material(str(caught.value), ring)


@posix_only
def test_binary_key_file_does_not_leak_its_bytes(tmp_path: Path) -> None:
    """A raw binary key saved by mistake is refused without echoing any of its bytes."""
    path = tmp_path / "keys.json"
    path.write_bytes(b"\xff\xfe\x9c\x88secret-bytes")
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="UTF-8") as caught:
        load_key_file(path)
    assert "0xff" not in str(caught.value)
    assert "\\x" not in str(caught.value)


def test_missing_key_file_is_file_not_found(tmp_path: Path) -> None:
    """A missing file is not a malformed one (first start creates it)."""
    with pytest.raises(FileNotFoundError):
        load_key_file(tmp_path / "absent.json")


@posix_only
def test_load_or_create_creates_once_then_loads(tmp_path: Path) -> None:
    """First start creates a private key file (and directory); later starts read the same keys."""
    path = tmp_path / "state" / "keys.json"
    first, created = load_or_create_key_file(path)
    assert created
    assert _mode(path) == 0o600
    assert _mode(path.parent) & 0o077 == 0
    again, created_again = load_or_create_key_file(path)
    assert not created_again
    assert again == first


@posix_only
def test_concurrent_first_starts_agree_on_one_key_file(tmp_path: Path) -> None:
    """Workers starting at once never replace each other's keys: all get the same ring."""
    path = tmp_path / "keys.json"
    workers = 8
    barrier = threading.Barrier(workers)
    results: list[tuple[KeyRing, bool]] = []
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            results.append(load_or_create_key_file(path))
        except BaseException as exc:  # reported below, a thread would swallow it
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(created for _, created in results) == 1
    assert len({dump_keyring(r) for r, _ in results}) == 1
    assert load_key_file(path) == results[0][0]
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]
