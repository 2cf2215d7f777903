"""jobs: the outbox of domain events, the durable job table and the runner that drains them.

Owns ``outbox_event`` and ``job``. May import: ``emporium.audit`` (manual retries) and
``emporium.core``. Commerce rooms record an event with
:func:`emporium.jobs.outbox.emit_event` in their own transaction (``record_event``: the same
row by a Core insert at once, for a hot path that adds no ORM object); handlers (e-mail,
webhooks, clean-up) are registered on a :class:`emporium.jobs.registry.Registry` by the rooms
that own them, and run by :class:`emporium.jobs.runner.Runner` inside ``emporium serve`` or in any
number of ``emporium worker`` processes. :mod:`emporium.jobs.metrics` counts job runs and
reads the queue for ``/metrics`` at scrape time. See docs/adr/0009-jobs-outbox-webhooks.md.
"""
