"""The catalog's read side: products by id or slug, filtered and sorted keyset pages.

Reads use prebuilt Core statements (SQLAlchemy caches their compiled form) and load the
variants of a whole page in one query, so a page costs two queries whatever its depth.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, exists, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.catalog.exceptions import ProductNotFound
from emporium.catalog.models import Category, Product, ProductTag, Variant
from emporium.catalog.schemas import (
    CategoryRead,
    ImageRead,
    ProductFilters,
    ProductPage,
    ProductRead,
    ProductSort,
    VariantRead,
)
from emporium.catalog.search import search_join
from emporium.core.errors import InvalidInput
from emporium.core.pagination import CursorValue, decode_cursor, encode_cursor, invalid_cursor

_P = Product.__table__.c
_V = Variant.__table__.c
PRODUCT_COLUMNS = (
    _P.id,
    _P.slug,
    _P.title,
    _P.description,
    _P.category_id,
    _P.brand,
    _P.tags,
    _P.published,
    _P.images,
    _P.rating_average,
    _P.review_count,
    _P.price_min,
    _P.currency,
    _P.created_at,
    _P.updated_at,
)
VARIANT_COLUMNS = (
    _V.product_id,
    _V.id,
    _V.sku,
    _V.title,
    _V.options,
    _V.price,
    _V.compare_at_price,
    _V.currency,
    _V.stock,
)
_VARIANTS_OF = select(*VARIANT_COLUMNS).order_by(_V.product_id, _V.position)

_SORT_COLUMNS: dict[str, tuple[ColumnElement[Any], bool]] = {
    "price": (_P.price_min, False),
    "-price": (_P.price_min, True),
    "created_at": (_P.created_at, False),
    "-created_at": (_P.created_at, True),
    "rating": (_P.rating_average, False),
    "-rating": (_P.rating_average, True),
    "title": (_P.title, False),
}
DEFAULT_SORT: ProductSort = "-created_at"


def _variant(row: Row[Any] | Any) -> VariantRead:
    return VariantRead(
        id=row.id,
        sku=row.sku,
        title=row.title,
        options=row.options,
        price=row.price,
        compare_at_price=row.compare_at_price,
        currency=row.currency,
        stock=row.stock,
    )


def _product(row: Row[Any] | Any, variants: list[VariantRead]) -> ProductRead:
    images = [
        ImageRead(url=i["url"], alt=i.get("alt", ""), position=n)
        for n, i in enumerate(row.images, start=1)
    ]
    return ProductRead(
        id=row.id,
        slug=row.slug,
        title=row.title,
        description=row.description,
        category_id=row.category_id,
        brand=row.brand,
        tags=row.tags,
        published=row.published,
        images=images,
        rating_average=row.rating_average,
        review_count=row.review_count,
        price_min=row.price_min,
        currency=row.currency,
        created_at=row.created_at,
        updated_at=row.updated_at,
        variants=variants,
    )


async def _variants_by_product(
    session: AsyncSession, product_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[VariantRead]]:
    grouped: dict[uuid.UUID, list[VariantRead]] = {pid: [] for pid in product_ids}
    if product_ids:
        stmt = _VARIANTS_OF.where(_V.product_id.in_(list(product_ids)))
        for row in await session.execute(stmt):
            grouped[row.product_id].append(_variant(row))
    return grouped


def parse_product_key(id_or_slug: str) -> tuple[uuid.UUID | None, str]:
    """Split a path key into (uuid, "") or (None, slug)."""
    try:
        return uuid.UUID(id_or_slug), ""
    except ValueError:
        return None, id_or_slug


_VARIANTS_OF_ONE = select(*VARIANT_COLUMNS).order_by(_V.position)


async def get_product(
    session: AsyncSession, id_or_slug: str, *, include_unpublished: bool
) -> ProductRead:
    """One product with its variants and images.

    Raises:
        ProductNotFound: (404) no such product, or it is unpublished and the caller is not staff.
    """
    product_id, slug = parse_product_key(id_or_slug)
    stmt = select(*PRODUCT_COLUMNS)
    stmt = stmt.where(_P.id == product_id) if product_id else stmt.where(_P.slug == slug)
    row = (await session.execute(stmt)).first()
    if row is None or not (row.published or include_unpublished):
        raise ProductNotFound("No such product.")
    variants = await session.execute(_VARIANTS_OF_ONE.where(_V.product_id == row.id))
    return _product(row, [_variant(v) for v in variants])


async def list_categories(session: AsyncSession) -> list[CategoryRead]:
    """Every category, by name."""
    c = Category.__table__.c
    stmt = select(c.id, c.name, c.slug, c.parent_id, c.description).order_by(c.name, c.id)
    return [
        CategoryRead(
            id=r.id, name=r.name, slug=r.slug, parent_id=r.parent_id, description=r.description
        )
        for r in await session.execute(stmt)
    ]


def _category_subtree(key: str) -> Select[tuple[uuid.UUID]]:
    """Ids of the category named by id or slug and of all its descendants (recursive CTE)."""
    c = Category.__table__.c
    try:
        root = select(c.id).where(c.id == uuid.UUID(key))
    except ValueError:
        root = select(c.id).where(c.slug == key)
    tree = root.cte("subtree", recursive=True)
    tree = tree.union_all(select(c.id).where(c.parent_id == tree.c.id))
    return select(tree.c.id)


def _apply_filters(
    stmt: Select[Any], filters: ProductFilters, *, include_unpublished: bool
) -> Select[Any]:
    if not include_unpublished:
        stmt = stmt.where(_P.published.is_(True))
    if filters.category:
        stmt = stmt.where(_P.category_id.in_(_category_subtree(filters.category)))
    if filters.min_price is not None:
        stmt = stmt.where(_P.price_min >= filters.min_price)
    if filters.max_price is not None:
        stmt = stmt.where(_P.price_min <= filters.max_price)
    if filters.in_stock:
        stmt = stmt.where(exists().where(_V.product_id == _P.id, _V.stock > 0))
    if filters.tag:
        tag = " ".join(filters.tag.split()).lower()
        tags = ProductTag.__table__.c
        stmt = stmt.where(exists().where(tags.product_id == _P.id, tags.tag == tag))
    if filters.brand:
        stmt = stmt.where(_P.brand == filters.brand)
    return stmt


def _cursor_param(sort: str, value: CursorValue) -> Any:
    if sort.endswith("created_at"):
        if not isinstance(value, str):
            raise ValueError("bad cursor value")
        return datetime.fromisoformat(value)
    if sort.endswith("price") and not isinstance(value, int):
        raise ValueError("bad cursor value")
    if sort.endswith(("rating", "relevance")) and not isinstance(value, int | float):
        raise ValueError("bad cursor value")
    if sort == "title" and not isinstance(value, str):
        raise ValueError("bad cursor value")
    return value


def _cursor_value(value: Any) -> CursorValue:
    return value.isoformat() if isinstance(value, datetime) else value


async def list_products(
    session: AsyncSession,
    filters: ProductFilters,
    *,
    sort: ProductSort | None,
    limit: int,
    cursor: str | None,
    include_unpublished: bool,
) -> ProductPage:
    """One keyset page of products matching ``filters`` in ``sort`` order.

    ``sort`` defaults to ``relevance`` when ``q`` is given, else ``-created_at``; ties are
    broken by id, so paging visits every product exactly once.

    Raises:
        InvalidInput: (422) ``relevance`` without ``q``, a bad price range, or a bad cursor.
    """
    sort = sort or ("relevance" if filters.q else DEFAULT_SORT)
    if sort == "relevance" and not filters.q:
        raise InvalidInput(
            "sort=relevance needs q.", errors=[{"loc": ["query", "sort"], "msg": "needs q"}]
        )
    if None not in (filters.min_price, filters.max_price) and (
        filters.min_price > filters.max_price  # type: ignore[operator]
    ):
        raise InvalidInput(
            "min_price is above max_price.",
            errors=[{"loc": ["query", "min_price"], "msg": "greater than max_price"}],
        )
    stmt = _apply_filters(
        select(*PRODUCT_COLUMNS), filters, include_unpublished=include_unpublished
    )
    if filters.q:
        searched = search_join(stmt, filters.q, session.get_bind().dialect.name)
        if searched is None:
            return ProductPage(items=[], next_cursor=None)
        stmt, score = searched
        stmt = stmt.add_columns(score.label("score"))
    column, descending = (score, True) if sort == "relevance" else _SORT_COLUMNS[sort]
    if cursor:
        value, last_id = decode_cursor(cursor, sort)
        try:
            key = tuple_(column, _P.id)
            after = tuple_(_cursor_param(sort, value), last_id)
            stmt = stmt.where(key < after if descending else key > after)
        except ValueError as exc:
            raise invalid_cursor() from exc
    order = (column.desc(), _P.id.desc()) if descending else (column.asc(), _P.id.asc())
    rows = (await session.execute(stmt.order_by(*order).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    variants = await _variants_by_product(session, [r.id for r in rows])
    items = [_product(r, variants[r.id]) for r in rows]
    next_cursor = None
    if more:
        last = rows[-1]
        last_value = last.score if sort == "relevance" else getattr(last, _sort_attr(sort))
        next_cursor = encode_cursor(sort, _cursor_value(last_value), last.id)
    return ProductPage(items=items, next_cursor=next_cursor)


def _sort_attr(sort: str) -> str:
    return {"price": "price_min", "rating": "rating_average"}.get(
        sort.lstrip("-"), sort.lstrip("-")
    )
