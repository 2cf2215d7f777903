"""Which backups ``prune`` keeps: the last N, the newest of each recent day and week, and
anything it cannot date; and prune deleting the rest at a destination."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from emporium.backups.archive import new_backup_id
from emporium.backups.destinations import FileDestination
from emporium.backups.retention import to_keep
from emporium.backups.service import prune_backups
from emporium.core.config import Settings
from emporium.core.db.base import create_engine, create_sessionmaker

NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)


def _hourly(days: int) -> list[str]:
    """One backup an hour for ``days`` days up to NOW, oldest first."""
    return [new_backup_id(NOW - timedelta(hours=h)) for h in range(days * 24 - 1, -1, -1)]


def test_keeps_the_last_n_then_one_a_day_then_one_a_week() -> None:
    ids = _hourly(60)
    keep = to_keep(ids, NOW, keep_last=3, daily_days=7, weekly_weeks=4)
    newest = ids[-3:]
    assert set(newest) <= keep
    kept_days = {i[:8] for i in keep}
    assert len(kept_days) == len(keep - set(newest[:-1]))  # one per day beyond the last 3
    assert {f"202612{d:02d}" for d in range(1, 5)} | {
        f"202611{d:02d}" for d in range(27, 31)
    } <= kept_days
    older = [i for i in keep if i < new_backup_id(NOW - timedelta(days=8))]
    assert 1 <= len(older) <= 4  # the newest of each older week within 4 weeks
    assert all(i >= new_backup_id(NOW - timedelta(weeks=4, days=7)) for i in older)
    assert len(keep) < 20


def test_an_id_it_cannot_date_is_kept() -> None:
    assert "notes" in to_keep(
        ["notes", *_hourly(2)], NOW, keep_last=1, daily_days=0, weekly_weeks=0
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_prune_deletes_what_retention_drops_at_every_destination(
    settings: Settings, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    ids = [new_backup_id(now - timedelta(days=d)) for d in range(9, -1, -1)]
    urls = [(tmp_path / "a").as_uri(), (tmp_path / "b").as_uri()]
    (tmp_path / "part").write_bytes(b"x")
    for url in urls:
        for backup_id in ids:
            FileDestination(url).put(backup_id, "manifest.json", tmp_path / "part")
    pruning = settings.model_copy(
        update={
            "backup_destinations": urls,
            "backup_keep_last": 2,
            "backup_keep_daily_days": 4,
            "backup_keep_weekly_weeks": 0,
        }
    )
    engine = create_engine(pruning)
    try:
        dry = await prune_backups(pruning, create_sessionmaker(engine), dry_run=True)
        assert FileDestination(urls[0]).backup_ids() == ids
        done = await prune_backups(pruning, create_sessionmaker(engine))
    finally:
        await engine.dispose()
    assert dry == done == {url: ids[:6] for url in urls}  # days 9..4 go; 3..0 stay
    for url in urls:
        assert FileDestination(url).backup_ids() == ids[6:]
