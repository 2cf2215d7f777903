"""Idempotent catalog upserts for importers: the same input twice changes nothing.

A product is matched by its ``external_ref`` (for example ``dummyjson:12`` or
``shopify:classic-tee``), a category by its slug, a variant of it by its SKU, or, for a variant
without a SKU, by its title (its option values, unique within the product). Each upsert reports
whether it created, updated or left the row unchanged, so an import can say what it did.

Like ``catalog.service``, these writes go through the ORM, so the two ``before_flush`` hooks
named there also record cache evictions (``catalog.changes``) and stock movements
(``inventory.ledger``: opening stock, stock levels set).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from msgspec import Struct, field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.catalog.content import (
    make_slug,
    normalize_tags,
    sanitize_html,
    search_document,
    tag_keys,
)
from emporium.catalog.exceptions import SkuTaken
from emporium.catalog.models import Category, Product, ProductTag, Variant
from emporium.catalog.service import unique_slug
from emporium.core.clock import utcnow

Outcome = Literal["created", "updated", "unchanged"]


class ImportVariant(Struct):
    """A variant as an importer read it; money in minor units.

    ``sku`` None: the variant has no SKU. ``stock`` None: its inventory is not tracked.
    """

    sku: str | None
    title: str
    price: int
    stock: int | None
    options: dict[str, str] = field(default_factory=dict)
    compare_at_price: int | None = None
    image_url: str | None = None
    weight_grams: int | None = None


def _variant_key(sku: str | None, title: str) -> tuple[str, str]:
    """How a re-import finds a product's variant: its SKU, else its title."""
    return ("sku", sku) if sku is not None else ("title", title)


class ImportProduct(Struct):
    """A product as an importer read it; ``category_path`` lists category names, root first."""

    external_ref: str
    title: str
    description: str
    category_path: list[str]
    variants: list[ImportVariant]
    brand: str | None = None
    tags: list[str] = field(default_factory=list)
    published: bool = True
    images: list[dict[str, str]] = field(default_factory=list)
    slug: str | None = None
    created_at: datetime | None = None
    tax_class: str | None = None
    """None: the source says nothing (a new product gets ``standard``, a known one keeps its)."""


async def ensure_category_path(
    session: AsyncSession, names: list[str], cache: dict[tuple[str, ...], uuid.UUID]
) -> tuple[uuid.UUID, int]:
    """The id of the last category of ``names`` (created with its ancestors where missing).

    Returns the id and how many categories were created.
    """
    parent: uuid.UUID | None = None
    created = 0
    for depth in range(1, len(names) + 1):
        key = tuple(names[:depth])
        if key in cache:
            parent = cache[key]
            continue
        slug = make_slug("-".join(key))
        found = await session.scalar(select(Category).where(Category.slug == slug))
        if found is None:
            found = Category(id=uuid.uuid4(), name=key[-1], slug=slug, parent_id=parent)
            session.add(found)
            await session.flush()
            created += 1
        cache[key] = found.id
        parent = found.id
    if parent is None:
        raise ValueError("empty category path")
    return parent, created


def _product_fields(item: ImportProduct, category_id: uuid.UUID) -> dict[str, Any]:
    description = sanitize_html(item.description)
    tags = normalize_tags(item.tags)
    return {
        "title": item.title,
        "description": description,
        "category_id": category_id,
        "brand": item.brand,
        "tags": tags,
        "published": item.published,
        **({"tax_class": item.tax_class} if item.tax_class is not None else {}),
        "images": [
            {"url": i["url"], "alt": i.get("alt", ""), "position": n}
            for n, i in enumerate(item.images, start=1)
        ],
        "price_min": min(v.price for v in item.variants),
        **search_document(
            title=item.title, brand=item.brand, tags=tags, description_html=description
        ),
    }


def _variant_fields(v: ImportVariant, position: int) -> dict[str, Any]:
    return {
        "title": v.title,
        "options": dict(v.options),
        "price": v.price,
        "compare_at_price": v.compare_at_price,
        "weight_grams": v.weight_grams,
        "stock": v.stock,
        "image_url": v.image_url,
        "position": position,
    }


def _new_variant(
    product_id: uuid.UUID, v: ImportVariant, position: int, *, currency: str, now: datetime
) -> Variant:
    return Variant(
        id=uuid.uuid4(),
        product_id=product_id,
        sku=v.sku,
        currency=currency,
        created_at=now,
        updated_at=now,
        **_variant_fields(v, position),
    )


async def _sku_owner(session: AsyncSession, sku: str | None) -> uuid.UUID | None:
    if sku is None:
        return None
    return await session.scalar(select(Variant.product_id).where(Variant.sku == sku))


async def upsert_product(
    session: AsyncSession,
    item: ImportProduct,
    *,
    category_id: uuid.UUID,
    currency: str,
) -> tuple[Outcome, uuid.UUID]:
    """Create or bring up to date the product with ``item.external_ref``.

    Raises:
        SkuTaken: (409) a SKU of ``item`` belongs to another product.
    """
    wanted = _product_fields(item, category_id)
    product = await session.scalar(select(Product).where(Product.external_ref == item.external_ref))
    for v in item.variants:
        owner = await _sku_owner(session, v.sku)
        if owner is not None and (product is None or owner != product.id):
            raise SkuTaken(f"SKU {v.sku!r} belongs to another product.")
    if product is None:
        now = item.created_at or utcnow()
        product = Product(
            id=uuid.uuid4(),
            external_ref=item.external_ref,
            currency=currency,
            slug=await unique_slug(session, Product, item.slug or item.title),
            rating_average=0.0,
            review_count=0,
            created_at=now,
            updated_at=now,
            **wanted,
        )
        session.add(product)
        await session.flush()
        session.add_all(ProductTag(product_id=product.id, tag=t) for t in tag_keys(wanted["tags"]))
        session.add_all(
            _new_variant(product.id, v, n, currency=currency, now=now)
            for n, v in enumerate(item.variants)
        )
        await session.flush()
        return "created", product.id
    changed = await _update_product(session, product, wanted, item, currency)
    return ("updated" if changed else "unchanged"), product.id


async def _sync_tags(session: AsyncSession, product_id: uuid.UUID, tags: list[str]) -> bool:
    """Make the product's tags the keys of ``tags``; True when they changed."""
    existing = set(
        await session.scalars(select(ProductTag.tag).where(ProductTag.product_id == product_id))
    )
    keys = set(tag_keys(tags))
    if existing == keys:
        return False
    for tag in existing - keys:
        await session.delete(await session.get(ProductTag, (product_id, tag)))
    session.add_all(ProductTag(product_id=product_id, tag=t) for t in keys - existing)
    return True


async def _sync_variants(
    session: AsyncSession,
    product_id: uuid.UUID,
    item: ImportProduct,
    currency: str,
    now: datetime,
) -> bool:
    """Make the product's variants those of ``item`` (matched by SKU, else title): new ones
    added with their opening stock, changed ones updated (stock excepted), missing ones
    deleted; True when anything changed."""
    changed = False
    variants = {
        _variant_key(v.sku, v.title): v
        for v in await session.scalars(select(Variant).where(Variant.product_id == product_id))
    }
    for n, v in enumerate(item.variants):
        fields = _variant_fields(v, n)
        # The file's stock is the opening balance of a new variant only: afterwards stock
        # belongs to inventory (orders and adjustments, each in the ledger), so a re-import
        # neither resets what was sold nor reports a change for it.
        del fields["stock"]
        current = variants.pop(_variant_key(v.sku, v.title), None)
        if current is None:
            session.add(_new_variant(product_id, v, n, currency=currency, now=now))
            changed = True
        elif any(getattr(current, k) != val for k, val in fields.items()):
            for k, val in fields.items():
                setattr(current, k, val)
            current.updated_at = now
            changed = True
    for gone in variants.values():
        await session.delete(gone)
        changed = True
    return changed


async def _update_product(
    session: AsyncSession,
    product: Product,
    wanted: dict[str, Any],
    item: ImportProduct,
    currency: str,
) -> bool:
    changed = False
    for key, value in wanted.items():
        if getattr(product, key) != value:
            setattr(product, key, value)
            changed = True
    changed = await _sync_tags(session, product.id, wanted["tags"]) or changed
    now = utcnow()
    changed = await _sync_variants(session, product.id, item, currency, now) or changed
    if changed:
        product.updated_at = now
        await session.flush()
    return changed
