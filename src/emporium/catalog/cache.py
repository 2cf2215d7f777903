"""Per-process caches evicted through the change feed: an LRU of published products with a
TTL (:class:`ProductCache`), and the category tree (:class:`CategoryTree`).

``catalog.reads.ProductReads`` answers ``GET /products/{id_or_slug}`` from here when it can.
Committed changes to a product (recorded as ``catalog.changes`` says) reach
:meth:`ProductCache.invalidate` in every process (``emporium.core.db.changes``); ``create_app``
subscribes it. Entries also expire after a TTL: the bound on staleness where no
notification can arrive (SQLite with several processes, a lost listener connection).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable

from prometheus_client import Counter

from emporium.catalog.changes import CATEGORY_TOPIC, TOPIC
from emporium.catalog.schemas import ProductRead
from emporium.core.db.changes import ALL

CACHE_LOOKUPS = Counter(
    "emporium_cache_lookups_total",
    "Product cache look-ups per result (hit, miss), summed over the node's processes",
    ["cache", "result"],
)
CACHE_EVICTIONS = Counter(
    "emporium_cache_evictions_total",
    "Entries removed from the product cache per reason: expired (TTL), capacity (LRU), "
    "invalidated (a committed change)",
    ["cache", "reason"],
)
_HIT, _MISS = CACHE_LOOKUPS.labels("product", "hit"), CACHE_LOOKUPS.labels("product", "miss")
_EVICTED = {
    reason: CACHE_EVICTIONS.labels("product", reason)
    for reason in ("expired", "capacity", "invalidated")
}


class ProductCache:
    """LRU of published products' JSON documents (``ProductRead`` as the API answers it) by
    id (and slug), with a TTL. Not shared between processes.

    It keeps the encoded bytes rather than the ``ProductRead``: a hit is answered without
    encoding, and bytes are invisible to the cyclic garbage collector, whereas ten thousand
    cached structs (with their lists, dicts and UUIDs) were traversed by every full
    collection and, churning on misses, set off collections ever more often
    (``bench/README.md``, issue 18 round 5)."""

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
        self._by_id: OrderedDict[str, tuple[float, str, bytes]] = OrderedDict()
        self._id_of_slug: dict[str, str] = {}
        self.hits = 0
        self.misses = 0
        self.epoch = 0  # bumped by every invalidation; see put()

    @property
    def enabled(self) -> bool:
        """False when configured off (TTL or size 0)."""
        return self.ttl > 0 and self.max_entries > 0

    def get(self, key: str) -> bytes | None:
        """The cached document of the product with this id or slug, if fresh."""
        product_id = self._id_of_slug.get(key, key)
        entry = self._by_id.get(product_id)
        if entry is None or entry[0] <= self._clock():
            if entry is not None:
                self._forget(product_id)
                _EVICTED["expired"].inc()
            self.misses += 1
            _MISS.inc()
            return None
        self._by_id.move_to_end(product_id)
        self.hits += 1
        _HIT.inc()
        return entry[2]

    def put(self, product: ProductRead, document: bytes, *, epoch: int) -> None:
        """Cache ``document`` (``product`` encoded as JSON) of a published product read
        when ``self.epoch`` was ``epoch``.

        A read that raced with an invalidation (the epoch moved on) is not cached: it may
        hold what the invalidation removed. Unpublished products are never cached.
        """
        if not self.enabled or not product.published or epoch != self.epoch:
            return
        product_id = str(product.id)
        self._forget(product_id)
        self._by_id[product_id] = (self._clock() + self.ttl, product.slug, document)
        self._id_of_slug[product.slug] = product_id
        while len(self._by_id) > self.max_entries:
            self._forget(next(iter(self._by_id)))
            _EVICTED["capacity"].inc()

    def _forget(self, product_id: str) -> None:
        entry = self._by_id.pop(product_id, None)
        if entry is not None and self._id_of_slug.get(entry[1]) == product_id:
            del self._id_of_slug[entry[1]]

    def invalidate(self, topic: str, keys: set[str]) -> None:
        """Change-feed subscriber: forget the changed products (or everything)."""
        self.epoch += 1
        before = len(self._by_id)
        if topic == ALL or (topic == TOPIC and ALL in keys):
            self._by_id.clear()
            self._id_of_slug.clear()
        elif topic == TOPIC:
            for product_id in keys:
                self._forget(product_id)
        _EVICTED["invalidated"].inc(before - len(self._by_id))

    def __len__(self) -> int:
        return len(self._by_id)


CategoryRow = tuple[uuid.UUID, str, uuid.UUID | None]
"""``(id, slug, parent_id)`` of one category."""


def _subtrees(rows: Iterable[CategoryRow]) -> dict[str, tuple[uuid.UUID, ...]]:
    """Each category's id and its descendants' ids, by id (canonical text) and by slug."""
    rows = list(rows)
    children: defaultdict[uuid.UUID | None, list[uuid.UUID]] = defaultdict(list)
    for category_id, _slug, parent_id in rows:
        children[parent_id].append(category_id)
    found: dict[str, tuple[uuid.UUID, ...]] = {}
    for category_id, slug, _parent in rows:
        ids, todo, seen = [], [category_id], set()
        while todo:  # depth-first; ``seen`` guards against a cycle written behind our back
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                ids.append(current)
                todo.extend(children[current])
        found[str(category_id)] = found[slug] = tuple(ids)
    return found


def find_subtree(subtrees: dict[str, tuple[uuid.UUID, ...]], key: str) -> tuple[uuid.UUID, ...]:
    """The subtree of the category named by ``key``: an id in any form ``uuid.UUID`` reads,
    else a slug; ``()`` when there is no such category."""
    with contextlib.suppress(ValueError):
        key = str(uuid.UUID(key))
    return subtrees.get(key, ())


class CategoryTree:
    """The category tree, per process: the ids of a category and all its descendants (the
    ``category`` filter of the product listing) by id or slug, resolved in memory instead of
    a recursive query per request.

    Loaded whole (one small query, :meth:`load`) on first use; forgotten when a category
    changes (change feed topic ``category``, :meth:`invalidate`) and after ``ttl_seconds``
    (the bound on staleness where no notification can arrive, as for products).
    """

    def __init__(self, *, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self._clock = clock
        self._subtrees: dict[str, tuple[uuid.UUID, ...]] | None = None
        self._expires = 0.0
        self.epoch = 0  # bumped by every invalidation; see load()

    def subtree(self, key: str) -> tuple[uuid.UUID, ...] | None:
        """The ids of the category named by ``key`` (id or slug) and of its descendants;
        ``()`` when there is no such category; None when the tree must be loaded first."""
        if self._subtrees is None or self._expires <= self._clock():
            return None
        return find_subtree(self._subtrees, key)

    def load(self, rows: Iterable[CategoryRow], *, epoch: int) -> dict[str, tuple[uuid.UUID, ...]]:
        """Build the tree from every category's row, read when ``self.epoch`` was ``epoch``;
        keep it unless an invalidation happened meanwhile (the rows may be stale). Returns it."""
        subtrees = _subtrees(rows)
        if epoch == self.epoch and self.ttl > 0:
            self._subtrees, self._expires = subtrees, self._clock() + self.ttl
        return subtrees

    def invalidate(self, topic: str, keys: set[str]) -> None:
        """Change-feed subscriber: forget the tree when a category changed (or everything)."""
        if topic in (ALL, CATEGORY_TOPIC):
            self.epoch += 1
            self._subtrees = None
