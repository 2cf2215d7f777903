"""The ORM side of the ledger: stock set through ORM objects is recorded automatically.

Catalog code creates variants with an opening stock (``POST /products``, imports) through
the ORM; the catalog room cannot import inventory, so a ``before_flush`` hook records a
``received`` movement for every new variant with stock, and an ``adjustment`` for any ORM
change of a variant's stock. Orders and stock adjustments change stock with conditional
Core updates and write their movements themselves (``inventory.service``).

The hook is registered explicitly, by ``create_app`` and by the CLI's import
(:func:`install_ledger_hook`), never at import time; ``catalog.service`` names it.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from emporium.catalog.models import Variant
from emporium.core.clock import utcnow
from emporium.inventory.models import StockMovement


def _opening(variant: Variant) -> StockMovement | None:
    if not variant.stock:
        return None
    if variant.id is None:
        variant.id = uuid.uuid4()
    return StockMovement(
        id=uuid.uuid4(),
        variant_id=variant.id,
        kind="received",
        delta=variant.stock,
        stock_after=variant.stock,
        reason="opening stock",
        created_at=utcnow(),
    )


def _changed(variant: Variant) -> StockMovement | None:
    history = inspect(variant).attrs.stock.history
    if not history.deleted or not history.added:
        return None
    before, after = int(history.deleted[0] or 0), int(history.added[0] or 0)
    if before == after:
        return None
    return StockMovement(
        id=uuid.uuid4(),
        variant_id=variant.id,
        kind="adjustment",
        delta=after - before,
        stock_after=after,
        reason="stock level set",
        created_at=utcnow(),
    )


def _record(session: Session, _context: Any, _instances: Any) -> None:
    """ORM hook: a movement for each new stocked variant and each ORM change of stock."""
    movements = [_opening(v) for v in session.new if isinstance(v, Variant)]
    movements += [_changed(v) for v in session.dirty if isinstance(v, Variant)]
    for movement in movements:
        if movement is not None:
            session.add(movement)


def install_ledger_hook() -> None:
    """Register the hook once per process (idempotent)."""
    if not event.contains(Session, "before_flush", _record):
        event.listen(Session, "before_flush", _record)
