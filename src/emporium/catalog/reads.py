"""The storefront's product read: the product cache in front of the database.

``create_app`` builds one :class:`ProductReads` when the application starts, from its
``core.resources.Resources`` and the process's ``catalog.cache.ProductCache``, and routes get
it as the ``products`` dependency (``products: ProductReadsDep``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, TypeAlias

import msgspec
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidation

from emporium.catalog.cache import CategoryTree, ProductCache, find_subtree
from emporium.catalog.queries import (
    category_rows,
    category_rows_raw,
    get_product,
    get_product_raw,
    list_products,
    list_products_raw,
    prepare_listing,
)
from emporium.catalog.schemas import ProductFilters, ProductPage, ProductSort
from emporium.core.db.base import ReadEngine, read_connection


@dataclass(frozen=True, slots=True)
class ProductReads:
    """Reads ``GET /products/{id_or_slug}``: ``cache`` first, then ``raw_pool`` (an asyncpg
    pool, PostgreSQL) or else ``read_engine``; and ``GET /products`` pages, with the
    ``category`` filter resolved by ``categories``."""

    read_engine: ReadEngine
    cache: ProductCache
    categories: CategoryTree
    raw_pool: Any = None

    async def product_document(self, id_or_slug: str, *, include_unpublished: bool) -> bytes:
        """A product's JSON document (``ProductRead``, as ``GET /products/{id_or_slug}``
        answers it): from the cache for anonymous and customer callers when fresh, else from
        the database (and then cached if published). Staff (``include_unpublished``) always
        read the database.

        Raises ProductNotFound (404).
        """
        cache = self.cache
        if not include_unpublished and (hit := cache.get(id_or_slug)) is not None:
            return hit
        epoch = cache.epoch
        if self.raw_pool is not None:
            product = await get_product_raw(
                self.raw_pool, id_or_slug, include_unpublished=include_unpublished
            )
        else:
            async with read_connection(self.read_engine) as reader:
                product = await get_product(
                    reader, id_or_slug, include_unpublished=include_unpublished
                )
        document = msgspec.json.encode(product)
        cache.put(product, document, epoch=epoch)
        return document

    async def page(
        self,
        filters: ProductFilters,
        *,
        sort: ProductSort | None,
        limit: int,
        cursor: str | None,
        include_unpublished: bool,
    ) -> ProductPage:
        """One keyset page of ``GET /products`` (``catalog.queries.prepare_listing``): through
        ``raw_pool`` on PostgreSQL, else on a read connection of ``read_engine``.

        Raises InvalidInput (422): ``relevance`` without ``q``, a bad price range or cursor.
        """
        category_ids = await self._subtree(filters.category) if filters.category else ()
        dialect = "postgresql" if self.raw_pool is not None else self.read_engine.dialect.name
        listing = prepare_listing(
            filters,
            dialect=dialect,
            sort=sort,
            limit=limit,
            cursor=cursor,
            include_unpublished=include_unpublished,
            category_ids=category_ids,
        )
        if listing is None:
            return ProductPage(items=[], next_cursor=None)
        if self.raw_pool is not None:
            return await list_products_raw(self.raw_pool, listing)
        async with read_connection(self.read_engine) as reader:
            return await list_products(reader, listing)

    async def _subtree(self, key: str) -> tuple[uuid.UUID, ...]:
        tree = self.categories
        found = tree.subtree(key)
        if found is not None:
            return found
        epoch = tree.epoch
        if self.raw_pool is not None:
            rows = await category_rows_raw(self.raw_pool)
        else:
            async with read_connection(self.read_engine) as reader:
                rows = await category_rows(reader)
        return find_subtree(tree.load(rows, epoch=epoch), key)


def _provide(state: State) -> ProductReads:
    reads: ProductReads = state.product_reads
    return reads


def provide_product_reads() -> Provide:
    """The ``products`` dependency (registered by ``create_app``)."""
    return Provide(_provide, sync_to_thread=False)


ProductReadsDep: TypeAlias = NamedDependency[SkipValidation[ProductReads]]
"""Route parameter type of the product read (inject as ``products: ProductReadsDep``),
passed as is, not validated."""
