"""Import DummyJSON's ``dummyjson-products.json``: categories, products and their reviews.

Each product becomes one product with one default variant (its SKU, price converted to
integer cents, stock), its brand, tags and images; its ``category`` slug becomes a
category. Reviews keep rating, comment, date and reviewer name; reviewer e-mails are not
stored. Products are matched on ``dummyjson:<id>`` so a second run changes nothing.

``weight`` becomes the variant's ``weight_grams``. DummyJSON gives it as a bare number and
states no unit anywhere (its documentation shows ``"weight": 2``); the file's values are
whole numbers from 1 to 10, given without regard to the product (a lipstick and a car
alike). They are read as **kilograms**, the unit that makes them plausible parcel weights
(so weight-bounded shipping methods have something to tell apart), and stored as whole
grams (``4`` -> ``4000``; a fraction of a gram rounds half up). A product without
``weight`` (or with ``null``) gets no weight; anything but a number from 0 to 1,000,000
(kilograms) is a problem at ``$[i].weight``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, TypeGuard, TypeVar

import msgspec

from emporium.catalog.upsert import ImportProduct, ImportVariant
from emporium.importers.common import ImportFailed, ImportReview, Problem, cents, read_json_records

PRODUCTS_FILE = "dummyjson-products.json"
T = TypeVar("T")
_SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
_URL = re.compile(r"^https?://\S{1,2040}$")
MAX_KILOGRAMS = 1_000_000


def _title_of(slug: str) -> str:
    return " ".join(part.capitalize() for part in slug.replace("_", "-").split("-") if part)


def _grams(kilograms: Any) -> int | None:
    """DummyJSON's ``weight``, read as kilograms (see the module docstring), in whole grams
    rounded half up; None when absent. Raises ValueError for anything but a number from 0
    to ``MAX_KILOGRAMS``."""
    if kilograms is None:
        return None
    if isinstance(kilograms, bool) or not isinstance(kilograms, int | float):
        raise ValueError("must be a number (kilograms)")
    amount = Decimal(repr(kilograms))
    if not amount.is_finite() or not 0 <= amount <= MAX_KILOGRAMS:
        raise ValueError(f"must be a number of kilograms from 0 to {MAX_KILOGRAMS}")
    return int((amount * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _instant(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("date must be an RFC 3339 string")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class _Checker:
    """Collects problems for one product instead of stopping at the first."""

    def __init__(self, file: str, where: str) -> None:
        self.file, self.where, self.problems = file, where, list[Problem]()

    def fail(self, field: str, message: str) -> None:
        self.problems.append(Problem(self.file, f"{self.where}.{field}", message))

    def text(self, raw: dict[str, Any], field: str, *, max_len: int, required: bool = True) -> str:
        value = raw.get(field)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            self.fail(field, "must be a non-empty string")
            return ""
        if len(value) > max_len:
            self.fail(field, f"longer than {max_len} characters")
        return value.strip()

    def converted(self, field: str, convert: Callable[[], T], default: T) -> T:
        """``convert()``, or ``default`` with the problem recorded when it raises."""
        try:
            return convert()
        except (ValueError, AttributeError) as exc:
            self.fail(field, str(exc) if isinstance(exc, ValueError) else "is malformed")
            return default

    def strings(self, raw: dict[str, Any], field: str, valid: Callable[[Any], bool]) -> list[str]:
        """The list ``raw[field]`` (default empty) when every item is ``valid``, else [] and
        a problem."""
        value = raw.get(field, [])
        if isinstance(value, list) and all(valid(item) for item in value):
            return value
        noun = "http(s) URLs" if field == "images" else "strings"
        self.fail(field, f"must be a list of {noun}")
        return []


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_product(raw: Any, file: str, index: int) -> tuple[ImportProduct | None, list[Problem]]:
    where = f"$[{index}]"
    if not isinstance(raw, dict):
        return None, [Problem(file, where, "must be an object")]
    check = _Checker(file, where + (f"(id {raw['id']})" if "id" in raw else ""))
    if not _is_int(raw.get("id")):
        check.fail("id", "must be an integer")
    title = check.text(raw, "title", max_len=255)
    description = check.text(raw, "description", max_len=50_000, required=False)
    category = check.text(raw, "category", max_len=200)
    brand = check.text(raw, "brand", max_len=200, required=False) or None
    sku = check.text(raw, "sku", max_len=100)
    if sku and not _SKU.match(sku):
        check.fail("sku", "has characters other than letters, digits and . _ / -")
    price = check.converted("price", lambda: cents(raw.get("price")), 0)
    stock = raw.get("stock")
    if not _is_int(stock) or stock < 0:
        check.fail("stock", "must be an integer of zero or more")
    weight_grams = check.converted("weight", lambda: _grams(raw.get("weight")), None)
    tags = check.strings(raw, "tags", lambda t: isinstance(t, str) and bool(t))
    images = check.strings(raw, "images", lambda u: isinstance(u, str) and bool(_URL.match(u)))
    meta = raw.get("meta")
    created_at = None
    if meta:
        created_at = check.converted("meta.createdAt", lambda: _created_at(meta), None)
    if check.problems:
        return None, check.problems
    variant = ImportVariant(
        sku=sku, title="Default", price=price, stock=int(stock or 0), weight_grams=weight_grams
    )
    return ImportProduct(
        external_ref=f"dummyjson:{raw['id']}",
        title=title,
        description=description,
        category_path=[_title_of(category)],
        brand=brand,
        tags=tags,
        published=True,
        images=[{"url": u, "alt": title} for u in images],
        created_at=created_at,
        variants=[variant],
    ), []


def _created_at(meta: Any) -> datetime:
    """``meta.createdAt`` as an instant. Raises ValueError when it is not RFC 3339."""
    try:
        return _instant(meta.get("createdAt"))
    except (ValueError, AttributeError) as exc:
        raise ValueError("must be an RFC 3339 timestamp") from exc


def _parse_reviews(
    raw: dict[str, Any], file: str, index: int, product_ref: str
) -> tuple[list[ImportReview], list[Problem]]:
    reviews: list[ImportReview] = []
    problems: list[Problem] = []
    for n, item in enumerate(raw.get("reviews") or []):
        where = f"$[{index}].reviews[{n}]"
        try:
            rating = item["rating"]
            if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
                raise ValueError("rating must be an integer from 1 to 5")
            body, name = item.get("comment", ""), item.get("reviewerName", "")
            if not isinstance(body, str) or not isinstance(name, str) or not name.strip():
                raise ValueError("comment and reviewerName must be strings")
            reviews.append(
                ImportReview(
                    external_ref=f"{product_ref}:review:{n}",
                    product_ref=product_ref,
                    rating=rating,
                    body=body[:5000],
                    author_name=name.strip()[:200],
                    created_at=_instant(item.get("date")),
                    author_email=item.get("reviewerEmail") or None,
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(Problem(file, where, str(exc)))
    return reviews, problems


def parse(
    directory: Path, *, skip_invalid: bool = False
) -> tuple[list[ImportProduct], list[ImportReview], list[Problem]]:
    """Read and validate ``DIR/dummyjson-products.json``.

    Returns products, reviews and the problems found. Raises ImportFailed when the input
    has problems and ``skip_invalid`` is false, or when the file cannot be read at all.
    """
    path = directory / PRODUCTS_FILE
    data = read_json_records(path, "products")
    products: list[ImportProduct] = []
    reviews: list[ImportReview] = []
    problems: list[Problem] = []
    seen_skus: dict[str, int] = {}
    for index, raw in enumerate(data):
        product, found = _parse_product(raw, str(path), index)
        sku = product.variants[0].sku if product is not None else None
        if sku is not None:
            if sku in seen_skus:
                found.append(
                    Problem(
                        str(path),
                        f"$[{index}].sku",
                        f"SKU {sku!r} also used at $[{seen_skus[sku]}]",
                    )
                )
            seen_skus.setdefault(sku, index)
        product_reviews, review_problems = (
            _parse_reviews(raw, str(path), index, product.external_ref) if product else ([], [])
        )
        found.extend(review_problems)
        subject = product.external_ref if product else f"$[{index}]"
        problems.extend(msgspec.structs.replace(p, subject=subject) for p in found)
        if product is not None and not found:
            products.append(product)
            reviews.extend(product_reviews)
    if problems and not skip_invalid:
        raise ImportFailed(problems)
    return products, reviews, problems
