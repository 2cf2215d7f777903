"""Which products a transaction changes, for the product cache in every process.

Every change to a product, its variants or tags is recorded on the session and, once
committed, goes out on the change feed (``emporium.core.db.changes``), which evicts the
product from every process's cache (``catalog.cache``). Two ways record it:

- :func:`product_changed`, called explicitly by code that changes catalog rows with Core
  statements (``inventory.service``);
- :func:`install_change_tracking`, an ORM ``before_flush`` hook on every ``Session`` that
  records each product, variant or tag a flush adds, changes or deletes (and each category,
  under ``CATEGORY_TOPIC``, for the category tree cache) (``catalog.service``,
  ``catalog.upsert``, the reviews room's rating aggregates, imports). ``create_app`` and the
  CLI's import register it explicitly; importing this module registers nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from emporium.catalog.models import Category, Product, ProductTag, Variant
from emporium.core.db.changes import ALL, record_change

TOPIC = "product"
CATEGORY_TOPIC = "category"
"""Any change to a category (keys: category ids): the category tree cache forgets itself."""


def product_changed(session: AsyncSession, product_id: uuid.UUID) -> None:
    """Record that ``product_id`` (or its variants, tags, rating) changes in this transaction."""
    record_change(session, TOPIC, product_id)


def _collect(session: Session, _context: Any, _instances: Any) -> None:
    """ORM hook: record every product touched by a flush (new, changed or deleted rows)."""
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Category):
            record_change(session, CATEGORY_TOPIC, ALL if obj.id is None else obj.id)
            continue
        if isinstance(obj, Product):
            product_id = obj.id
        elif isinstance(obj, Variant | ProductTag):
            product_id = obj.product_id
        else:
            continue
        if product_id is not None:
            record_change(session, TOPIC, product_id)


def install_change_tracking() -> None:
    """Register the ORM hook once per process (idempotent)."""
    if not event.contains(Session, "before_flush", _collect):
        event.listen(Session, "before_flush", _collect)
