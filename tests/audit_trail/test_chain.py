"""The audit trail's hash chain: a whole chain verifies; an event altered, removed or inserted
behind Emporium's back is named by ``emporium audit verify``; PostgreSQL refuses UPDATE and
DELETE outright; pruning keeps what is left verifiable."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from datetime import timedelta

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.audit.chain import event_hash, record_audit, verify_chain
from emporium.audit.models import AuditEvent
from emporium.cli import main
from emporium.core.actor import acting_as
from emporium.core.clock import MovableClock, use
from emporium.core.config import Settings


async def _record(session: AsyncSession, count: int) -> list[uuid.UUID]:
    """``count`` events by the command line, committed one transaction each."""
    ids = []
    with acting_as("cli"):
        for n in range(count):
            ids.append(
                await record_audit(
                    session,
                    action="test.touched",
                    object_type="thing",
                    object_id=uuid.uuid4(),
                    details={"n": n, "fields": ["email"]},
                )
            )
            await session.commit()
    return ids


async def _cli(settings: Settings, *args: str) -> Result:
    """Run ``emporium audit ...`` (in a thread: the command runs its own event loop)."""
    env = {"EMPORIUM_DATABASE_URL": settings.database_url}
    return await asyncio.to_thread(CliRunner().invoke, main, ["audit", *args], env=env)


async def _verify(settings: Settings) -> Result:
    return await _cli(settings, "verify")


def _sqlite_only(settings: Settings) -> None:
    if not settings.is_sqlite:
        pytest.skip("PostgreSQL refuses the edit itself (test_postgresql_refuses_...)")


async def test_a_whole_chain_verifies_and_exports(
    session: AsyncSession, settings: Settings
) -> None:
    ids = await _record(session, 5)
    result = await _verify(settings)
    assert result.exit_code == 0, result.output
    assert "audit chain intact: 5 event(s)" in result.output
    exported = await _cli(settings, "export", "--since", "2000-01-01")
    assert exported.exit_code == 0, exported.output
    lines = [json.loads(line) for line in exported.stdout.splitlines() if line.startswith("{")]
    assert [line["id"] for line in lines] == [str(i) for i in ids]
    assert lines[0]["actor"] == {"type": "cli", "id": None}
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(lines))


async def test_editing_an_event_on_sqlite_is_named_by_verify(
    session: AsyncSession, settings: Settings
) -> None:
    _sqlite_only(settings)
    ids = await _record(session, 5)
    await session.execute(
        text("UPDATE audit_event SET action = 'test.innocent' WHERE id = :id"),
        {"id": ids[2].hex},
    )
    await session.commit()
    result = await _verify(settings)
    assert result.exit_code == 1
    assert f"event {ids[2]} (seq 3) was altered" in result.output
    assert "after 2 good event(s)" in result.output


async def test_removing_an_event_on_sqlite_is_named_by_verify(
    session: AsyncSession, settings: Settings
) -> None:
    _sqlite_only(settings)
    ids = await _record(session, 5)
    await session.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": ids[1].hex})
    await session.commit()
    result = await _verify(settings)
    assert result.exit_code == 1
    assert f"event {ids[2]} (seq 3): events 2..2 before it were removed" in result.output


async def test_removing_the_newest_event_is_caught_by_the_head(
    session: AsyncSession, settings: Settings
) -> None:
    _sqlite_only(settings)
    ids = await _record(session, 3)
    await session.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": ids[2].hex})
    await session.commit()
    result = await _verify(settings)
    assert result.exit_code == 1
    assert "events after seq 2 were removed" in result.output


async def test_an_inserted_event_is_named_by_verify(
    session: AsyncSession, settings: Settings
) -> None:
    """A forged event renumbering the chain (its own hash made right) breaks the links."""
    _sqlite_only(settings)
    ids = await _record(session, 3)
    forged = await session.get(AuditEvent, ids[2])
    assert forged is not None
    # Move the newest event up one, and slip a well-hashed forgery into its place.
    await session.execute(text("UPDATE audit_event SET seq = 4 WHERE id = :id"), {"id": ids[2].hex})
    await session.execute(text("UPDATE audit_chain SET head_seq = 4"))
    await session.commit()
    fake = AuditEvent(
        id=uuid.uuid4(),
        seq=3,
        at=forged.at,
        actor_type="system",
        actor_id=None,
        action="test.forged",
        object_type="thing",
        object_id=None,
        ip=None,
        request_id=None,
        details={},
        prev_hash="f" * 64,
    )
    fake.hash = event_hash(fake)
    session.add(fake)
    await session.commit()
    result = await _verify(settings)
    assert result.exit_code == 1
    assert f"event {fake.id} (seq 3) was inserted" in result.output


async def test_postgresql_refuses_update_and_delete(
    session: AsyncSession, settings: Settings
) -> None:
    if settings.is_sqlite:
        pytest.skip("SQLite has no trigger: verify catches edits there")
    ids = await _record(session, 2)
    for statement in (
        "UPDATE audit_event SET action = 'test.innocent' WHERE id = :id",
        "DELETE FROM audit_event WHERE id = :id",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text(statement), {"id": ids[0]})
        await session.rollback()
    with pytest.raises(DBAPIError, match="append-only"):
        await session.execute(text("TRUNCATE audit_event"))
    await session.rollback()
    assert (await _verify(settings)).exit_code == 0


async def test_pruning_keeps_the_rest_verifiable(
    session: AsyncSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = MovableClock()
    with use(clock):
        old = await _record(session, 3)
        clock.advance(timedelta(days=11))
        kept = await _record(session, 2)
    monkeypatch.setenv("EMPORIUM_AUDIT_RETENTION_DAYS", "10")
    with use(clock):
        pruned = await asyncio.to_thread(
            CliRunner().invoke,
            main,
            ["audit", "prune"],
            env={"EMPORIUM_DATABASE_URL": settings.database_url},
        )
    assert pruned.exit_code == 0, (pruned.output, pruned.exception)
    assert "pruned 3 audit event(s)" in pruned.output
    left = set(await session.scalars(text("SELECT action FROM audit_event")))
    assert left == {"test.touched", "audit.pruned"}
    assert await session.get(AuditEvent, old[0]) is None
    assert await session.get(AuditEvent, kept[0]) is not None
    report = await verify_chain(session)
    assert report.ok, report.problem
    assert report.checked == 3  # the two kept and the pruning's own event
