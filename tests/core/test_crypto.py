"""Field encryption and blind indexes, attacked: tampering, swapping, unknown keys, garbage."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import random
import re
import string

import pytest

from emporium.core.crypto.keys import KeyRing, add_data_key, generate_keyring
from emporium.core.crypto.sealing import (
    DecryptionError,
    blind_index,
    decrypt_field,
    encrypt_field,
    key_id_of,
    needs_reencryption,
    normalize_email,
    reencrypt_field,
)

PLACE = {"table": "user", "column": "email", "row_id": "0190f3a4-7c1d-7000-8000-000000000001"}
TOKEN = re.compile(r"^v1\.[a-z2-7]{8}\.[A-Za-z0-9_-]+$")


@pytest.fixture
def ring() -> KeyRing:
    """A fresh key ring per test."""
    return generate_keyring()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _flip_bit(token: str, byte_index: int) -> str:
    """``token`` with one bit of its binary part flipped (negative index: from the end)."""
    prefix, body = token.rsplit(".", 1)
    raw = bytearray(_b64url_decode(body))
    raw[byte_index] ^= 0x01
    return f"{prefix}.{_b64url_encode(bytes(raw))}"


def _random_texts(count: int) -> list[str]:
    """Text from all over Unicode (no lone surrogates, which UTF-8 cannot carry)."""
    rng = random.Random(20240601)
    alphabet = [chr(c) for c in range(0x20, 0x2FFF)] + ["\U0001f600", "\u200d", "\x00"]
    return ["".join(rng.choices(alphabet, k=rng.randint(0, 300))) for _ in range(count)]


SAMPLES = [
    "",
    "alice@example.com",
    "Zoë Ünal-Þórsdóttir",
    "東京都千代田区千代田1-1",
    "+49 30 1234567",
    "שלום עולם",
    "👩\u200d👩\u200d👧 family",
    "e\u0301 decomposed",
    "x" * 100_000,
    *_random_texts(40),
]


@pytest.mark.parametrize("plaintext", SAMPLES)
def test_round_trip_keeps_any_text(ring: KeyRing, plaintext: str) -> None:
    """Whatever goes in comes back out unchanged, as ASCII text fit for a TEXT column."""
    token = encrypt_field(ring, plaintext, **PLACE)
    assert TOKEN.match(token)
    assert token.isascii()
    assert decrypt_field(ring, token, **PLACE) == plaintext


def test_ciphertext_does_not_show_the_plaintext(ring: KeyRing) -> None:
    """Neither the value nor its base64 appears in the stored token."""
    email = "alice@example.com"
    token = encrypt_field(ring, email, **PLACE)
    assert email not in token
    assert _b64url_encode(email.encode()) not in token


def test_same_value_encrypts_differently_each_time(ring: KeyRing) -> None:
    """A fresh nonce per value: equal plaintexts do not give equal tokens or nonces."""
    tokens = {encrypt_field(ring, "alice@example.com", **PLACE) for _ in range(50)}
    assert len(tokens) == 50
    nonces = {_b64url_decode(t.rsplit(".", 1)[1])[:12] for t in tokens}
    assert len(nonces) == 50


@pytest.mark.parametrize(
    "moved",
    [
        {"row_id": "0190f3a4-7c1d-7000-8000-000000000002"},
        {"column": "phone"},
        {"table": "address"},
        {"table": "user", "column": "email|0190f3a4", "row_id": "7c1d"},
        {"row_id": PLACE["row_id"].upper()},
    ],
)
def test_value_moved_to_another_place_fails(ring: KeyRing, moved: dict[str, str]) -> None:
    """An attacker with database write access cannot copy a value to another row or column."""
    token = encrypt_field(ring, "alice@example.com", **PLACE)
    with pytest.raises(DecryptionError) as caught:
        decrypt_field(ring, token, **{**PLACE, **moved})
    assert "alice" not in str(caught.value)


@pytest.mark.parametrize("byte_index", [0, 11, 12, 20, -17, -16, -1])
def test_flipped_bit_in_nonce_ciphertext_or_tag_fails(ring: KeyRing, byte_index: int) -> None:
    """Any changed bit (nonce, ciphertext or tag) is detected, not decrypted to garbage."""
    token = encrypt_field(ring, "alice@example.com", **PLACE)
    with pytest.raises(DecryptionError):
        decrypt_field(ring, _flip_bit(token, byte_index), **PLACE)


def test_changed_key_id_fails(ring: KeyRing) -> None:
    """The key id is bound in: relabelling a value fails even if both ids hold the same key."""
    key = ring.data_keys[ring.active_data_kid]
    twins = dataclasses.replace(
        ring, data_keys={"first": key, "second": key}, active_data_kid="first"
    )
    token = encrypt_field(twins, "alice@example.com", **PLACE)
    relabelled = f"v1.second.{token.rsplit('.', 1)[1]}"
    with pytest.raises(DecryptionError):
        decrypt_field(twins, relabelled, **PLACE)
    rotated = add_data_key(ring)
    token = encrypt_field(ring, "alice@example.com", **PLACE)
    with pytest.raises(DecryptionError):
        decrypt_field(rotated, f"v1.{rotated.active_data_kid}.{token.rsplit('.', 1)[1]}", **PLACE)


def test_unknown_key_id_fails(ring: KeyRing) -> None:
    """A value from another deployment (or a deleted key) names a key id the ring lacks."""
    token = encrypt_field(generate_keyring(), "alice@example.com", **PLACE)
    with pytest.raises(DecryptionError, match="not in the key ring"):
        decrypt_field(ring, token, **PLACE)


def test_same_key_id_but_another_key_fails(ring: KeyRing) -> None:
    """A ring whose key under the same id differs (a wrong key file) cannot decrypt."""
    token = encrypt_field(ring, "alice@example.com", **PLACE)
    impostor = KeyRing(
        data_keys={ring.active_data_kid: bytes(32)},
        active_data_kid=ring.active_data_kid,
        index_key=ring.index_key,
        jwt_keys=ring.jwt_keys,
        active_jwt_kid=ring.active_jwt_kid,
        pepper=ring.pepper,
    )
    with pytest.raises(DecryptionError):
        decrypt_field(impostor, token, **PLACE)


def _garbage(token: str) -> list[object]:
    kid = token.split(".")[1]
    body = token.rsplit(".", 1)[1]
    return [
        "",
        "alice@example.com",
        "v1",
        "v1.",
        f"v1.{kid}",
        f"v1.{kid}.",
        f"v2.{kid}.{body}",
        f"V1.{kid}.{body}",
        f"v1..{body}",
        f"v1.{kid}.{body}.extra",
        f"v1.{kid}:x.{body}",
        f"v1.{kid}.{body[:10]}",  # shorter than nonce + tag
        f"v1.{kid}.{body[:-1]}",  # truncated
        f"v1.{kid}.{body[:-5]}",
        f"v1.{kid}.{body}A",  # one base64 char too many: impossible length
        f"v1.{kid}.{body}==",  # padding
        f"v1.{kid}.{body.replace('-', '+').replace('_', '/')}+/",
        f"v1.{kid}.{body} ",
        f" {token}",
        f"v1.{kid}.é{body}",
        f"v1.{'k' * 40}.{body}",
        token.encode(),  # bytes from a driver, not text
        None,
    ]


def test_garbage_raises_decryption_error_only(ring: KeyRing) -> None:
    """Truncated, padded, re-alphabeted or foreign tokens raise DecryptionError, nothing else."""
    token = encrypt_field(ring, "alice@example.com", **PLACE)
    for bad in _garbage(token):
        with pytest.raises(DecryptionError):
            decrypt_field(ring, bad, **PLACE)  # type: ignore[arg-type]
        with contextlib.suppress(DecryptionError):  # a truncation can still parse
            assert key_id_of(bad) == ring.active_data_kid  # type: ignore[arg-type]


def test_non_canonical_base64_is_refused(ring: KeyRing) -> None:
    """Each value has one spelling: changing unused trailing base64 bits is refused."""
    token = encrypt_field(ring, "a", **PLACE)
    prefix, body = token.rsplit(".", 1)
    assert len(body) % 4 != 0  # the last character carries unused bits
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    variants = [f"{prefix}.{body[:-1]}{c}" for c in alphabet if c != body[-1]]
    same_bytes = [
        v for v in variants if _b64url_decode(v.rsplit(".", 1)[1]) == _b64url_decode(body)
    ]
    assert same_bytes
    for variant in same_bytes:
        with pytest.raises(DecryptionError):
            decrypt_field(ring, variant, **PLACE)


def test_empty_place_is_refused(ring: KeyRing) -> None:
    """A value cannot be bound to nothing (a row id not yet assigned is a bug, not a place)."""
    for empty in ("table", "column", "row_id"):
        with pytest.raises(ValueError, match="non-empty"):
            encrypt_field(ring, "x", **{**PLACE, empty: ""})


def test_rotation_keeps_old_values_readable_and_flags_them(ring: KeyRing) -> None:
    """After a new key: old values decrypt, are flagged, re-encrypt once, then are left alone."""
    old = encrypt_field(ring, "alice@example.com", **PLACE)
    rotated = add_data_key(ring)
    assert key_id_of(old) == ring.active_data_kid
    assert needs_reencryption(rotated, old)
    assert not needs_reencryption(ring, old)
    assert decrypt_field(rotated, old, **PLACE) == "alice@example.com"

    new = reencrypt_field(rotated, old, **PLACE)
    assert key_id_of(new) == rotated.active_data_kid
    assert not needs_reencryption(rotated, new)
    assert decrypt_field(rotated, new, **PLACE) == "alice@example.com"
    assert reencrypt_field(rotated, new, **PLACE) == new  # resumable: no second rewrite


def test_reencryption_keeps_the_place_binding(ring: KeyRing) -> None:
    """Rotation cannot be used to launder a value moved to another row."""
    old = encrypt_field(ring, "alice@example.com", **PLACE)
    rotated = add_data_key(ring)
    with pytest.raises(DecryptionError):
        reencrypt_field(rotated, old, **{**PLACE, "row_id": "another-row"})


@pytest.mark.parametrize(
    "variant",
    [
        "alice@example.com",
        "Alice@Example.COM",
        "  ALICE@EXAMPLE.COM\n",
        "\tAlIcE@eXaMpLe.CoM ",
        "".join(chr(ord(c) + 0xFEE0) for c in "alice@example.com"),  # full-width forms
        "\u00a0alice@example.com\u2003",  # no-break and em spaces
    ],
)
def test_blind_index_is_equal_for_equivalent_emails(ring: KeyRing, variant: str) -> None:
    """Case, surrounding whitespace and compatibility forms do not make a second account."""
    expected = blind_index(ring, normalize_email("alice@example.com"), purpose="user.email")
    assert blind_index(ring, normalize_email(variant), purpose="user.email") == expected


def test_normalize_email_folds_case_fully() -> None:
    """Full case folding, not lower(): ß and SS agree, so do composed and decomposed forms."""
    assert normalize_email("STRASSE@example.de") == normalize_email("straße@example.de")
    assert normalize_email("Ze\u0301@example.fr") == normalize_email("Z\u00e9@example.fr")
    assert normalize_email("  Bob@Example.com ") == "bob@example.com"


def test_blind_index_separates_distinct_values(ring: KeyRing) -> None:
    """Different addresses give different indexes."""
    first = blind_index(ring, "alice@example.com", purpose="user.email")
    assert first != blind_index(ring, "alice@example.org", purpose="user.email")
    assert first != blind_index(ring, "alice@example.co", purpose="user.email")


def test_blind_index_depends_on_purpose_and_key(ring: KeyRing) -> None:
    """One derived key per purpose, and another index key gives unrelated indexes."""
    email = "alice@example.com"
    base = blind_index(ring, email, purpose="user.email")
    assert base == blind_index(ring, email, purpose="user.email")  # deterministic
    assert base != blind_index(ring, email, purpose="newsletter.email")
    assert base != blind_index(ring, email, purpose="user.emai")
    assert base != blind_index(generate_keyring(), email, purpose="user.email")


def test_blind_index_reveals_nothing_readable(ring: KeyRing) -> None:
    """The index is 64 hex characters, neither the address nor its plain hash."""
    email = "alice@example.com"
    index = blind_index(ring, email, purpose="user.email")
    assert re.fullmatch(r"[0-9a-f]{64}", index)
    assert "alice" not in index
    assert "example" not in index
    assert index != hashlib.sha256(email.encode()).hexdigest()  # a dictionary would find it


def test_blind_index_needs_a_purpose(ring: KeyRing) -> None:
    """An index without a purpose would be shared by every use."""
    with pytest.raises(ValueError, match="purpose"):
        blind_index(ring, "alice@example.com", purpose="")
