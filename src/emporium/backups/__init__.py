"""backups: encrypted, mirrored snapshots of the database and the key file, and restores.

Owns ``backup`` and ``backup_copy``. May import: ``emporium.core``, ``emporium.jobs``,
``emporium.mail``, ``emporium.audit`` (backups made, asked for and restored are audit events)
and ``emporium.accounts`` (the admins an alert goes to; route guards come from
``jobs.routes.ADMIN``); never a commerce room: the invariants a verify checks are plain
SQL on the scratch database. Publishes :func:`emporium.backups.service.create_backup`,
:func:`~emporium.backups.restore.verify_backup`, :func:`~emporium.backups.restore.restore_backup`,
:func:`~emporium.backups.service.prune_backups`, the job handlers
(:func:`emporium.backups.jobs.register`) and ``GET/POST /backups``. Snapshots are taken with
the engines' own tools (SQLite's online backup API, ``pg_dump -Fc``), encrypted to age
recipients and copied to every destination. See docs/adr/0021-backups.md.
"""
