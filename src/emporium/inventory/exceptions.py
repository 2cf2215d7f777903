"""Errors of the inventory room."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from emporium.core.errors import Conflict


class InsufficientStock(Conflict):
    """One or more variants have fewer units than asked; ``lines`` names each short one as
    ``{variant_id, sku, requested, available}``."""

    code, title = "insufficient_stock", "Insufficient stock"

    def __init__(self, detail: str, *, lines: Sequence[dict[str, Any]]) -> None:
        super().__init__(detail, extra={"lines": [dict(line) for line in lines]})
        self.lines = list(lines)


class InventoryNotTracked(Conflict):
    """The variant does not track inventory (its stock is null): there is nothing to adjust."""

    code, title = "inventory_not_tracked", "Inventory not tracked"
