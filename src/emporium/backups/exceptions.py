"""Errors of the backups room; each names the part, destination or setting at fault."""

from __future__ import annotations


class BackupError(Exception):
    """A backup, copy, verify or restore cannot go on; the message says why, in one line."""


class DestinationError(BackupError):
    """A destination refused a read or a write (unreachable, denied, missing object)."""


class PartCorrupt(BackupError):
    """A part's size or SHA-256 differs from the manifest (tampered or truncated)."""


class WrongIdentity(BackupError):
    """The identity file holds no key the backup was encrypted to."""


class NotEmpty(BackupError):
    """The database to restore into holds data (use ``--force``)."""
