"""The baseline for the product read: a raw ASGI app, no framework, no ORM.

``GET /products/{id}`` reads one published product and its variants with one prebuilt query
(product LEFT JOIN variant, ordered by position) through an asyncpg pool, and answers the
same JSON document as Emporium's ``GET /api/v1/products/{id}`` (encoded with msgspec).
``GET /products?limit=N[&category=SLUG][&cursor=C]`` answers a keyset page of published
products in Emporium's default order (``-created_at``, ties by id), the same document as
``GET /api/v1/products`` with those parameters: one statement (the category's subtree by a
recursive CTE in the same statement), each product rendered as JSON by PostgreSQL as
Emporium's listing does, decoded and encoded again with msgspec with the page's
``next_cursor`` (``[sort, created_at, id]``, base64url). ``GET /readyz`` answers once the pool
is up. Anything else is 404.

It runs under the same server stack as Emporium: uvicorn with uvloop and httptools::

    BASELINE_DSN=postgresql://postgres@127.0.0.1:5432/emporium_bench \\
        .venv/bin/python bench/raw_baseline.py --port 8001 --workers 2

``BASELINE_POOL_SIZE`` (default 20, per worker) matches Emporium's write pool at its former
default (``pool_size`` 10 plus ``max_overflow`` 10; the default pool size is 3 since issue 10).
"""

from __future__ import annotations

import argparse
import base64
import os
import urllib.parse
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

QUERY = """
SELECT p.id, p.slug, p.title, p.description, p.category_id, p.brand, p.tags, p.tax_class,
       p.published, p.images, p.rating_average, p.review_count, p.price_min, p.currency,
       p.created_at, p.updated_at,
       v.id AS v_id, v.sku, v.title AS v_title, v.options, v.price, v.compare_at_price,
       v.currency AS v_currency, v.stock, v.image_url, v.weight_grams
FROM product AS p
LEFT JOIN variant AS v ON v.product_id = p.id
WHERE p.id = $1 AND p.published
ORDER BY v.position, v.id
"""

# The listing: the same keyset statement as Emporium's (product JSON built by PostgreSQL,
# variants aggregated in position order), written out here so the baseline does not move
# when Emporium's code does.
_UTC = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
_DOC = (
    "json_build_object('id', p.id, 'slug', p.slug, 'title', p.title, "  # noqa: S608
    "'description', p.description, 'category_id', p.category_id, 'brand', p.brand, "
    "'tags', p.tags, 'tax_class', p.tax_class, 'published', p.published, 'images', p.images, "
    "'rating_average', p.rating_average, 'review_count', p.review_count, "
    "'price_min', p.price_min, 'currency', p.currency, "
    f"'created_at', {_UTC.format('p.created_at')}, 'updated_at', {_UTC.format('p.updated_at')}, "
    "'variants', (SELECT coalesce(json_agg(json_build_object('id', v.id, 'sku', v.sku, "
    "'title', v.title, 'options', v.options, 'price', v.price, "
    "'compare_at_price', v.compare_at_price, 'currency', v.currency, 'stock', v.stock, "
    "'image_url', v.image_url, 'weight_grams', v.weight_grams) ORDER BY v.position), "
    "'[]'::json) FROM variant v WHERE v.product_id = p.id))::text AS doc, p.created_at, p.id"
)
_SUBTREE = (
    "WITH RECURSIVE subtree(id) AS (SELECT id FROM category WHERE slug = $2 UNION ALL "
    "SELECT c.id FROM category c JOIN subtree s ON c.parent_id = s.id) "
)
_IN_SUBTREE = " AND p.category_id IN (SELECT id FROM subtree)"
_AFTER = " AND (p.created_at, p.id) < (${n}, ${m})"
_ORDER = " ORDER BY p.created_at DESC, p.id DESC LIMIT $1"


def _listing_sql(category: bool, cursor: bool) -> str:
    sql = ("" if not category else _SUBTREE) + f"SELECT {_DOC} FROM product p WHERE p.published"  # noqa: S608
    if category:
        sql += _IN_SUBTREE
    if cursor:
        first = 3 if category else 2
        sql += _AFTER.format(n=first, m=first + 1)
    return sql + _ORDER


class _Product(msgspec.Struct):
    """A listed product as Emporium types it (timestamps and ratings re-rendered the same)."""

    id: uuid.UUID
    slug: str
    title: str
    description: str
    category_id: uuid.UUID
    brand: str | None
    tags: list[str]
    tax_class: str
    published: bool
    images: list[dict[str, Any]]
    rating_average: float
    review_count: int
    price_min: int
    currency: str
    created_at: datetime
    updated_at: datetime
    variants: list[dict[str, Any]]


class _Page(msgspec.Struct):
    items: list[_Product]
    next_cursor: str | None


_decode_product = msgspec.json.Decoder(_Product).decode
LISTINGS = {(c, k): _listing_sql(c, k) for c in (False, True) for k in (False, True)}
SORT = "-created_at"

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode
_JSON_HEADERS = [(b"content-type", b"application/json")]
_NOT_FOUND = _encode({"status": 404, "title": "Not Found"})


async def _init_connection(conn: asyncpg.Connection) -> None:
    # The catalog's JSON columns (tags, images, options) are ``json``: decode them with msgspec.
    await conn.set_type_codec(
        "json",
        encoder=lambda value: _encode(value).decode(),
        decoder=_decode,
        schema="pg_catalog",
    )


def _document(rows: list[asyncpg.Record]) -> dict[str, Any]:
    p = rows[0]
    variants = [
        {
            "id": r["v_id"],
            "sku": r["sku"],
            "title": r["v_title"],
            "options": r["options"],
            "price": r["price"],
            "compare_at_price": r["compare_at_price"],
            "currency": r["v_currency"],
            "stock": r["stock"],
            "image_url": r["image_url"],
            "weight_grams": r["weight_grams"],
        }
        for r in rows
        if r["v_id"] is not None
    ]
    return {
        "id": p["id"],
        "slug": p["slug"],
        "title": p["title"],
        "description": p["description"],
        "category_id": p["category_id"],
        "brand": p["brand"],
        "tags": p["tags"],
        "tax_class": p["tax_class"],
        "published": p["published"],
        "images": [
            {"url": i["url"], "alt": i.get("alt", ""), "position": n}
            for n, i in enumerate(p["images"], start=1)
        ],
        "rating_average": p["rating_average"],
        "review_count": p["review_count"],
        "price_min": p["price_min"],
        "currency": p["currency"],
        "created_at": p["created_at"],
        "updated_at": p["updated_at"],
        "variants": variants,
    }


def _cursor(created_at: datetime, product_id: uuid.UUID) -> str:
    raw = _encode([SORT, created_at.astimezone(UTC).isoformat(), str(product_id)])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _after(cursor: str) -> tuple[datetime, uuid.UUID]:
    sort, value, last_id = _decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    if sort != SORT:
        raise ValueError("cursor for another sort")
    return datetime.fromisoformat(value), uuid.UUID(last_id)


async def listing(pool: asyncpg.Pool, query: bytes) -> bytes | None:
    """One page of ``GET /products`` (None: a parameter it does not support)."""
    params = dict(urllib.parse.parse_qsl(query.decode("latin-1")))
    try:
        limit = int(params.get("limit", "20"))
        after = _after(params["cursor"]) if "cursor" in params else None
    except (ValueError, TypeError, msgspec.DecodeError):
        return None
    category = params.get("category")
    if not 1 <= limit <= 100 or set(params) - {"limit", "cursor", "category"}:
        return None
    args: list[Any] = [limit + 1]
    if category:
        args.append(category)
    if after:
        args.extend(after)
    rows = await pool.fetch(LISTINGS[(category is not None, after is not None)], *args)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = _cursor(rows[-1]["created_at"], rows[-1]["id"])
    return _encode(_Page([_decode_product(r["doc"]) for r in rows], next_cursor))


class BaselineApp:
    """The whole ASGI application."""

    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                size = int(os.environ.get("BASELINE_POOL_SIZE", "20"))
                self.pool = await asyncpg.create_pool(
                    os.environ["BASELINE_DSN"],
                    min_size=min(2, size),
                    max_size=size,
                    init=_init_connection,
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.pool is not None:
                    await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        status, body = 404, _NOT_FOUND
        path: str = scope["path"]
        if path.startswith("/products/") and scope["method"] == "GET":
            try:
                product_id = uuid.UUID(path[10:])
            except ValueError:
                product_id = None
            if product_id is not None:
                assert self.pool is not None
                rows = await self.pool.fetch(QUERY, product_id)
                if rows:
                    status, body = 200, _encode(_document(rows))
        elif path == "/products" and scope["method"] == "GET":
            assert self.pool is not None
            page = await listing(self.pool, scope["query_string"])
            if page is not None:
                status, body = 200, page
        elif path == "/readyz":
            status, body = 200, b'{"status":"ready"}'
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


app = BaselineApp()


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="raw ASGI + asyncpg baseline server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if "BASELINE_DSN" not in os.environ:
        raise SystemExit("set BASELINE_DSN=postgresql://user@host:port/database")
    uvicorn.run(
        "raw_baseline:app",
        app_dir=str(Path(__file__).resolve().parent),
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        server_header=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
