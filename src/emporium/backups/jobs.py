"""The backups room's jobs: ``backups.create`` (scheduled every
``EMPORIUM_BACKUP_INTERVAL_MINUTES`` and queued by ``POST /backups``), ``backups.copy`` (a
failed copy, retried with the runner's backoff), ``backups.alert`` (tells admins a copy
failed) and ``backups.prune`` (daily)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import String, cast, select

from emporium.accounts.models import UserAccount
from emporium.accounts.protect import Vault
from emporium.backups.service import (
    ALERT_JOB,
    COPY_JOB,
    CREATE_JOB,
    PRUNE_JOB,
    create_backup,
    prune_backups,
    retry_copy,
)
from emporium.core.config import Settings
from emporium.jobs.registry import JobRun, Registry
from emporium.mail.service import send_once
from emporium.mail.transport import Transport

ALERT_TEMPLATE = "backup_copy_failed"
PRUNE_EVERY = timedelta(days=1)


async def _create(run: JobRun) -> None:
    await create_backup(run.settings, run.sessionmaker)


async def _copy(run: JobRun) -> None:
    await retry_copy(
        run.settings,
        run.sessionmaker,
        str(run.payload["backup_id"]),
        str(run.payload["destination"]),
    )


async def _prune(run: JobRun) -> None:
    await prune_backups(run.settings, run.sessionmaker)


async def admin_recipients(run: JobRun, vault: Vault) -> list[str]:
    """``EMPORIUM_STAFF_EMAIL`` and the e-mail of every active admin, without repeats."""
    found = [run.settings.staff_email] if run.settings.staff_email else []
    async with run.sessionmaker() as session:
        admins = await session.scalars(
            select(UserAccount).where(
                UserAccount.is_active.is_(True), cast(UserAccount.roles, String).like('%"admin"%')
            )
        )
        for user in admins:
            email = vault.open_column(UserAccount.email_enc, user.id, user.email_enc)
            if email and "admin" in user.roles and email not in found:
                found.append(email)
    return found


def _alert(vault: Vault, transport: Transport) -> Callable[[JobRun], Awaitable[None]]:
    async def handle(run: JobRun) -> None:
        context = {
            "backup_id": str(run.payload["backup_id"]),
            "destination": str(run.payload["destination"]),
            "error": str(run.payload["error"]),
            "first_name": None,
        }
        for email in await admin_recipients(run, vault):
            await send_once(
                run.sessionmaker,
                transport,
                key=f"{run.id}:{ALERT_TEMPLATE}:{email}",
                template=ALERT_TEMPLATE,
                context=context,
                to=email,
                sender=run.settings.mail_from,
            )

    return handle


def register(registry: Registry, settings: Settings, vault: Vault, transport: Transport) -> None:
    """Register the handlers, and the schedules when backups are configured (destinations
    and recipients set, ``EMPORIUM_BACKUP_INTERVAL_MINUTES`` above 0)."""
    registry.handle(CREATE_JOB, _create)
    registry.handle(COPY_JOB, _copy)
    registry.handle(ALERT_JOB, _alert(vault, transport))
    registry.handle(PRUNE_JOB, _prune)
    if settings.backup_destinations and settings.backup_interval_minutes:
        registry.every(CREATE_JOB, timedelta(minutes=settings.backup_interval_minutes))
        registry.every(PRUNE_JOB, PRUNE_EVERY)
