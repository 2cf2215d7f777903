"""Multi-factor authentication: TOTP (RFC 6238) and single-use recovery codes.

TOTP uses pyotp with the parameters every authenticator app understands: SHA-1, 6 digits,
30-second steps, and one step of clock drift either way. The secret (160 random bits) is
stored encrypted like other personal data (``user_account.totp_secret``). A code is
accepted at most once: the time step of the last accepted code is kept and a code of the
same or an older step is refused, so a code seen over a shoulder or in a log cannot be
replayed even within its 30 seconds (RFC 6238 section 5.2, OWASP ASVS 2.8.4).

Recovery codes: 10 per enrolment, 120 random bits each (ASVS 2.6.2 asks for at least 112),
shown once, stored as SHA-256 hashes (enough for random secrets of that size), spent by an
atomic update so two concurrent uses of one code cannot both succeed (ASVS 2.6.1).
Time comes from :func:`utcnow` of this module (the clock seam tests move).
"""

from __future__ import annotations

import base64
import re
import secrets
import uuid

import pyotp
from pyotp.exceptions import OTPVerificationError
from sqlalchemy import delete, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts import throttle
from emporium.accounts.exceptions import (
    InvalidMfaCode,
    LoginFailed,
    MfaAlreadyEnabled,
    MfaNotEnabled,
    MfaNotStarted,
)
from emporium.accounts.identity import Identity
from emporium.accounts.models import AuthSession, RecoveryCode, UserAccount
from emporium.accounts.protect import AccountsContext
from emporium.accounts.schemas import MfaDisableIn, RecoveryCodes, TotpEnrolment
from emporium.accounts.sessions import revoke_all
from emporium.accounts.tokens import hash_opaque_token
from emporium.core.clock import utcnow
from emporium.core.security_events import security_event
from emporium.jobs.outbox import emit_event

TOTP_DIGITS = 6
TOTP_INTERVAL = 30
TOTP_DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_BYTES = 15  # 120 bits: 24 base32 characters, shown in groups of 4
RECOVERY_PURPOSE = "mfa_recovery"
_TOTP_CODE = re.compile(r"[0-9]{6}")


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_INTERVAL)


def _recovery_hash(code: str) -> str:
    normalized = re.sub(r"[\s-]", "", code).upper()
    return hash_opaque_token(normalized, purpose=RECOVERY_PURPOSE)


def new_recovery_code() -> str:
    """A recovery code: 120 random bits in base32, as six groups of four characters."""
    raw = base64.b32encode(secrets.token_bytes(RECOVERY_CODE_BYTES)).decode("ascii")
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


async def _user(session: AsyncSession, user_id: uuid.UUID) -> UserAccount:
    user = await session.get(UserAccount, user_id)
    assert user is not None  # a live session's user exists (sessions cascade with it)
    return user


async def accept_totp(
    session: AsyncSession, ctx: AccountsContext, user: UserAccount, code: str
) -> bool:
    """True when ``code`` is the user's TOTP for now (one step of drift) and newer than
    every code accepted before; the step is then recorded, atomically, so it is never
    accepted again."""
    if user.totp_secret_enc is None or not _TOTP_CODE.fullmatch(code):
        return False
    secret = ctx.vault.open_column(UserAccount.totp_secret_enc, user.id, user.totp_secret_enc) or ""
    try:
        step = _totp(secret).verify_and_get_timecode(
            code, for_time=utcnow(), valid_window=TOTP_DRIFT_STEPS
        )
    except OTPVerificationError:
        return False
    claimed = await session.execute(
        update(UserAccount)
        .where(
            UserAccount.id == user.id,
            or_(UserAccount.totp_last_step.is_(None), UserAccount.totp_last_step < step),
        )
        .values(totp_last_step=step)
    )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


async def use_recovery_code(session: AsyncSession, user_id: uuid.UUID, code: str) -> bool:
    """True when ``code`` is an unused recovery code of the user; it is spent now."""
    spent = await session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == _recovery_hash(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
    )
    return bool(spent.rowcount == 1)  # type: ignore[attr-defined]


async def accept_second_factor(
    session: AsyncSession, ctx: AccountsContext, user: UserAccount, code: str
) -> str | None:
    """``"totp"`` or ``"recovery_code"`` when ``code`` is accepted as one, else None."""
    code = code.strip()
    if _TOTP_CODE.fullmatch(code):
        return "totp" if await accept_totp(session, ctx, user, code) else None
    return "recovery_code" if await use_recovery_code(session, user.id, code) else None


async def start_enrolment(
    session: AsyncSession, ctx: AccountsContext, identity: Identity
) -> TotpEnrolment:
    """Begin TOTP enrolment: a new secret (encrypted at rest) and its ``otpauth://`` URI
    (Key URI Format: issuer and e-mail as the label). Starting again replaces the secret.

    Raises MfaAlreadyEnabled (409) when MFA is on.
    """
    user = await _user(session, identity.user_id)
    if user.mfa_enabled:
        raise MfaAlreadyEnabled("MFA is already enabled; disable it first.")
    secret = pyotp.random_base32()
    user.totp_secret_enc = ctx.vault.seal_column(UserAccount.totp_secret_enc, user.id, secret)
    user.totp_last_step = None
    email = ctx.vault.open_column(UserAccount.email_enc, user.id, user.email_enc) or ""
    uri = _totp(secret).provisioning_uri(name=email, issuer_name=ctx.mfa_issuer)
    await session.flush()
    return TotpEnrolment(secret=secret, otpauth_uri=uri)


async def confirm_enrolment(
    session: AsyncSession, ctx: AccountsContext, identity: Identity, code: str, *, ip: str | None
) -> RecoveryCodes:
    """Turn MFA on with a first valid code; returns 10 new recovery codes (shown once).
    The current session counts as MFA-verified from now on; every other session of the
    account ends (it was opened with the password alone, OWASP ASVS 3.3.3), as when MFA is
    turned off.

    Raises MfaAlreadyEnabled, MfaNotStarted (409), InvalidMfaCode (422).
    """
    user = await _user(session, identity.user_id)
    if user.mfa_enabled:
        raise MfaAlreadyEnabled("MFA is already enabled.")
    if user.totp_secret_enc is None:
        raise MfaNotStarted("Start with POST /auth/mfa/totp.")
    if not await accept_totp(session, ctx, user, code):
        raise InvalidMfaCode("The code is wrong or expired.", errors=[_CODE_ERROR])
    user.mfa_enabled = True
    user.updated_at = utcnow()
    await session.execute(
        update(AuthSession).where(AuthSession.id == identity.session_id).values(mfa_verified=True)
    )
    await revoke_all(session, user.id, reason="mfa_enabled", keep=identity.session_id)
    codes = await _replace_recovery_codes(session, user.id)
    security_event(
        "user_updated", user_id=user.id, client_ip=ip, level="info", change="mfa_enabled"
    )
    emit_event(session, "security.mfa_enabled", {"user_id": str(user.id)})
    return RecoveryCodes(recovery_codes=codes)


_CODE_ERROR = {"loc": ["body", "code"], "msg": "wrong, expired or already used code"}


async def _replace_recovery_codes(session: AsyncSession, user_id: uuid.UUID) -> list[str]:
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    session.add_all(
        RecoveryCode(
            id=uuid.uuid4(), user_id=user_id, code_hash=_recovery_hash(c), created_at=utcnow()
        )
        for c in codes
    )
    await session.flush()
    return codes


async def _proof_ok(
    session: AsyncSession, ctx: AccountsContext, user: UserAccount, data: MfaDisableIn
) -> bool:
    if data.password is not None:
        return (await ctx.hasher.verify(user.password_hash, data.password)).ok
    return await accept_second_factor(session, ctx, user, data.code or "") is not None


async def disable(
    session: AsyncSession,
    ctx: AccountsContext,
    identity: Identity,
    data: MfaDisableIn,
    *,
    ip: str | None,
) -> None:
    """Turn MFA off after fresh proof: a current code or the password (exactly one).
    The secret and recovery codes are erased and every other session is revoked
    (OWASP ASVS 2.8.x, 3.3.3).

    Wrong proof counts against the account's sign-in throttle (a stolen session cannot
    brute-force the code), and while the account is slowed or locked proof is refused.

    Raises MfaNotEnabled (409), InvalidMfaCode (422), LoginFailed (401
    ``invalid_credentials``).
    """
    if (data.code is None) == (data.password is None):
        raise InvalidMfaCode(
            "Send either a current code or the password.",
            errors=[{"loc": ["body"], "msg": "exactly one of code, password"}],
        )
    user = await _user(session, identity.user_id)
    if not user.mfa_enabled:
        raise MfaNotEnabled("MFA is not enabled.")
    keys = [throttle.account_key(user.email_index)]
    refused = await throttle.refusal(session, ctx.login_policy, keys)
    if refused is not None or not await _proof_ok(session, ctx, user, data):
        if refused is None:
            await throttle.record_failure(session, ctx.login_policy, keys)
        security_event("authn_login_fail", user_id=user.id, client_ip=ip, reason="mfa_disable")
        if data.password is not None:
            raise LoginFailed("The password is wrong.")
        raise InvalidMfaCode("The code is wrong or expired.", errors=[_CODE_ERROR])
    user.mfa_enabled = False
    user.totp_secret_enc = None
    user.totp_last_step = None
    user.updated_at = utcnow()
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    await session.execute(
        update(AuthSession).where(AuthSession.id == identity.session_id).values(mfa_verified=False)
    )
    await revoke_all(session, user.id, reason="mfa_disabled", keep=identity.session_id)
    emit_event(session, "security.mfa_disabled", {"user_id": str(user.id)})
    security_event("user_updated", user_id=user.id, client_ip=ip, change="mfa_disabled")
