"""Account errors, each with a stable ``code``."""

from __future__ import annotations

from emporium.core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
)


class InvalidCredentials(Unauthorized):
    """Unknown e-mail, wrong password or inactive account: the three look the same."""

    code = "invalid_credentials"


class TokenReused(Unauthorized):
    """A refresh token was used twice: the whole session has been revoked."""

    code = "token_reused"
    keep_changes = True


class SessionEnded(Unauthorized):
    """The session was logged out, revoked or timed out."""

    code = "session_ended"


class EmailTaken(Conflict):
    """Another account uses that e-mail."""

    code = "email_taken"


class WeakPassword(InvalidInput):
    """The password breaks the password policy."""

    code = "weak_password"


class AccountNotFound(NotFound):
    """No such account (or not visible to the caller)."""

    code = "user_not_found"


class AddressNotFound(NotFound):
    """No such address of the caller."""

    code = "address_not_found"


class TooManyAddresses(Conflict):
    """The caller already keeps the most addresses an account may hold."""

    code = "too_many_addresses"


class SessionNotFound(NotFound):
    """No such session of the caller."""

    code = "session_not_found"


class RoleRequired(Forbidden):
    """The caller's roles do not allow this operation."""

    code = "forbidden"


class AccountTokenInvalid(DomainError):
    """A password-reset or e-mail verification token is unknown, used or expired (the three
    look the same)."""

    status, code, title = 400, "invalid_or_expired_token", "Invalid or expired token"


class LoginFailed(InvalidCredentials):
    """A failed sign-in: same answer as :class:`InvalidCredentials`, but the transaction
    commits so that the failure is counted (brute-force throttle)."""

    keep_changes = True


class MfaRequired(Forbidden):
    """Staff and admin operations need an account with MFA and a session that used it."""

    code = "mfa_required"


class MfaAlreadyEnabled(Conflict):
    """MFA is on already: disable it first to enrol a new authenticator."""

    code = "mfa_already_enabled"


class MfaNotStarted(Conflict):
    """Confirmation without an enrolment in progress."""

    code = "mfa_not_started"


class MfaNotEnabled(Conflict):
    """MFA is not on for this account."""

    code = "mfa_not_enabled"


class InvalidMfaCode(InvalidInput):
    """A signed-in user gave a wrong, expired or already used code (the transaction commits,
    so that the failure is counted)."""

    code = "invalid_mfa_code"
    keep_changes = True


class MfaCodeRejected(Unauthorized):
    """The second sign-in step failed; the failure is counted (the transaction commits)."""

    code = "invalid_mfa_code"
    keep_changes = True


class MfaTokenInvalid(Unauthorized):
    """The ``mfa_token`` is unknown, expired, used, or spent too many attempts."""

    code = "invalid_mfa_token"
    keep_changes = True


class InvalidApiKey(Unauthorized):
    """The ``X-API-Key`` is unknown, revoked or expired (the three look the same)."""

    code = "invalid_api_key"


class ScopeRequired(Forbidden):
    """The API key lacks the scope this operation needs."""

    code = "insufficient_scope"


class ApiKeyNotFound(NotFound):
    """No such API key."""

    code = "api_key_not_found"
