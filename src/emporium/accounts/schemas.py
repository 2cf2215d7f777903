"""API shapes of accounts. Inputs forbid unknown fields: roles, flags and ids cannot be set
through a body that does not offer them (mass assignment, OWASP API3:2023)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from msgspec import UNSET, Meta, Struct, UnsetType

# Surrounding white space is allowed (and stripped when stored): " A@B.com " is a@b.com.
Email = Annotated[
    str, Meta(min_length=3, max_length=254, pattern=r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$")
]
# Length rules (12..128 after normalisation) are checked by the password policy; this bound
# only stops absurd bodies before any work is done.
Password = Annotated[str, Meta(min_length=1, max_length=1024)]
PersonName = Annotated[str, Meta(min_length=1, max_length=100)]
Phone = Annotated[str, Meta(min_length=3, max_length=32, pattern=r"^\+?[0-9 ()./-]{3,32}$")]
Role = Literal["customer", "staff", "admin"]
Country = Annotated[str, Meta(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$")]
Line = Annotated[str, Meta(min_length=1, max_length=200)]


class RegisterIn(Struct, forbid_unknown_fields=True):
    """Self-registration of a customer."""

    email: Email
    password: Password
    first_name: PersonName | None = None
    last_name: PersonName | None = None
    phone: Phone | None = None


class LoginIn(Struct, forbid_unknown_fields=True):
    """E-mail and password."""

    email: Annotated[str, Meta(max_length=254)]
    password: Password


class TokenPair(Struct):
    """Tokens of a session: a short-lived JWT and an opaque, single-use refresh token."""

    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 (the scheme name, not a secret)


class RefreshIn(Struct, forbid_unknown_fields=True):
    """A refresh token, exchanged for a new pair."""

    refresh_token: Annotated[str, Meta(min_length=1, max_length=200)]


class PasswordChangeIn(Struct, forbid_unknown_fields=True):
    """The current password and the new one."""

    current_password: Password
    new_password: Password


class PasswordIn(Struct, forbid_unknown_fields=True):
    """The caller's password, to confirm a destructive action."""

    password: Password


class UserRead(Struct):
    """A user's profile (personal data: served with ``Cache-Control: no-store``)."""

    id: uuid.UUID
    email: str
    first_name: str | None
    last_name: str | None
    phone: str | None
    roles: list[str]
    is_active: bool
    mfa_enabled: bool
    email_verified: bool
    created_at: datetime


class ProfileUpdate(Struct, forbid_unknown_fields=True):
    """Fields a user may change on their own profile."""

    first_name: PersonName | UnsetType | None = UNSET
    last_name: PersonName | UnsetType | None = UNSET
    phone: Phone | UnsetType | None = UNSET


class UserCreate(Struct, forbid_unknown_fields=True):
    """An account created by an admin (staff and admins)."""

    email: Email
    password: Password
    roles: Annotated[list[Role], Meta(min_length=1, max_length=3)]
    first_name: PersonName | None = None
    last_name: PersonName | None = None


class UserAdminUpdate(Struct, forbid_unknown_fields=True):
    """What an admin may change on an account."""

    roles: Annotated[list[Role], Meta(min_length=1, max_length=3)] | UnsetType = UNSET
    is_active: bool | UnsetType = UNSET


class UserPage(Struct):
    """A keyset page of users."""

    items: list[UserRead]
    next_cursor: str | None


class SessionRead(Struct):
    """One of the caller's sessions; ``ip`` is the address it signed in from."""

    id: uuid.UUID
    device: str
    ip: str | None
    created_at: datetime
    last_used_at: datetime
    current: bool


class UserSessionRead(Struct):
    """Admin: one live session of a user: the device it signed in with, when it began and
    was last used (never its tokens or address)."""

    id: uuid.UUID
    device: str
    created_at: datetime
    last_used_at: datetime


class AddressIn(Struct, forbid_unknown_fields=True):
    """A postal address; ``country`` is an ISO 3166-1 alpha-2 code."""

    name: Line
    line1: Line
    city: Line
    postal_code: Annotated[str, Meta(min_length=1, max_length=20)]
    country: Country
    line2: Line | None = None
    region: Line | None = None
    phone: Phone | None = None


class AddressUpdate(Struct, forbid_unknown_fields=True):
    """Fields to change on an address."""

    name: Line | UnsetType = UNSET
    line1: Line | UnsetType = UNSET
    city: Line | UnsetType = UNSET
    postal_code: Annotated[str, Meta(min_length=1, max_length=20)] | UnsetType = UNSET
    country: Country | UnsetType = UNSET
    line2: Line | UnsetType | None = UNSET
    region: Line | UnsetType | None = UNSET
    phone: Phone | UnsetType | None = UNSET


class AddressRead(Struct):
    """A stored address."""

    id: uuid.UUID
    name: str
    line1: str
    city: str
    postal_code: str
    country: str
    line2: str | None = None
    region: str | None = None
    phone: str | None = None


class PersonalDataExport(Struct):
    """Every piece of personal data held on the caller (GDPR art. 15 and 20)."""

    profile: UserRead
    addresses: list[AddressRead]
    sessions: list[SessionRead]
    exported_at: datetime
    orders: list[dict[str, Any]] = []
    """The person's orders, with their e-mail and addresses and lines."""
    payments: list[dict[str, Any]] = []
    """The payments of those orders (no secrets)."""
    returns: list[dict[str, Any]] = []
    """The returns of those orders, with their lines."""
    reviews: list[dict[str, Any]] = []
    """The reviews the person wrote."""
    audit_events: list[dict[str, Any]] = []
    """Audit events about the person: their account, their orders, and what they did."""


class ForgotPasswordIn(Struct, forbid_unknown_fields=True):
    """The e-mail of the account whose password is forgotten."""

    email: Annotated[str, Meta(max_length=254)]


class ResetPasswordIn(Struct, forbid_unknown_fields=True):
    """A password-reset token from the e-mail, and the new password."""

    token: Annotated[str, Meta(min_length=1, max_length=200)]
    new_password: Password


class VerifyEmailIn(Struct, forbid_unknown_fields=True):
    """An e-mail verification token from the e-mail."""

    token: Annotated[str, Meta(min_length=1, max_length=200)]


class MfaChallengeRead(Struct):
    """The answer to a correct password of an account with MFA: present ``mfa_token`` and a
    code at ``POST /auth/login/mfa`` within a few minutes."""

    mfa_token: str
    mfa_required: bool = True


class LoginMfaIn(Struct, forbid_unknown_fields=True):
    """The second sign-in step: the challenge token and a TOTP or recovery code."""

    mfa_token: Annotated[str, Meta(min_length=1, max_length=200)]
    code: Annotated[str, Meta(min_length=1, max_length=64)]


class TotpEnrolment(Struct):
    """A new TOTP secret (base32) and its ``otpauth://`` URI for authenticator apps."""

    secret: str
    otpauth_uri: str


class TotpCodeIn(Struct, forbid_unknown_fields=True):
    """A 6-digit TOTP code."""

    code: Annotated[str, Meta(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")]


class RecoveryCodes(Struct):
    """Single-use recovery codes, shown once."""

    recovery_codes: list[str]


class MfaDisableIn(Struct, forbid_unknown_fields=True):
    """Proof to turn MFA off: a current code (TOTP or recovery) or the password."""

    code: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    password: Password | None = None


ApiScope = Literal[
    "catalog:write",
    "giftcards:read",
    "giftcards:write",
    "inventory:read",
    "inventory:write",
    "orders:read",
    "orders:write",
    "promotions:read",
    "promotions:write",
    "shipping:read",
    "shipping:write",
]


class ApiKeyCreate(Struct, forbid_unknown_fields=True):
    """A new API key: a name, its scopes and an optional expiry (RFC 3339, future)."""

    name: Annotated[str, Meta(min_length=1, max_length=100)]
    scopes: Annotated[list[ApiScope], Meta(min_length=1, max_length=len(get_args(ApiScope)))]
    expires_at: datetime | None = None


class ApiKeyRead(Struct):
    """An API key without its secret."""

    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(Struct):
    """A new API key; ``key`` is shown this once and never again."""

    id: uuid.UUID
    key: str
    prefix: str
    scopes: list[str]
    name: str
    expires_at: datetime | None


class ApiKeyPage(Struct):
    """A keyset page of API keys."""

    items: list[ApiKeyRead]
    next_cursor: str | None
