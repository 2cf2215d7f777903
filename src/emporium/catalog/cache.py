"""A per-process cache of published products, invalidated by the change feed.

``GET /products/{id_or_slug}`` for anonymous and customer callers is answered from here
when it can be. Every change to a product, its variants or tags is recorded on the session
(an ORM hook does it for ORM writes; code that changes catalog rows with Core statements
calls :func:`product_changed`) and, once committed, evicts the product in every process
(``emporium.core.db.changes``). Entries also expire after a TTL: the bound on staleness where
no notification can arrive (SQLite with several processes, a lost listener connection).
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from emporium.catalog.models import Product, ProductTag, Variant
from emporium.catalog.queries import get_product, get_product_raw
from emporium.catalog.schemas import ProductRead
from emporium.core.db.base import ReadEngine, read_connection
from emporium.core.db.changes import ALL, record_change

TOPIC = "product"


def product_changed(session: AsyncSession, product_id: uuid.UUID) -> None:
    """Record that ``product_id`` (or its variants, tags, rating) changes in this transaction."""
    record_change(session, TOPIC, product_id)


def _collect(session: Session, _context: Any, _instances: Any) -> None:
    """ORM hook: record every product touched by a flush (new, changed or deleted rows)."""
    for obj in (*session.new, *session.dirty, *session.deleted):
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


class ProductCache:
    """LRU of ``ProductRead`` by id (and slug), with a TTL. Not shared between processes."""

    def __init__(
        self,
        *,
        max_entries: int,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.ttl = ttl_seconds
        self._clock = clock
        self._by_id: OrderedDict[str, tuple[float, ProductRead]] = OrderedDict()
        self._id_of_slug: dict[str, str] = {}
        self.hits = 0
        self.misses = 0
        self.epoch = 0  # bumped by every invalidation; see put()

    @property
    def enabled(self) -> bool:
        """False when configured off (TTL or size 0)."""
        return self.ttl > 0 and self.max_entries > 0

    def get(self, key: str) -> ProductRead | None:
        """The cached product for an id or a slug, if fresh."""
        product_id = self._id_of_slug.get(key, key)
        entry = self._by_id.get(product_id)
        if entry is None or entry[0] <= self._clock():
            if entry is not None:
                self._forget(product_id)
            self.misses += 1
            return None
        self._by_id.move_to_end(product_id)
        self.hits += 1
        return entry[1]

    def put(self, product: ProductRead, *, epoch: int) -> None:
        """Cache a published product read when ``self.epoch`` was ``epoch``.

        A read that raced with an invalidation (the epoch moved on) is not cached: it may
        hold what the invalidation removed. Unpublished products are never cached.
        """
        if not self.enabled or not product.published or epoch != self.epoch:
            return
        product_id = str(product.id)
        self._forget(product_id)
        self._by_id[product_id] = (self._clock() + self.ttl, product)
        self._id_of_slug[product.slug] = product_id
        while len(self._by_id) > self.max_entries:
            self._forget(next(iter(self._by_id)))

    def _forget(self, product_id: str) -> None:
        entry = self._by_id.pop(product_id, None)
        if entry is not None and self._id_of_slug.get(entry[1].slug) == product_id:
            del self._id_of_slug[entry[1].slug]

    def invalidate(self, topic: str, keys: set[str]) -> None:
        """Change-feed subscriber: forget the changed products (or everything)."""
        self.epoch += 1
        if topic == ALL or (topic == TOPIC and ALL in keys):
            self._by_id.clear()
            self._id_of_slug.clear()
        elif topic == TOPIC:
            for product_id in keys:
                self._forget(product_id)

    def __len__(self) -> int:
        return len(self._by_id)


async def read_product(
    read_engine: ReadEngine,
    cache: ProductCache,
    id_or_slug: str,
    *,
    include_unpublished: bool,
    raw_pool: Any = None,
) -> ProductRead:
    """A product for ``GET /products/{id_or_slug}``: from the cache for anonymous and customer
    callers when fresh, else from the database (and then cached if published).

    Staff (``include_unpublished``) always read the database. ``raw_pool``: an asyncpg pool
    (PostgreSQL) for the database read. Raises ProductNotFound (404).
    """
    if not include_unpublished and (hit := cache.get(id_or_slug)) is not None:
        return hit
    epoch = cache.epoch
    if raw_pool is not None:
        product = await get_product_raw(
            raw_pool, id_or_slug, include_unpublished=include_unpublished
        )
    else:
        async with read_connection(read_engine) as reader:
            product = await get_product(reader, id_or_slug, include_unpublished=include_unpublished)
    cache.put(product, epoch=epoch)
    return product
