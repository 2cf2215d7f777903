"""The catalog's read side: products by id or slug, filtered and sorted keyset pages.

Reads use prebuilt Core statements (SQLAlchemy caches their compiled form) and let the
database aggregate each product's variants into JSON, so a product or a whole page costs one
statement whatever the page's depth.
"""

from __future__ import annotations

import functools
import math
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import msgspec
from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
    any_,
    bindparam,
    exists,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.catalog.cache import CategoryRow
from emporium.catalog.exceptions import ProductNotFound
from emporium.catalog.models import Category, Product, ProductTag, Variant
from emporium.catalog.schemas import (
    CategoryRead,
    ProductFilters,
    ProductPage,
    ProductRead,
    ProductSort,
)
from emporium.catalog.search import MAX_RANKED, pg_match, search_terms, sqlite_matches
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


_CATEGORY_ROWS: Select[Any] = select(
    Category.__table__.c.id, Category.__table__.c.slug, Category.__table__.c.parent_id
)
_RAW_CATEGORY_ROWS = "SELECT id, slug, parent_id FROM category"


async def category_rows(db: Db) -> list[CategoryRow]:
    """``(id, slug, parent_id)`` of every category (for ``catalog.cache.CategoryTree``)."""
    return [(r.id, r.slug, r.parent_id) for r in await db.execute(_CATEGORY_ROWS)]


async def category_rows_raw(pool: Any) -> list[CategoryRow]:
    """:func:`category_rows` on PostgreSQL through an asyncpg pool."""
    return [(r[0], r[1], r[2]) for r in await pool.fetch(_RAW_CATEGORY_ROWS)]


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


class Shape(NamedTuple):
    """What a listing statement depends on besides bound values: one statement per shape is
    built (and on PostgreSQL compiled) once per process and reused (:func:`listing_statement`)."""

    dialect: str
    include_unpublished: bool
    category: bool
    min_price: bool
    max_price: bool
    in_stock: bool
    tag: bool
    brand: bool
    search: bool
    sort: str
    after: bool


def _in_categories(dialect: str) -> ColumnElement[bool]:
    """``product.category_id`` is one of ``:category_ids`` (a category and its descendants,
    resolved by ``catalog.cache.CategoryTree``)."""
    if dialect == "postgresql":
        ids = bindparam("category_ids", type_=postgresql.ARRAY(_P.category_id.type))
        return _P.category_id == any_(ids)
    return _P.category_id.in_(bindparam("category_ids", expanding=True, type_=_P.category_id.type))


def _filtered(stmt: Select[Any], shape: Shape) -> Select[Any]:
    if not shape.include_unpublished:
        stmt = stmt.where(_P.published.is_(True))
    if shape.category:
        stmt = stmt.where(_in_categories(shape.dialect))
    if shape.min_price:
        stmt = stmt.where(_P.price_min >= bindparam("min_price", type_=_P.price_min.type))
    if shape.max_price:
        stmt = stmt.where(_P.price_min <= bindparam("max_price", type_=_P.price_min.type))
    if shape.in_stock:
        stmt = stmt.where(
            exists().where(_V.product_id == _P.id, or_(_V.stock > 0, _V.stock.is_(None)))
        )
    if shape.tag:
        tags = ProductTag.__table__.c
        tag = bindparam("tag", type_=tags.tag.type)
        stmt = stmt.where(exists().where(tags.product_id == _P.id, tags.tag == tag))
    if shape.brand:
        stmt = stmt.where(_P.brand == bindparam("brand", type_=_P.brand.type))
    return stmt


def _keyset(
    stmt: Select[Any], key: ColumnElement[Any], last_id: ColumnElement[Any], shape: Shape
) -> Select[Any]:
    """Order ``stmt`` by ``(key, last_id)`` in the shape's direction, after the cursor's
    ``(:after_value, :after_id)`` when it has one, and limit it to ``:row_limit`` rows."""
    descending = shape.sort == "relevance" or _SORT_COLUMNS[shape.sort][1]
    if shape.after:
        value = bindparam("after_value", type_=key.type)
        after = tuple_(value, bindparam("after_id", type_=_P.id.type))
        stmt = stmt.where(
            tuple_(key, last_id) < after if descending else tuple_(key, last_id) > after
        )
    order = (key.desc(), last_id.desc()) if descending else (key.asc(), last_id.asc())
    return stmt.order_by(*order).limit(bindparam("row_limit", type_=Integer))


def _pg_relevance(shape: Shape) -> Select[Any]:
    """PostgreSQL relevance: rank only the ``MAX_RANKED`` newest matches (an index scan in
    ``created_at`` order, stopping at the bound; ADR 0023), keep the page's rows of them,
    and build the documents of those rows only."""
    match, score = pg_match()
    candidates = (
        _filtered(select(_P.id.label("id"), score.label("score")), shape)
        .where(match)
        .order_by(_P.created_at.desc(), _P.id.desc())
        .limit(literal_column(str(MAX_RANKED), Integer))
        .subquery("candidates")
    )
    page = _keyset(
        select(candidates.c.id, candidates.c.score), candidates.c.score, candidates.c.id, shape
    ).subquery("page")
    document = _PRODUCT_SELECT["postgresql"]
    return (
        document.add_columns(page.c.score)
        .join_from(Product.__table__, page, page.c.id == _P.id)
        .order_by(page.c.score.desc(), page.c.id.desc())
    )


@functools.cache
def listing_statement(shape: Shape) -> Select[Any]:
    """The statement of one listing shape, with bound parameters (``category_ids``,
    ``min_price``, ``max_price``, ``tag``, ``brand``, ``q`` or ``fts_query``, ``after_value``,
    ``after_id``, ``row_limit``): columns ``doc`` and, when searching, ``score``."""
    if shape.search and shape.dialect == "postgresql" and shape.sort == "relevance":
        return _pg_relevance(shape)
    stmt = _filtered(_PRODUCT_SELECT[shape.dialect], shape)
    score: ColumnElement[float] | None = None
    if shape.search and shape.dialect == "postgresql":
        match, score = pg_match()
        stmt = stmt.where(match).add_columns(score.label("score"))
    elif shape.search:
        matches = sqlite_matches()
        stmt = stmt.join_from(
            Product.__table__, matches, matches.c.rid == literal_column("product.rowid")
        )
        score = matches.c.score
        stmt = stmt.add_columns(score.label("score"))
    if shape.sort == "relevance":
        assert score is not None
        return _keyset(stmt, score, _P.id, shape)
    return _keyset(stmt, _SORT_COLUMNS[shape.sort][0], _P.id, shape)


_PG_DIALECT = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]


@functools.cache
def raw_listing(shape: Shape) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """The PostgreSQL listing statement of ``shape`` as asyncpg SQL (``$n``), the names of
    its parameters in ``$n`` order and the values of those fixed in the statement (such as
    the ``0`` of ``stock > 0``), compiled once per shape."""
    compiled = listing_statement(shape).compile(dialect=_PG_DIALECT)
    fixed = {k: v for k, v in compiled.params.items() if v is not None}
    return str(compiled), tuple(compiled.positiontup or ()), fixed


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


class Listing(NamedTuple):
    """A listing request made ready to run: its statement's shape and bound values."""

    shape: Shape
    params: dict[str, Any]
    limit: int


def _checked_sort(filters: ProductFilters, sort: ProductSort | None) -> str:
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
    return sort


def prepare_listing(
    filters: ProductFilters,
    *,
    dialect: str,
    sort: ProductSort | None,
    limit: int,
    cursor: str | None,
    include_unpublished: bool,
    category_ids: Sequence[uuid.UUID] = (),
) -> Listing | None:
    """Check a listing request and bind its values; None when it can match nothing (``q``
    without a word, or a ``category`` that does not exist: ``category_ids`` are the ids of
    the category and its descendants, empty when there is no such category).

    ``sort`` defaults to ``relevance`` when ``q`` is given, else ``-created_at``.

    Raises:
        InvalidInput: (422) ``relevance`` without ``q``, a bad price range, or a bad cursor.
    """
    checked = _checked_sort(filters, sort)
    params: dict[str, Any] = {"row_limit": limit + 1}
    if filters.q:
        terms = search_terms(filters.q, dialect)
        if terms is None:
            return None
        params["q" if dialect == "postgresql" else "fts_query"] = terms
    if cursor:
        value, params["after_id"] = decode_cursor(cursor, checked)
        try:
            params["after_value"] = _cursor_param(checked, value)
        except ValueError as exc:
            raise invalid_cursor() from exc
    if filters.category:
        if not category_ids:
            return None
        params["category_ids"] = list(category_ids)
    if filters.tag:
        params["tag"] = " ".join(filters.tag.split()).lower()
    params.update({k: getattr(filters, k) for k in ("min_price", "max_price", "brand")})
    shape = Shape(
        dialect=dialect,
        include_unpublished=include_unpublished,
        category=bool(filters.category),
        min_price=filters.min_price is not None,
        max_price=filters.max_price is not None,
        in_stock=bool(filters.in_stock),
        tag=bool(filters.tag),
        brand=bool(filters.brand),
        search=bool(filters.q),
        sort=checked,
        after=bool(cursor),
    )
    return Listing(shape, {k: v for k, v in params.items() if v is not None}, limit)


def listing_page(listing: Listing, rows: Sequence[Any]) -> ProductPage:
    """The page of ``rows`` (``doc`` first, then ``score`` when searching), read with
    ``row_limit`` = limit + 1: the extra row only says that there is a next page."""
    limit, sort = listing.limit, listing.shape.sort
    more = len(rows) > limit
    rows = rows[:limit]
    items = [_PRODUCT_DECODER.decode(r[0]) for r in rows]
    next_cursor = None
    if more:
        last = items[-1]
        last_value = rows[-1][1] if sort == "relevance" else _sort_value(last, sort)
        next_cursor = encode_cursor(sort, _cursor_value(last_value), last.id)
    return ProductPage(items=items, next_cursor=next_cursor)


async def list_products(db: Db, listing: Listing) -> ProductPage:
    """One keyset page of products for a prepared listing (:func:`prepare_listing`) in one
    statement, built once per shape; ties are broken by id, so paging visits every product
    exactly once."""
    result = await db.execute(listing_statement(listing.shape), listing.params)
    return listing_page(listing, result.all())


async def list_products_raw(pool: Any, listing: Listing) -> ProductPage:
    """:func:`list_products` on PostgreSQL through an asyncpg pool: the same statement,
    compiled once per shape, without SQLAlchemy's execution layer (same answer, less CPU)."""
    sql, names, fixed = raw_listing(listing.shape)
    params = {**fixed, **listing.params} if fixed else listing.params
    rows = await pool.fetch(sql, *(params[name] for name in names))
    return listing_page(listing, rows)


def _sort_value(product: ProductRead, sort: str) -> Any:
    field = {"price": "price_min", "rating": "rating_average"}.get(sort.lstrip("-"))
    return getattr(product, field or sort.lstrip("-"))
