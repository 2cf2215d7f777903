"""Which backups ``prune`` keeps: the last N, plus the newest of each recent day and week.

A grandfather-father-son scheme: ``keep_last`` newest backups, then for each of the last
``daily_days`` days (UTC) and ``weekly_weeks`` ISO weeks the newest backup made in it.
An id that does not parse as a backup id is always kept: prune never deletes what it
does not understand.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from emporium.backups.archive import created_of


def to_keep(
    ids: Iterable[str], now: datetime, *, keep_last: int, daily_days: int, weekly_weeks: int
) -> set[str]:
    """The ids among ``ids`` to keep (see the module)."""
    dated: list[tuple[datetime, str]] = []
    keep: set[str] = set()
    for backup_id in ids:
        try:
            dated.append((created_of(backup_id), backup_id))
        except ValueError:
            keep.add(backup_id)
    dated.sort(reverse=True)
    keep.update(backup_id for _, backup_id in dated[:keep_last])
    days: set[object] = set()
    weeks: set[object] = set()
    for created, backup_id in dated:
        if created >= now - timedelta(days=daily_days) and created.date() not in days:
            days.add(created.date())
            keep.add(backup_id)
        week = created.isocalendar()[:2]
        if created >= now - timedelta(weeks=weekly_weeks) and week not in weeks:
            weeks.add(week)
            keep.add(backup_id)
    return keep
