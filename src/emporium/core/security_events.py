"""Security events: one structured log line per event, named by the OWASP Logging
Vocabulary (``authn_login_fail``, ``authn_login_lock``, ``authn_token_reuse``,
``authz_fail``, ``excess_rate_limit_exceeded``, ``input_validation_fail``, ...).

Every line goes through the ``emporium.security`` logger, so log stores can route it on its
own. The logging configuration adds the UTC timestamp and the request id (bound by the
middleware); callers add who (``user_id``), from where (``client_ip``) and non-secret
details. Never pass a password, token, key, TOTP secret or code, or clear personal data such
as an e-mail address (OWASP ASVS 7.1.1, 7.1.2): pass an id or a keyed hash instead.
"""

from __future__ import annotations

from typing import Any, Literal

import structlog

log = structlog.get_logger("emporium.security")


def security_event(
    name: str,
    *,
    user_id: object = None,
    client_ip: str | None = None,
    level: Literal["info", "warning"] = "warning",
    **details: Any,
) -> None:
    """Log the security event ``name`` (an OWASP vocabulary name), at WARNING level unless
    ``level="info"`` (for routine events such as ``authn_login_success``).

    ``user_id`` (any id; logged as text) and ``client_ip`` are always present, ``None`` when
    unknown; ``details`` are extra non-secret fields such as ``reason``.
    """
    emit = log.info if level == "info" else log.warning
    emit(
        name,
        security_event=True,
        user_id=None if user_id is None else str(user_id),
        client_ip=client_ip,
        **details,
    )
