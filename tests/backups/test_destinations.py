"""A destination down during a backup: the others' copies succeed and count, the failure is
recorded per destination (``GET /backups``), counted, e-mailed to admins, and retried by the
job runner until the destination is back. Also: the schedule makes one backup per period
however many workers run it at once."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from backups.conftest import s3_client
from conftest import SignIn
from emporium.app import create_app
from emporium.backups.destinations import open_destination
from emporium.core.config import Settings
from emporium.core.db.base import create_engine, create_sessionmaker
from emporium.jobs.runner import Runner
from mail.test_mail import folder_messages, text_of
from runjobs import drain

API = "/api/v1"


def _failures(url: str) -> float:
    return REGISTRY.get_sample_value("emporium_backup_failures_total", {"destination": url}) or 0.0


async def test_a_destination_down_is_recorded_reported_and_retried(
    backup_settings: Settings, sign_in: SignIn, tmp_path: Path
) -> None:
    endpoint = backup_settings.backup_s3_endpoint_url or ""
    down = f"s3://not-yet-{uuid.uuid4().hex[:12]}/shop"
    settings = backup_settings.model_copy(
        update={
            "backup_destinations": [*backup_settings.backup_destinations[:2], down],
            "jobs_backoff_seconds": 0.05,
            "jobs_backoff_max_seconds": 0.1,
        }
    )
    admin = await sign_in(roles=["admin", "staff"], email="ops@example.com")
    failures_before = _failures(down)
    async with AsyncTestClient(app=create_app(settings)) as client:
        queued = await client.post(f"{API}/backups", headers=admin)
        assert queued.status_code == 202, queued.text
        await drain(client)
        listed = (await client.get(f"{API}/backups", headers=admin)).json()["items"]
        assert len(listed) == 1
        trail = await client.get(
            f"{API}/audit-events", params={"object_type": "backup"}, headers=admin
        )
        made = [(e["action"], e["actor"]["type"]) for e in trail.json()["items"]]
        assert made == [("backup.created", "system")]  # made by the job runner
        asked = await client.get(
            f"{API}/audit-events", params={"action": "backup.requested"}, headers=admin
        )
        assert [e["object_id"] for e in asked.json()["items"]] == [queued.json()["job_id"]]
        copies = {c["destination"]: c for c in listed[0]["copies"]}
        assert [copies[u]["status"] for u in settings.backup_destinations] == [
            "done",
            "done",
            "failed",
        ]
        assert "NoSuchBucket" in copies[down]["last_error"]
        assert _failures(down) >= failures_before + 1
        for url in settings.backup_destinations[:2]:
            assert open_destination(url, settings).backup_ids() == [listed[0]["id"]]
            success = REGISTRY.get_sample_value(
                "emporium_backup_last_success_timestamp_seconds", {"destination": url}
            )
            assert success is not None
        alerts = [m for m in folder_messages(settings.mail_dir) if m["To"] == "ops@example.com"]
        assert len(alerts) == 1
        assert down in text_of(alerts[0])

        # The destination comes back: the next retry copies the backup there.
        s3_client(endpoint).create_bucket(Bucket=down.split("/")[2])
        await asyncio.sleep(0.3)
        await drain(client)
        listed = (await client.get(f"{API}/backups", headers=admin)).json()["items"]
        copies = {c["destination"]: c for c in listed[0]["copies"]}
        assert copies[down]["status"] == "done"
        assert copies[down]["last_error"] is None
        assert open_destination(down, settings).backup_ids() == [listed[0]["id"]]
        assert not (settings.backup_spool_dir / listed[0]["id"]).exists()  # every copy made
        assert len(folder_messages(settings.mail_dir)) == len(alerts)  # one alert, not one per try


@pytest.mark.slow
async def test_the_schedule_makes_one_backup_per_period_across_two_workers(
    backup_settings: Settings,
) -> None:
    app = create_app(backup_settings)
    async with AsyncTestClient(app=app):
        registry = app.state.job_runner.registry
        engines = [create_engine(backup_settings) for _ in range(2)]
        try:
            runners = [
                Runner(registry, create_sessionmaker(e), backup_settings, name=f"w{i}")
                for i, e in enumerate(engines)
            ]
            await asyncio.gather(*(r.enqueue_schedules() for r in runners))
            await asyncio.gather(*(r.enqueue_schedules() for r in runners))
            await asyncio.gather(*(r.drain() for r in runners))
        finally:
            for engine in engines:
                await engine.dispose()
    for url in backup_settings.backup_destinations:
        assert len(open_destination(url, backup_settings).backup_ids()) == 1, url
