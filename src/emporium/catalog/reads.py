"""The storefront's product read: the product cache in front of the database.

``create_app`` builds one :class:`ProductReads` when the application starts, from its
``core.resources.Resources`` and the process's ``catalog.cache.ProductCache``, and routes get
it as the ``products`` dependency (``products: ProductReadsDep``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidation

from emporium.catalog.cache import ProductCache
from emporium.catalog.queries import get_product, get_product_raw
from emporium.catalog.schemas import ProductRead
from emporium.core.db.base import ReadEngine, read_connection


@dataclass(frozen=True, slots=True)
class ProductReads:
    """Reads ``GET /products/{id_or_slug}``: ``cache`` first, then ``raw_pool`` (an asyncpg
    pool, PostgreSQL) or else ``read_engine``."""

    read_engine: ReadEngine
    cache: ProductCache
    raw_pool: Any = None

    async def product(self, id_or_slug: str, *, include_unpublished: bool) -> ProductRead:
        """A product: from the cache for anonymous and customer callers when fresh, else from
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
        cache.put(product, epoch=epoch)
        return product


def _provide(state: State) -> ProductReads:
    reads: ProductReads = state.product_reads
    return reads


def provide_product_reads() -> Provide:
    """The ``products`` dependency (registered by ``create_app``)."""
    return Provide(_provide, sync_to_thread=False)


ProductReadsDep: TypeAlias = NamedDependency[SkipValidation[ProductReads]]
"""Route parameter type of the product read (inject as ``products: ProductReadsDep``),
passed as is, not validated."""
