"""The kernel: configuration, database, errors, pagination, logging, HTTP plumbing.

Owns no business data. May import: no other room (import-linter enforces it). Publishes
``Settings``, ``Base``, the unit-of-work session dependency, ``DomainError`` and its
problem+json mapping, and keyset cursors.
"""
