"""API shapes of the catalog (msgspec structs). Money: integer minor units + ISO 4217 code.

Input structs forbid unknown fields, so a client can never set a field the API does not
offer (mass assignment; OWASP API3:2023).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

MAX_MONEY = 100_000_000_00  # 100 million in major units
MAX_STOCK = 1_000_000_000

Name = Annotated[str, Meta(min_length=1, max_length=200)]
Title = Annotated[str, Meta(min_length=1, max_length=255)]
Slug = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
Description = Annotated[str, Meta(max_length=50_000)]
Tag = Annotated[str, Meta(min_length=1, max_length=100)]
Brand = Annotated[str, Meta(min_length=1, max_length=200)]
SKU_PATTERN = r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"
"""A SKU: printable characters, spaces inside allowed (Shopify allows them), no control
characters and no leading or trailing space."""
Sku = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=100,
        pattern=SKU_PATTERN,
        description="optional; unique when given; printable, no leading or trailing space",
    ),
]
Money = Annotated[int, Meta(ge=0, le=MAX_MONEY, description="integer minor units (cents)")]
Grams = Annotated[int, Meta(ge=0, le=1_000_000_000, description="shipping weight in grams")]
TaxClass = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=50,
        pattern=r"^[a-z0-9_-]+$",
        description="the tax class whose rates apply (standard, reduced, zero, ...)",
    ),
]
Stock = Annotated[int, Meta(ge=0, le=MAX_STOCK)]
UntrackedStock = Annotated[
    int | None,
    Meta(description="units on hand; null when the variant's inventory is not tracked"),
]
Url = Annotated[str, Meta(min_length=8, max_length=2048, pattern=r"^https?://\S+$")]
OptionKey = Annotated[str, Meta(min_length=1, max_length=50)]
OptionValue = Annotated[str, Meta(min_length=1, max_length=100)]
Options = Annotated[
    dict[OptionKey, OptionValue], Meta(max_length=20, description="at most 20 options")
]

ProductSort = Literal[
    "relevance", "price", "-price", "created_at", "-created_at", "rating", "-rating", "title"
]


class ImageIn(Struct, forbid_unknown_fields=True):
    """An image by URL; ``alt`` is its text alternative."""

    url: Url
    alt: Annotated[str, Meta(max_length=500)] = ""


class ImageRead(Struct):
    """A product image; ``position`` starts at 1."""

    url: str
    alt: str
    position: int


class CategoryCreate(Struct, forbid_unknown_fields=True):
    """A new category; ``slug`` is derived from ``name`` when omitted."""

    name: Name
    slug: Slug | None = None
    parent_id: uuid.UUID | None = None
    description: Description = ""


class CategoryUpdate(Struct, forbid_unknown_fields=True):
    """Fields to change on a category; omitted fields stay as they are."""

    name: Name | UnsetType = UNSET
    slug: Slug | UnsetType = UNSET
    parent_id: uuid.UUID | UnsetType | None = UNSET
    description: Description | UnsetType = UNSET


class CategoryRead(Struct):
    """A category of the tree."""

    id: uuid.UUID
    name: str
    slug: str
    parent_id: uuid.UUID | None
    description: str


class VariantCreate(Struct, forbid_unknown_fields=True):
    """A new variant; ``stock`` is the quantity on hand when it is created, or null for a
    variant whose inventory is not tracked (always available, never short of stock).

    ``compare_at_price`` (the "was" price), when given, is at least ``price``: a ValueError
    (``400``, validation) otherwise.
    """

    title: Title
    price: Money
    sku: Sku | None = None
    options: Options = msgspec.field(default_factory=dict)
    compare_at_price: Money | None = None
    stock: Stock | None = 0
    image_url: Url | None = None
    weight_grams: Grams | None = None

    def __post_init__(self) -> None:
        if self.compare_at_price is not None and self.compare_at_price < self.price:
            raise ValueError("compare_at_price must be at least price")


class VariantUpdate(Struct, forbid_unknown_fields=True):
    """Fields to change on a variant. Stock changes only through stock adjustments."""

    sku: Sku | UnsetType | None = UNSET
    title: Title | UnsetType = UNSET
    price: Money | UnsetType = UNSET
    options: Options | UnsetType = UNSET
    compare_at_price: Money | UnsetType | None = UNSET
    image_url: Url | UnsetType | None = UNSET
    weight_grams: Grams | UnsetType | None = UNSET


class VariantRead(Struct):
    """A sellable variant; ``price`` in minor units of ``currency``."""

    id: uuid.UUID
    sku: str | None
    title: str
    options: dict[str, str]
    price: int
    compare_at_price: int | None
    currency: str
    stock: UntrackedStock
    image_url: str | None = None
    weight_grams: int | None = None


class ProductCreate(Struct, forbid_unknown_fields=True):
    """A new product with at least one variant. ``description`` is sanitised HTML."""

    title: Title
    category_id: uuid.UUID
    variants: Annotated[list[VariantCreate], Meta(min_length=1, max_length=100)]
    description: Description = ""
    slug: Slug | None = None
    brand: Brand | None = None
    tags: Annotated[list[Tag], Meta(max_length=50)] = msgspec.field(default_factory=list)
    published: bool = False
    images: Annotated[list[ImageIn], Meta(max_length=50)] = msgspec.field(default_factory=list)
    tax_class: TaxClass = "standard"


class ProductUpdate(Struct, forbid_unknown_fields=True):
    """Fields to change on a product; variants change through their own routes."""

    title: Title | UnsetType = UNSET
    slug: Slug | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    category_id: uuid.UUID | UnsetType = UNSET
    brand: Brand | UnsetType | None = UNSET
    tags: Annotated[list[Tag], Meta(max_length=50)] | UnsetType = UNSET
    published: bool | UnsetType = UNSET
    images: Annotated[list[ImageIn], Meta(max_length=50)] | UnsetType = UNSET
    tax_class: TaxClass | UnsetType = UNSET


class ProductRead(Struct):
    """A product with its variants and images; ``price_min`` is its cheapest variant."""

    id: uuid.UUID
    slug: str
    title: str
    description: str
    category_id: uuid.UUID
    brand: str | None
    tags: list[str]
    tax_class: str
    published: bool
    images: list[ImageRead]
    rating_average: float
    review_count: int
    price_min: int
    currency: str
    created_at: datetime
    updated_at: datetime
    variants: list[VariantRead]


class ProductPage(Struct):
    """One page of products; pass ``next_cursor`` as ``cursor`` for the next (null: last)."""

    items: list[ProductRead]
    next_cursor: str | None


class ProductFilters(Struct, frozen=True):
    """The filters of ``GET /products`` after parsing."""

    category: str | None = None
    q: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    in_stock: bool | None = None
    tag: str | None = None
    brand: str | None = None
