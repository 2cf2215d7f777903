"""The accounts room: users, credentials, sessions, refresh tokens, addresses, roles.

Owns the tables ``user_account``, ``auth_session``, ``refresh_token`` and ``address``.
Personal data (e-mail, names, phone, addresses, session IP addresses) is stored encrypted
(``core.crypto``); e-mail lookups use a keyed blind index.
May import: ``emporium.core``. Publishes ``service`` (register, log in, refresh, log out,
profile and admin verbs), ``identity`` (who is calling, role checks) and ``routes``.
"""
