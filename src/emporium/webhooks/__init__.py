"""webhooks: admin-registered endpoints and signed, retried, recorded deliveries of events.

Owns ``webhook_endpoint``, ``webhook_delivery`` and ``webhook_attempt``. Imports only
``core`` and the platform room ``jobs`` (it subscribes to the public event types there).
Deliveries follow the Standard Webhooks specification (signed with its reference library),
and never reach loopback, link-local or private addresses unless
``EMPORIUM_WEBHOOKS_ALLOW_PRIVATE`` is set (``webhooks.addresses``).
"""
