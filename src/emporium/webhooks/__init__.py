"""webhooks: admin-registered endpoints and signed, retried, recorded deliveries of events.

Owns ``webhook_endpoint``, ``webhook_delivery`` and ``webhook_attempt``. May import:
``emporium.jobs`` (it subscribes to the public event types there), ``emporium.audit``
(endpoint changes, manual retries) and ``emporium.core``.
Deliveries follow the Standard Webhooks specification (signed with its reference library),
and never reach loopback, link-local or private addresses unless
``EMPORIUM_WEBHOOKS_ALLOW_PRIVATE`` is set (``webhooks.addresses``).
"""
