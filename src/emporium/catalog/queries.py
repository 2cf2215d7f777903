"""The catalog's read side: products by id or slug, filtered and sorted keyset pages.

Reads use prebuilt Core statements (SQLAlchemy caches their compiled form) and let the
database aggregate each product's variants into JSON, so a product or a whole page costs one
statement whatever the page's depth.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    bindparam,
    exists,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.catalog.exceptions import ProductNotFound
from emporium.catalog.models import Category, Product, ProductTag, Variant
from emporium.catalog.schemas import (
    CategoryRead,
    ProductFilters,
    ProductPage,
    ProductRead,
    ProductSort,
)
from emporium.catalog.search import search_join
from emporium.core.db.base import Reader
from emporium.core.db.pagination import (
    CursorValue,
    cursor_instant,
    decode_cursor,
    encode_cursor,
    invalid_cursor,
)
from emporium.core.errors import InvalidInput

_P = Product.__table__.c
_V = Variant.__table__.c
# Each product row is rendered by the database as the JSON document of ``ProductRead``,
# variants aggregated in position order, and decoded by msgspec in one step: a product or a
# whole page is one statement, and no column goes through per-column Python conversion.
_FIELDS = (
    "'id', {p}.id, 'slug', {p}.slug, 'title', {p}.title, 'description', {p}.description, "
    "'category_id', {p}.category_id, 'brand', {p}.brand, 'tags', {tags}, "
    "'tax_class', {p}.tax_class, "
    "'published', {published}, 'images', {images}, 'rating_average', {p}.rating_average, "
    "'review_count', {p}.review_count, 'price_min', {p}.price_min, 'currency', {p}.currency, "
    "'created_at', {created}, 'updated_at', {updated}, 'variants', {variants}"
)
_VARIANT_FIELDS = (
    "'id', v.id, 'sku', v.sku, 'title', v.title, 'options', {options}, 'price', v.price, "
    "'compare_at_price', v.compare_at_price, 'currency', v.currency, 'stock', v.stock, "
    "'image_url', v.image_url, 'weight_grams', v.weight_grams"
)
_UTC_PG = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
_DOCUMENT = {
    "postgresql": "json_build_object("  # noqa: S608 (constant SQL, no input in it)
    + _FIELDS.format(
        p="product",
        tags="product.tags",
        published="product.published",
        images="product.images",
        created=_UTC_PG.format("product.created_at"),
        updated=_UTC_PG.format("product.updated_at"),
        variants="(SELECT coalesce(json_agg(json_build_object("  # noqa: S608  # nosec B608
        + _VARIANT_FIELDS.format(options="v.options")
        + ") ORDER BY v.position), '[]'::json) FROM variant v WHERE v.product_id = product.id)",
    )
    + ")::text",
    "sqlite": "json_object("  # noqa: S608
    + _FIELDS.format(
        p="product",
        tags="json(product.tags)",
        published="json(CASE WHEN product.published THEN 'true' ELSE 'false' END)",
        images="json(product.images)",
        created="replace(product.created_at, ' ', 'T') || 'Z'",
        updated="replace(product.updated_at, ' ', 'T') || 'Z'",
        variants="(SELECT json(coalesce(json_group_array(json(o.doc)), '[]')) FROM ("  # noqa: S608  # nosec B608
        "SELECT json_object(" + _VARIANT_FIELDS.format(options="json(v.options)") + ") AS doc "
        "FROM variant v WHERE v.product_id = product.id ORDER BY v.position) AS o)",
    )
    + ")",
}
_PRODUCT_DECODER = msgspec.json.Decoder(ProductRead)

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

Db = AsyncSession | Reader
"""Reads run on the request's session (writes) or on a read-only connection."""


def _dialect(db: Db) -> str:
    return db.get_bind().dialect.name if isinstance(db, AsyncSession) else db.dialect.name


def product_select(dialect: str) -> Select[Any]:
    """``SELECT`` of each product's JSON document (``doc``) from ``product``."""
    document: ColumnElement[str] = literal_column(_DOCUMENT[dialect]).label("doc")
    return select(document).select_from(Product.__table__)


_PRODUCT_SELECT = {name: product_select(name) for name in _DOCUMENT}
# Built once: SQLAlchemy memoizes a statement's cache key, so reusing the same object with
# a bound parameter skips rebuilding and re-hashing the statement on every request.
_PRODUCT_BY_KEY = {
    name: (
        stmt.where(_P.id == bindparam("key", type_=_P.id.type)),
        stmt.where(_P.slug == bindparam("key", type_=_P.slug.type)),
    )
    for name, stmt in _PRODUCT_SELECT.items()
}


def _raw_sql(statement: Select[Any]) -> str:
    from sqlalchemy.dialects import postgresql

    return str(statement.compile(dialect=postgresql.asyncpg.dialect()))  # type: ignore[no-untyped-call]


# The same two statements as plain asyncpg SQL ($1), for the hottest read: a product page
# missing from the cache. Skipping SQLAlchemy's execution layer there halves the CPU spent
# per read (ADR 4).
_RAW_BY_KEY = tuple(_raw_sql(s) for s in _PRODUCT_BY_KEY["postgresql"])


async def get_product_raw(pool: Any, id_or_slug: str, *, include_unpublished: bool) -> ProductRead:
    """:func:`get_product` on PostgreSQL through an asyncpg pool (same answer, less CPU).

    Raises ProductNotFound (404).
    """
    product_id, slug = parse_product_key(id_or_slug)
    doc = await pool.fetchval(_RAW_BY_KEY[0 if product_id else 1], product_id or slug)
    product = None if doc is None else _PRODUCT_DECODER.decode(doc)
    if product is None or not (product.published or include_unpublished):
        raise ProductNotFound("No such product.")
    return product


def _product(row: Row[Any] | Any) -> ProductRead:
    return _PRODUCT_DECODER.decode(row.doc)


def parse_product_key(id_or_slug: str) -> tuple[uuid.UUID | None, str]:
    """Split a path key into (uuid, "") or (None, slug)."""
    try:
        return uuid.UUID(id_or_slug), ""
    except ValueError:
        return None, id_or_slug


async def get_product(db: Db, id_or_slug: str, *, include_unpublished: bool) -> ProductRead:
    """One product with its variants and images, in one statement.

    Raises:
        ProductNotFound: (404) no such product, or it is unpublished and the caller is not staff.
    """
    product_id, slug = parse_product_key(id_or_slug)
    by_id, by_slug = _PRODUCT_BY_KEY[_dialect(db)]
    statement, key = (by_id, product_id) if product_id else (by_slug, slug)
    if isinstance(db, Reader):
        row = (await db.lookup(statement, {"key": key})).first()
    else:
        row = (await db.execute(statement, {"key": key})).first()
    product = None if row is None else _product(row)
    if product is None or not (product.published or include_unpublished):
        raise ProductNotFound("No such product.")
    return product


async def list_categories(db: Db) -> list[CategoryRead]:
    """Every category, by name."""
    c = Category.__table__.c
    stmt = select(c.id, c.name, c.slug, c.parent_id, c.description).order_by(c.name, c.id)
    return [
        CategoryRead(
            id=r.id, name=r.name, slug=r.slug, parent_id=r.parent_id, description=r.description
        )
        for r in await db.execute(stmt)
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
        stmt = stmt.where(
            exists().where(_V.product_id == _P.id, or_(_V.stock > 0, _V.stock.is_(None)))
        )
    if filters.tag:
        tag = " ".join(filters.tag.split()).lower()
        tags = ProductTag.__table__.c
        stmt = stmt.where(exists().where(tags.product_id == _P.id, tags.tag == tag))
    if filters.brand:
        stmt = stmt.where(_P.brand == filters.brand)
    return stmt


def _cursor_param(sort: str, value: CursorValue) -> Any:
    """The cursor's sort value as a query parameter. Raises ValueError when it cannot be one
    (wrong type, a number out of 64-bit range, a malformed timestamp)."""
    field = sort.lstrip("-")
    if field == "created_at":
        return cursor_instant(value)
    if field == "price" and isinstance(value, int) and abs(value) < 2**63:
        return value
    numeric = isinstance(value, int | float) and math.isfinite(value) and abs(value) < 2**63
    if field in ("rating", "relevance") and numeric:
        return float(value)  # type: ignore[arg-type]
    if field == "title" and isinstance(value, str) and len(value) <= 255 and "\x00" not in value:
        return value
    raise ValueError("bad cursor value")


def _cursor_value(value: Any) -> CursorValue:
    return value.isoformat() if isinstance(value, datetime) else value


async def list_products(
    db: Db,
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
    dialect = _dialect(db)
    stmt = _apply_filters(
        _PRODUCT_SELECT[dialect], filters, include_unpublished=include_unpublished
    )
    if filters.q:
        searched = search_join(stmt, filters.q, dialect)
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
    rows = (await db.execute(stmt.order_by(*order).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [_product(r) for r in rows]
    next_cursor = None
    if more:
        last = items[-1]
        last_value = rows[-1].score if sort == "relevance" else _sort_value(last, sort)
        next_cursor = encode_cursor(sort, _cursor_value(last_value), last.id)
    return ProductPage(items=items, next_cursor=next_cursor)


def _sort_value(product: ProductRead, sort: str) -> Any:
    field = {"price": "price_min", "rating": "rating_average"}.get(sort.lstrip("-"))
    return getattr(product, field or sort.lstrip("-"))
