"""Secrets and personal data at rest: the key file, sealed fields and blind indexes, and the
key-set fingerprint."""
