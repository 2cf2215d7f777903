"""What the job runner runs: every job handler, event subscription and schedule.

Kept out of ``emporium.app`` so that ``emporium worker`` loads the rooms' job handlers
without the HTTP application (routes, OpenAPI, the catalog's caches): a worker holds only
what its jobs use.
"""

from __future__ import annotations

from datetime import timedelta

from emporium.accounts import notifications
from emporium.accounts.protect import AccountsContext
from emporium.backups import jobs as backup_jobs
from emporium.core.config import Settings
from emporium.fulfilment import notices as fulfilment_notices
from emporium.jobs import service as jobs_service
from emporium.jobs.registry import Registry
from emporium.mail.transport import build_transport
from emporium.orders import cart_purge, guest_mail, idempotency
from emporium.payments import jobs as payments_jobs
from emporium.webhooks import delivery as webhook_delivery
from emporium.webhooks.delivery import WebhooksContext


def build_registry(
    settings: Settings, accounts: AccountsContext, webhooks: WebhooksContext
) -> Registry:
    """Every job handler, event subscription and schedule of the application."""
    registry = Registry()
    jobs_service.register(registry)
    transport = build_transport(settings)
    registry.on_close(transport.close)
    notifications.register(registry, accounts, transport)
    guest_mail.register(registry, accounts, transport)
    fulfilment_notices.register(registry, accounts.vault, transport)
    webhook_delivery.register(registry, webhooks)
    idempotency.register(registry)
    cart_purge.register(registry)
    backup_jobs.register(registry, settings, accounts.vault, transport)
    payments_jobs.register(
        registry,
        accounts.vault,
        transport,
        timedelta(minutes=settings.payments_reconcile_minutes),
    )
    return registry
