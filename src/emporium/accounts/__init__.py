"""The accounts room: users, credentials, sessions, refresh tokens, addresses, roles, MFA
(TOTP and recovery codes), the sign-in throttle and API keys.

Owns the tables ``user_account``, ``auth_session``, ``refresh_token``, ``address``,
``mfa_recovery_code``, ``mfa_challenge``, ``login_throttle`` and ``api_key``.
Personal data (e-mail, names, phone, addresses, session IP addresses) is stored encrypted
(``core.crypto.sealing``), and so is the TOTP secret; e-mail lookups use a keyed blind index.
May import: ``emporium.mail`` (the account e-mails), ``emporium.jobs`` (domain events and
the e-mail jobs), ``emporium.audit`` (account changes and admins' reads of personal data) and
``emporium.core``. Publishes ``service`` (register, log in, refresh, log out,
profile and admin verbs), ``signin`` and ``mfa`` (the two sign-in steps), ``api_keys``,
``identity`` (who is calling, role, MFA and scope checks, ``client_ip``), ``audiences``
(who may call a group of routes: guards, OpenAPI security, refusals) and ``routes``.
"""
