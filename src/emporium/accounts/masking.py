"""Personal fields shown to admins masked: enough to recognise a person, not to contact one.

``GET /users`` and ``GET /users/{id}`` answer with these; ``GET /users/{id}?reveal=true``
answers in clear and is audited (``user.personal_data_revealed``).
"""

from __future__ import annotations

import msgspec

from emporium.accounts.schemas import UserRead

PERSONAL_FIELDS = ("email", "first_name", "last_name", "phone")
"""The fields of ``UserRead`` that hold personal data, masked unless revealed."""


def mask_email(email: str) -> str:
    """``j***@example.com``: the first character of the local part and the domain."""
    local, at, domain = email.partition("@")
    return f"{local[:1]}***{at}{domain}" if at else f"{email[:1]}***"


def mask_phone(phone: str) -> str:
    """``+44*******12``: the first three and last two characters, the rest starred."""
    if len(phone) <= 5:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 5) + phone[-2:]


def mask_name(name: str) -> str:
    """``J***``: the first character only."""
    return f"{name[:1]}***"


def masked(user: UserRead) -> UserRead:
    """``user`` with every personal field masked (empty fields stay empty)."""
    return msgspec.structs.replace(
        user,
        email=mask_email(user.email) if user.email else user.email,
        first_name=mask_name(user.first_name) if user.first_name else user.first_name,
        last_name=mask_name(user.last_name) if user.last_name else user.last_name,
        phone=mask_phone(user.phone) if user.phone else user.phone,
    )


def present_fields(user: UserRead) -> list[str]:
    """The names of the personal fields of ``user`` that hold a value."""
    return [name for name in PERSONAL_FIELDS if getattr(user, name)]
