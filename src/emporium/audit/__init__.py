"""audit: the audit trail, a hash chain of who did what and who read whose personal data.

Owns ``audit_event`` and ``audit_chain``. May import: ``emporium.core``. Rooms record an event
with :func:`emporium.audit.chain.record_audit` in the transaction of the change (or the read)
it describes, like ``jobs.outbox.emit_event``; the actor, the pseudonymised client address and
the request id come from ``core.actor`` (set per request by the middleware and the accounts
room; ``acting_as("cli")`` on the command line, ``system`` in jobs). Publishes ``chain``
(``record_audit``, ``verify_chain``), ``service`` (``list_events``, ``export_events``,
``prune_events``) and ``routes`` (``GET /audit-events``, admin). PostgreSQL refuses UPDATE and
DELETE on ``audit_event`` (a trigger, see the migration); pruning is the one documented way
round it. See docs/adr/0022-audit-trail.md.
"""
