"""The invariants a restored backup must keep, checked with plain SQL on the scratch copy.

The backups room never imports a commerce room: these queries name the tables and columns
of the contract (``API.md``, Orders: invariants) directly, so a change there shows up here
as a failed check, not as a silent pass.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from emporium.backups.snapshot import count_rows
from emporium.core.crypto.keys import parse_keyring
from emporium.core.crypto.keyset import fingerprint

LEDGER = """
SELECT count(*) FROM variant v
WHERE v.stock IS NOT NULL AND EXISTS (SELECT 1 FROM stock_movement m WHERE m.variant_id = v.id)
  AND v.stock <> (SELECT sum(m.delta) FROM stock_movement m WHERE m.variant_id = v.id)
"""
ORDER_SUBTOTALS = """
SELECT count(*) FROM customer_order o
WHERE o.subtotal <> (SELECT coalesce(sum(l.subtotal), 0) FROM order_line l WHERE l.order_id = o.id)
"""
ORDER_TOTALS = """
SELECT count(*) FROM customer_order o
WHERE o.total <> o.subtotal - o.discount_total + o.shipping_total
      + CASE WHEN o.prices_include_tax THEN 0 ELSE o.tax_total END
"""
LINE_TOTALS = """
SELECT count(*) FROM order_line l
WHERE l.subtotal <> l.unit_price * l.quantity
   OR l.total <> l.subtotal - l.discount_total
      + CASE WHEN l.prices_include_tax THEN 0 ELSE l.tax_total END
"""


@dataclass
class Findings:
    """Each check's outcome: ``passed`` lines for the report, ``failed`` ones that fail it."""

    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def check(self, ok: bool, good: str, bad: str) -> None:
        """Record one check."""
        (self.passed if ok else self.failed).append(good if ok else bad)


async def _count(conn: AsyncConnection, sql: str) -> int:
    return int(await conn.scalar(text(sql)) or 0)


async def check_invariants(conn: AsyncConnection, counts: dict[str, int]) -> Findings:
    """Ledger sums to stock on hand, order and line totals add up, row counts equal the
    manifest's ``counts``; each failure names how many rows break it."""
    found = Findings()
    bad = await _count(conn, LEDGER)
    found.check(
        not bad,
        "ledger: every tracked variant's stock equals the sum of its movements",
        f"ledger: {bad} variant(s) whose stock differs from the sum of their movements",
    )
    bad = await _count(conn, ORDER_SUBTOTALS) + await _count(conn, ORDER_TOTALS)
    found.check(
        not bad,
        f"orders: {counts.get('customer_order', 0)} totals add up",
        f"orders: {bad} total(s) do not add up",
    )
    bad = await _count(conn, LINE_TOTALS)
    found.check(
        not bad,
        f"order lines: {counts.get('order_line', 0)} totals add up",
        f"order lines: {bad} total(s) do not add up",
    )
    differing = []
    for table, expected in sorted(counts.items()):
        actual = int(await conn.scalar(count_rows(table)) or 0)
        if actual != expected:
            differing.append(f"{table} {actual} (manifest {expected})")
    found.check(
        not differing,
        f"row counts: {len(counts)} tables as in the manifest",
        "row counts differ: " + ", ".join(differing[:5]),
    )
    return found


def key_file_matches(key_file: bytes, recorded: str | None) -> bool:
    """Whether the key file's fingerprint (``core.crypto.keyset``) is the one the database
    recorded; True when none is recorded (a database without personal data). Raises
    KeyFileError for a malformed key file."""
    if recorded is None:
        return True
    mine = fingerprint(parse_keyring(key_file.decode("utf-8")))
    return hmac.compare_digest(mine, recorded)
