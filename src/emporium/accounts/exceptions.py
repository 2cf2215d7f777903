"""Account errors, each with a stable ``code``."""

from __future__ import annotations

from emporium.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized


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
