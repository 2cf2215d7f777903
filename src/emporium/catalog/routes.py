"""HTTP routes of the catalog: parse, authorise, call one service function, return a schema."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import MediaType, Request, Response, Router, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from emporium.accounts.audiences import PUBLIC, STAFF
from emporium.accounts.identity import is_staff
from emporium.catalog import queries, service
from emporium.catalog.reads import ProductReadsDep
from emporium.catalog.schemas import (
    MAX_MONEY,
    CategoryCreate,
    CategoryRead,
    CategoryUpdate,
    ProductCreate,
    ProductFilters,
    ProductPage,
    ProductRead,
    ProductSort,
    ProductUpdate,
    VariantCreate,
    VariantRead,
    VariantUpdate,
)
from emporium.core.config import SettingsDep
from emporium.core.db.pagination import DEFAULT_LIMIT, Cursor, Limit
from emporium.core.db.uow import DbReader, DbSession
from emporium.core.errors import problem_responses
from emporium.core.http.routing import audience_router

Price = Annotated[
    int | None,
    QueryParameter(
        ge=0,
        le=MAX_MONEY,
        description="minor units (cents)",
        schema_extra={"minimum": 0, "maximum": MAX_MONEY},
    ),
]


@get("/categories", summary="List all categories")
async def list_categories(reader: DbReader) -> list[CategoryRead]:
    """Every category as a flat list; build the tree from ``parent_id``."""
    return await queries.list_categories(reader)


@post("/categories", summary="Create a category")
async def create_category(session: DbSession, data: JSONBody[CategoryCreate]) -> CategoryRead:
    """Staff: add a category (409 ``slug_taken``, 422 ``invalid_parent``)."""
    return await service.create_category(session, data)


@patch("/categories/{category_id:uuid}")
async def update_category(
    session: DbSession, category_id: FromPath[uuid.UUID], data: JSONBody[CategoryUpdate]
) -> CategoryRead:
    """Staff: change a category."""
    return await service.update_category(session, category_id, data)


@delete("/categories/{category_id:uuid}")
async def delete_category(session: DbSession, category_id: FromPath[uuid.UUID]) -> None:
    """Staff: delete an empty category (409 ``category_in_use`` otherwise)."""
    await service.delete_category(session, category_id)


@get("/products", summary="List, filter, search and sort products")
async def list_products(
    request: Request[Any, Any, Any],
    products: ProductReadsDep,
    category: Annotated[
        str | None,
        QueryParameter(
            max_length=200,
            description="id or slug; includes sub-categories",
            schema_extra={"maxLength": 200},
        ),
    ] = None,
    q: Annotated[
        str | None,
        QueryParameter(
            min_length=1,
            max_length=200,
            description="text search: products with every word (the first 8 words count; by "
            "relevance, the 200 newest matches are ranked)",
            schema_extra={"minLength": 1, "maxLength": 200},
        ),
    ] = None,
    min_price: Price = None,
    max_price: Price = None,
    in_stock: FromQuery[bool | None] = None,
    tag: Annotated[
        str | None, QueryParameter(max_length=100, schema_extra={"maxLength": 100})
    ] = None,
    brand: Annotated[
        str | None, QueryParameter(max_length=200, schema_extra={"maxLength": 200})
    ] = None,
    sort: Annotated[
        ProductSort | None,
        QueryParameter(description="default: relevance with q, else -created_at"),
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ProductPage:
    """A keyset page of products; anonymous callers see published products only."""
    filters = ProductFilters(
        category=category,
        q=q,
        min_price=min_price,
        max_price=max_price,
        in_stock=in_stock,
        tag=tag,
        brand=brand,
    )
    return await products.page(
        filters,
        sort=sort,
        limit=limit,
        cursor=cursor,
        include_unpublished=await is_staff(request),
    )


@get(
    "/products/{id_or_slug:str}",
    summary="Get a product by id or slug",
    responses=problem_responses(404),
)
async def get_product(
    request: Request[Any, Any, Any], products: ProductReadsDep, id_or_slug: FromPath[str]
) -> Response[ProductRead]:
    """One product with its variants and images (404 ``product_not_found``): the document
    as the product cache keeps it, already encoded."""
    document = await products.product_document(
        id_or_slug, include_unpublished=await is_staff(request)
    )
    return Response(content=document, media_type=MediaType.JSON)  # type: ignore[arg-type]


@post("/products", summary="Create a product")
async def create_product(
    session: DbSession, settings: SettingsDep, data: JSONBody[ProductCreate]
) -> ProductRead:
    """Staff: add a product with at least one variant."""
    return await service.create_product(session, data, currency=settings.currency)


@patch("/products/{id_or_slug:str}")
async def update_product(
    session: DbSession, id_or_slug: FromPath[str], data: JSONBody[ProductUpdate]
) -> ProductRead:
    """Staff: change a product's fields."""
    return await service.update_product(session, id_or_slug, data)


@delete("/products/{id_or_slug:str}")
async def delete_product(session: DbSession, id_or_slug: FromPath[str]) -> None:
    """Staff: delete a product with its variants and reviews; a product that has been
    ordered is archived instead (unpublished, kept for its orders and stock ledger)."""
    await service.delete_product(session, id_or_slug)


@post("/products/{id_or_slug:str}/variants")
async def add_variant(
    session: DbSession, id_or_slug: FromPath[str], data: JSONBody[VariantCreate]
) -> VariantRead:
    """Staff: add a variant to a product (409 ``sku_taken``)."""
    return await service.add_variant(session, id_or_slug, data)


@patch("/variants/{variant_id:uuid}")
async def update_variant(
    session: DbSession, variant_id: FromPath[uuid.UUID], data: JSONBody[VariantUpdate]
) -> VariantRead:
    """Staff: change a variant's SKU, title, options or prices."""
    return await service.update_variant(session, variant_id, data)


@delete("/variants/{variant_id:uuid}")
async def delete_variant(session: DbSession, variant_id: FromPath[uuid.UUID]) -> None:
    """Staff: delete a variant (409 ``last_variant`` for a product's only one)."""
    await service.delete_variant(session, variant_id)


catalog_router = Router(
    path="/",
    route_handlers=[
        # Staff first: each path then keeps its place in the OpenAPI document.
        audience_router(
            STAFF,
            tags=["catalog"],
            refusals=(404, 409, 415),
            route_handlers=[
                create_category,
                update_category,
                delete_category,
                create_product,
                update_product,
                delete_product,
                add_variant,
                update_variant,
                delete_variant,
            ],
        ),
        audience_router(
            PUBLIC, tags=["catalog"], route_handlers=[list_categories, list_products, get_product]
        ),
    ],
)
