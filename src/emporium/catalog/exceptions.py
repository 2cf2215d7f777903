"""Catalog errors, each with a stable ``code``."""

from __future__ import annotations

from emporium.core.errors import Conflict, InvalidInput, NotFound


class CategoryNotFound(NotFound):
    """No category with that id or slug."""

    code = "category_not_found"


class ProductNotFound(NotFound):
    """No visible product with that id or slug."""

    code = "product_not_found"


class VariantNotFound(NotFound):
    """No variant with that id."""

    code = "variant_not_found"


class SlugTaken(Conflict):
    """Another category or product already uses the slug."""

    code = "slug_taken"


class SkuTaken(Conflict):
    """Another variant already uses the SKU."""

    code = "sku_taken"


class CategoryInUse(Conflict):
    """The category still has products or sub-categories."""

    code = "category_in_use"


class VariantOrdered(Conflict):
    """A variant that appears in orders cannot be deleted (archive its product instead)."""

    code = "variant_ordered"


class LastVariant(Conflict):
    """A product keeps at least one variant."""

    code = "last_variant"


class InvalidCategoryParent(InvalidInput):
    """The parent would make the category tree a cycle, or does not exist."""

    code = "invalid_parent"
