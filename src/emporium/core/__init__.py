"""The kernel: configuration, clock, money, errors, logging, tracing (OpenTelemetry, off by
default: ``core.tracing``), and three subpackages.

``core.db`` (declarative base and sealed columns, engines, unit of work, change feed, keyset
pagination, outage detection, migrations), ``core.http`` (middleware, hardening, client
address, rate limits, OpenAPI declarations, API viewer, the web admin's files
(``http.admin_ui``), operations endpoints) and
``core.crypto`` (the key file, sealed fields and blind indexes, the key-set fingerprint).
``core.resources.Resources`` is the running application's engines, pools and settings in
one typed object, the ``resources`` dependency of handlers. Owns no business data.
May import: no other room (import-linter enforces it). Publishes
``Settings``, ``Base``, the unit-of-work session dependency, ``DomainError`` and its
problem+json mapping (``core.errors``), and keyset cursors.
"""
