"""Catalog business verbs: create, change and remove categories, products and variants.

Every function takes the request's session and only flushes; the caller's unit of work
commits. Slugs and SKUs are unique; money is integer minor units.

Two process-wide ORM ``before_flush`` hooks (registered by ``create_app`` and the CLI's
import, not at import time) write more than these functions show, in the same flush:

- ``catalog.changes``: every product, variant or tag added, changed or deleted here is
  recorded, and evicted from every process's product cache when the transaction commits;
- ``inventory.ledger``: a new variant with stock gets a ``received`` stock movement
  ("opening stock") and a changed ``Variant.stock`` an ``adjustment`` (this room cannot
  import inventory, hence the hook).
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import msgspec
from sqlalchemy import delete, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.audit.chain import record_audit
from emporium.catalog.content import (
    make_slug,
    normalize_tags,
    sanitize_html,
    search_document,
    tag_keys,
)
from emporium.catalog.exceptions import (
    CategoryInUse,
    CategoryNotFound,
    InvalidCategoryParent,
    LastVariant,
    ProductNotFound,
    SkuTaken,
    SlugTaken,
    VariantNotFound,
    VariantOrdered,
)
from emporium.catalog.models import Category, Product, ProductTag, Variant
from emporium.catalog.queries import get_product, parse_product_key
from emporium.catalog.schemas import (
    CategoryCreate,
    CategoryRead,
    CategoryUpdate,
    ImageIn,
    ProductCreate,
    ProductRead,
    ProductUpdate,
    VariantCreate,
    VariantRead,
    VariantUpdate,
)
from emporium.core.clock import utcnow
from emporium.core.errors import InvalidInput
from emporium.jobs.outbox import emit_event

Outcome = Literal["created", "updated", "unchanged"]


def _category_read(c: Category) -> CategoryRead:
    return CategoryRead(
        id=c.id, name=c.name, slug=c.slug, parent_id=c.parent_id, description=c.description
    )


def variant_read(v: Variant) -> VariantRead:
    """The API shape of a variant row."""
    return VariantRead(
        id=v.id,
        sku=v.sku,
        title=v.title,
        options=dict(v.options),
        price=v.price,
        compare_at_price=v.compare_at_price,
        currency=v.currency,
        stock=v.stock,
        image_url=v.image_url,
        weight_grams=v.weight_grams,
    )


async def _slug_free(session: AsyncSession, model: type[Any], slug: str, own: Any = None) -> bool:
    stmt = select(model.id).where(model.slug == slug)
    if own is not None:
        stmt = stmt.where(model.id != own)
    return (await session.execute(stmt.limit(1))).first() is None


async def unique_slug(session: AsyncSession, model: type[Any], text: str) -> str:
    """A slug for ``text`` that no row of ``model`` uses yet (``name``, ``name-2``, ...)."""
    base = make_slug(text)
    slug, n = base, 1
    while not await _slug_free(session, model, slug):
        n += 1
        slug = f"{base}-{n}"
    return slug


async def _category(session: AsyncSession, category_id: uuid.UUID) -> Category:
    category = await session.get(Category, category_id)
    if category is None:
        raise CategoryNotFound("No such category.")
    return category


async def _check_parent(
    session: AsyncSession, parent_id: uuid.UUID | None, own: uuid.UUID | None
) -> None:
    seen: set[uuid.UUID] = set()
    current = parent_id
    while current is not None:
        if current == own or current in seen:
            raise InvalidCategoryParent(
                "A category cannot be its own ancestor.",
                errors=[{"loc": ["body", "parent_id"], "msg": "cycle"}],
            )
        seen.add(current)
        parent = await session.get(Category, current)
        if parent is None:
            raise InvalidCategoryParent(
                "The parent category does not exist.",
                errors=[{"loc": ["body", "parent_id"], "msg": "no such category"}],
            )
        current = parent.parent_id


async def create_category(session: AsyncSession, data: CategoryCreate) -> CategoryRead:
    """Add a category. Raises SlugTaken (409), InvalidCategoryParent (422)."""
    await _check_parent(session, data.parent_id, None)
    if data.slug is not None and not await _slug_free(session, Category, data.slug):
        raise SlugTaken(f"The slug {data.slug!r} is taken.")
    slug = data.slug or await unique_slug(session, Category, data.name)
    category = Category(
        name=data.name, slug=slug, parent_id=data.parent_id, description=data.description
    )
    session.add(category)
    await session.flush()
    return _category_read(category)


async def update_category(
    session: AsyncSession, category_id: uuid.UUID, data: CategoryUpdate
) -> CategoryRead:
    """Change a category. Raises CategoryNotFound (404), SlugTaken (409), InvalidCategoryParent."""
    category = await _category(session, category_id)
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    if "parent_id" in changes:
        await _check_parent(session, changes["parent_id"], category.id)
    if "slug" in changes and not await _slug_free(session, Category, changes["slug"], category.id):
        raise SlugTaken(f"The slug {changes['slug']!r} is taken.")
    for key, value in changes.items():
        setattr(category, key, value)
    category.updated_at = utcnow()
    await session.flush()
    return _category_read(category)


async def delete_category(session: AsyncSession, category_id: uuid.UUID) -> None:
    """Remove an empty category. Raises CategoryNotFound (404), CategoryInUse (409)."""
    category = await _category(session, category_id)
    in_use = await session.scalar(
        select(
            exists().where(Product.category_id == category.id)
            | exists().where(Category.parent_id == category.id)
        )
    )
    if in_use:
        raise CategoryInUse("The category still has products or sub-categories.")
    await session.delete(category)
    await session.flush()


def _images(images: list[ImageIn]) -> list[dict[str, Any]]:
    return [{"url": i.url, "alt": i.alt, "position": n} for n, i in enumerate(images, start=1)]


def _refresh_search(product: Product) -> None:
    document = search_document(
        title=product.title,
        brand=product.brand,
        tags=list(product.tags),
        description_html=product.description,
    )
    for key, value in document.items():
        setattr(product, key, value)


async def _set_tags(session: AsyncSession, product: Product, tags: list[str]) -> None:
    product.tags = tags
    _refresh_search(product)
    await session.execute(delete(ProductTag).where(ProductTag.product_id == product.id))
    session.add_all(ProductTag(product_id=product.id, tag=t) for t in tag_keys(tags))


async def _refresh_price(session: AsyncSession, product: Product) -> None:
    await session.flush()
    lowest = await session.scalar(
        select(func.min(Variant.price)).where(Variant.product_id == product.id)
    )
    product.price_min = int(lowest or 0)


async def _check_sku_free(
    session: AsyncSession, sku: str | None, own: uuid.UUID | None = None
) -> None:
    if sku is None:  # optional, and unique only when given
        return
    stmt = select(Variant.id).where(Variant.sku == sku)
    if own is not None:
        stmt = stmt.where(Variant.id != own)
    if (await session.execute(stmt.limit(1))).first() is not None:
        raise SkuTaken(f"The SKU {sku!r} is taken.")


def _new_variant(product: Product, data: VariantCreate, position: int) -> Variant:
    return Variant(
        id=uuid.uuid4(),
        product_id=product.id,
        sku=data.sku,
        title=data.title,
        options=dict(data.options),
        price=data.price,
        compare_at_price=data.compare_at_price,
        currency=product.currency,
        stock=data.stock,
        image_url=data.image_url,
        weight_grams=data.weight_grams,
        position=position,
    )


async def create_product(
    session: AsyncSession,
    data: ProductCreate,
    *,
    currency: str,
    external_ref: str | None = None,
) -> ProductRead:
    """Add a product with its variants.

    Raises:
        CategoryNotFound: (404) ``category_id`` does not exist.
        SlugTaken, SkuTaken: (409) the slug or a SKU is in use (also twice in one request).
    """
    await _category(session, data.category_id)
    if data.slug is not None and not await _slug_free(session, Product, data.slug):
        raise SlugTaken(f"The slug {data.slug!r} is taken.")
    skus = [v.sku for v in data.variants if v.sku is not None]
    if len(set(skus)) != len(skus):
        raise SkuTaken("The same SKU appears twice.")
    for sku in skus:
        await _check_sku_free(session, sku)
    description = sanitize_html(data.description)
    tags = normalize_tags(data.tags)
    product = Product(
        id=uuid.uuid4(),
        slug=data.slug or await unique_slug(session, Product, data.title),
        title=data.title,
        description=description,
        category_id=data.category_id,
        brand=data.brand,
        published=data.published,
        images=_images(data.images),
        currency=currency,
        tax_class=data.tax_class,
        external_ref=external_ref,
        price_min=min(v.price for v in data.variants),
        rating_average=0.0,
        review_count=0,
    )
    session.add(product)
    await session.flush()
    await _set_tags(session, product, tags)
    session.add_all(_new_variant(product, v, n) for n, v in enumerate(data.variants))
    await _flush_unique(session)
    _product_event(session, "product.created", product)
    return await get_product(session, str(product.id), include_unpublished=True)


def _product_event(session: AsyncSession, event_type: str, product: Product) -> None:
    """Emit ``product.created|updated|deleted`` with the product's id, slug and title."""
    data = {"product_id": str(product.id), "slug": product.slug, "title": product.title}
    emit_event(session, event_type, {**data, "published": product.published})


async def _flush_unique(session: AsyncSession) -> None:
    """Flush, turning a unique-constraint race into a 409 instead of a 500."""
    try:
        await session.flush()
    except IntegrityError as exc:
        message = str(exc.orig).lower()
        if "sku" in message:
            raise SkuTaken("The SKU is taken.") from exc
        if "slug" in message:
            raise SlugTaken("The slug is taken.") from exc
        raise


async def _product(session: AsyncSession, key: uuid.UUID | str) -> Product:
    """The product by id, or by id or slug given as text. Raises ProductNotFound (404)."""
    if isinstance(key, str):
        product_id, slug = parse_product_key(key)
        product = (
            await session.get(Product, product_id)
            if product_id
            else await session.scalar(select(Product).where(Product.slug == slug))
        )
    else:
        product = await session.get(Product, key)
    if product is None:
        raise ProductNotFound("No such product.")
    return product


async def update_product(
    session: AsyncSession, product_key: uuid.UUID | str, data: ProductUpdate
) -> ProductRead:
    """Change a product's fields. Raises ProductNotFound, CategoryNotFound (404), SlugTaken."""
    product = await _product(session, product_key)
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    if "category_id" in changes:
        await _category(session, changes["category_id"])
    if "slug" in changes and not await _slug_free(session, Product, changes["slug"], product.id):
        raise SlugTaken(f"The slug {changes['slug']!r} is taken.")
    if "description" in changes:
        changes["description"] = sanitize_html(changes["description"])
    if "images" in changes:
        changes["images"] = _images(data.images)  # type: ignore[arg-type]
    tags = normalize_tags(changes.pop("tags")) if "tags" in changes else None
    for key, value in changes.items():
        setattr(product, key, value)
    await _set_tags(session, product, tags if tags is not None else list(product.tags))
    product.updated_at = utcnow()
    await _flush_unique(session)
    _product_event(session, "product.updated", product)
    await record_audit(
        session,
        action="product.updated",
        object_type="product",
        object_id=product.id,
        details={"changed": sorted(changes) + (["tags"] if tags is not None else [])},
    )
    return await get_product(session, str(product.id), include_unpublished=True)


async def delete_product(
    session: AsyncSession, product_key: uuid.UUID | str
) -> Literal["deleted", "archived"]:
    """Remove a product with its variants, tags and reviews; a product that has been
    ordered is archived instead (unpublished and kept, so that its orders, stock ledger and
    reviews stay whole). Raises ProductNotFound (404)."""
    product = await _product(session, product_key)
    try:
        async with session.begin_nested():
            await session.delete(product)
            await session.flush()
    except IntegrityError:  # order lines still point at its variants (RESTRICT)
        product.published = False
        product.updated_at = utcnow()
        await session.flush()
        _product_event(session, "product.updated", product)
        return "archived"
    _product_event(session, "product.deleted", product)
    return "deleted"


async def add_variant(
    session: AsyncSession, product_key: uuid.UUID | str, data: VariantCreate
) -> VariantRead:
    """Add a variant to a product. Raises ProductNotFound (404), SkuTaken (409)."""
    product = await _product(session, product_key)
    await _check_sku_free(session, data.sku)
    position = await session.scalar(
        select(func.coalesce(func.max(Variant.position), -1) + 1).where(
            Variant.product_id == product.id
        )
    )
    variant = _new_variant(product, data, int(position or 0))
    session.add(variant)
    await _flush_unique(session)
    await _refresh_price(session, product)
    product.updated_at = utcnow()
    _product_event(session, "product.updated", product)
    return variant_read(variant)


async def _audit_variant(
    session: AsyncSession, variant: Variant, changed: list[str], before: dict[str, int | None]
) -> None:
    """Record a variant's change; a price change as ``variant.price_changed`` with the prices
    before and after (minor units)."""
    details: dict[str, object] = {"changed": changed, "product_id": variant.product_id}
    action = "variant.updated"
    if {"price", "compare_at_price"} & set(changed):
        action = "variant.price_changed"
        details["before"] = before
        details["after"] = {"price": variant.price, "compare_at_price": variant.compare_at_price}
    await record_audit(
        session, action=action, object_type="variant", object_id=variant.id, details=details
    )


async def _variant(session: AsyncSession, variant_id: uuid.UUID) -> Variant:
    variant = await session.get(Variant, variant_id)
    if variant is None:
        raise VariantNotFound("No such variant.")
    return variant


async def update_variant(
    session: AsyncSession, variant_id: uuid.UUID, data: VariantUpdate
) -> VariantRead:
    """Change a variant (not its stock). Raises VariantNotFound (404), SkuTaken (409),
    InvalidInput (422) when the compare-at price would be below the price."""
    variant = await _variant(session, variant_id)
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    price = changes.get("price", variant.price)
    compare_at = changes.get("compare_at_price", variant.compare_at_price)
    if compare_at is not None and compare_at < price:
        raise InvalidInput(
            "The compare-at price is below the price.",
            errors=[{"loc": ["body", "compare_at_price"], "msg": "must be at least price"}],
        )
    if "sku" in changes:
        await _check_sku_free(session, changes["sku"], variant.id)
    prices_before = {"price": variant.price, "compare_at_price": variant.compare_at_price}
    for key, value in changes.items():
        setattr(variant, key, value)
    variant.updated_at = utcnow()
    await _flush_unique(session)
    product = await _product(session, variant.product_id)
    await _refresh_price(session, product)
    product.updated_at = utcnow()
    _product_event(session, "product.updated", product)
    await _audit_variant(session, variant, sorted(changes), prices_before)
    return variant_read(variant)


async def delete_variant(session: AsyncSession, variant_id: uuid.UUID) -> None:
    """Remove a variant. Raises VariantNotFound (404), LastVariant (409) for a product's last,
    VariantOrdered (409) for a variant that has been ordered."""
    variant = await _variant(session, variant_id)
    count = await session.scalar(
        select(func.count()).select_from(Variant).where(Variant.product_id == variant.product_id)
    )
    if (count or 0) <= 1:
        raise LastVariant("A product keeps at least one variant; delete the product instead.")
    product = await _product(session, variant.product_id)
    try:
        async with session.begin_nested():
            await session.delete(variant)
            await session.flush()
    except IntegrityError as exc:  # order lines still point at it (RESTRICT)
        raise VariantOrdered("This variant has been ordered; archive its product instead.") from exc
    await _refresh_price(session, product)
    product.updated_at = utcnow()
    _product_event(session, "product.updated", product)


async def set_review_stats(
    session: AsyncSession, product_id: uuid.UUID, *, rating_average: float, review_count: int
) -> None:
    """Store a product's review aggregates (kept by the reviews room in its transaction)."""
    product = await _product(session, product_id)
    product.rating_average = round(rating_average, 2)
    product.review_count = review_count
    await session.flush()
