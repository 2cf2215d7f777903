"""What every importer shares: problems with file and line, the report, and the write step."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from msgspec import Struct, field
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.catalog.schemas import MAX_MONEY
from emporium.catalog.upsert import ImportProduct, ensure_category_path, upsert_product
from emporium.core.errors import DomainError
from emporium.reviews.service import refresh_rating, upsert_review

T = TypeVar("T")

Progress = Callable[[int], None]


# At most 25 significant digits, so Decimal's default 28-digit precision multiplies exactly.
_DECIMAL = re.compile(r"^-?[0-9]{1,15}(?:\.[0-9]{1,10})?$")


def cents(value: object) -> int:
    """Decimal major units (``"19.99"`` or ``19.99``) as integer minor units (``1999``), exactly.

    Raises ValueError for anything but a plain decimal number (no exponents, NaN, thousands
    separators), for negatives, for fractions of a cent and for more than ``MAX_MONEY``.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be a decimal number like 19.99")
    text = value.strip() if isinstance(value, str) else repr(value)
    if not _DECIMAL.match(text):
        raise ValueError("must be a decimal number like 19.99")
    amount = Decimal(text)
    if amount < 0:
        raise ValueError("must be zero or more")
    minor = amount * 100
    if minor != minor.to_integral_value():
        raise ValueError("has fractions of a cent")
    if minor > MAX_MONEY:
        raise ValueError(f"must be at most {MAX_MONEY // 100}")
    return int(minor)


class Problem(Struct, frozen=True):
    """One thing wrong with the input: where (file, line or JSON path) and what.

    ``subject`` names the product the problem keeps out (its external reference), if any.
    """

    file: str
    where: str
    message: str
    subject: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.where}: {self.message}"


class ImportReview(Struct):
    """A review as an importer read it, attached to its product by ``product_ref``."""

    external_ref: str
    product_ref: str
    rating: int
    body: str
    author_name: str
    created_at: datetime
    title: str | None = None
    author_email: str | None = None  # to link the review to an imported account; not stored


class ImportReport(Struct):
    """What an import did, per kind of row: created, updated, unchanged, skipped."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def add(self, kind: str, outcome: str, n: int = 1) -> None:
        """Count ``n`` rows of ``kind`` with ``outcome``."""
        bucket = self.counts.setdefault(kind, {})
        bucket[outcome] = bucket.get(outcome, 0) + n

    @property
    def changed(self) -> bool:
        """True when anything was created or updated."""
        return any(c.get("created", 0) or c.get("updated", 0) for c in self.counts.values())

    def summary(self) -> str:
        """One line per kind, for people."""
        lines = []
        for kind, bucket in self.counts.items():
            known = ("created", "updated", "unchanged", "skipped")
            extra = [k for k in bucket if k not in known]
            parts = ", ".join(f"{bucket.get(k, 0)} {k}" for k in (*known, *extra))
            lines.append(f"{kind}: {parts}")
        if not self.changed:
            lines.append("nothing changed: the catalog already matched the input")
        return "\n".join(lines)


class ImportFailed(Exception):
    """The input has problems and nothing was imported."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the input")
        self.problems = list(problems)


def read_json_records(path: Path, key: str) -> list[Any]:
    """The records of a DummyJSON file: its top-level list, or the list under ``key``.

    Raises ImportFailed when the file cannot be read or decoded, or holds no such list.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, json.JSONDecodeError) as exc:
        raise ImportFailed([Problem(str(path), "-", f"cannot read: {exc}")]) from exc
    if isinstance(data, dict):
        data = data.get(key)
    if not isinstance(data, list):
        raise ImportFailed([Problem(str(path), "$", f"expected a list of {key}")])
    return data


def parse_records(
    path: Path, records: Sequence[Any], parse_one: Callable[[Any, int], T], *, skip_invalid: bool
) -> tuple[list[T], list[Problem]]:
    """``parse_one(record, index)`` for every record; a ValueError, TypeError, KeyError or
    AttributeError becomes a Problem at ``$[index]``. Raises ImportFailed on any problem
    unless ``skip_invalid``."""
    parsed: list[T] = []
    problems: list[Problem] = []
    for index, raw in enumerate(records):
        try:
            parsed.append(parse_one(raw, index))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            problems.append(Problem(str(path), f"$[{index}]", str(exc), f"$[{index}]"))
    if problems and not skip_invalid:
        raise ImportFailed(problems)
    return parsed, problems


async def write_catalog(
    session: AsyncSession,
    products: Sequence[ImportProduct],
    reviews: Sequence[ImportReview] = (),
    *,
    currency: str,
    report: ImportReport,
    progress: Progress | None = None,
    author_of: Callable[[str], uuid.UUID | None] | None = None,
) -> None:
    """Upsert products (with their categories) and reviews into ``session``'s transaction.

    Raises ImportFailed when the database refuses a row (for example a SKU used by another
    product); the caller rolls back, so nothing is imported.
    """
    ids, failures = await _write_products(session, products, currency, report, progress)
    touched = await _write_reviews(session, reviews, ids, report, progress, author_of)
    for product_id in touched:
        await refresh_rating(session, product_id)
    if failures:
        raise ImportFailed(failures)


async def _write_products(
    session: AsyncSession,
    products: Sequence[ImportProduct],
    currency: str,
    report: ImportReport,
    progress: Progress | None,
) -> tuple[dict[str, uuid.UUID], list[Problem]]:
    """Upsert the products with their categories; returns the product id of each
    ``external_ref`` and the products the database refused."""
    categories: dict[tuple[str, ...], uuid.UUID] = {}
    ids: dict[str, uuid.UUID] = {}
    failures: list[Problem] = []
    for item in products:
        category_id, created = await ensure_category_path(session, item.category_path, categories)
        report.add("categories", "created", created)
        try:
            outcome, product_id = await upsert_product(
                session, item, category_id=category_id, currency=currency
            )
        except DomainError as exc:
            failures.append(Problem(item.external_ref, "-", exc.detail, item.external_ref))
            continue
        ids[item.external_ref] = product_id
        report.add("products", outcome)
        if progress:
            progress(1)
    report.add("categories", "unchanged", max(0, len(categories) - _created(report)))
    return ids, failures


async def _write_reviews(
    session: AsyncSession,
    reviews: Sequence[ImportReview],
    ids: dict[str, uuid.UUID],
    report: ImportReport,
    progress: Progress | None,
    author_of: Callable[[str], uuid.UUID | None] | None,
) -> Counter[uuid.UUID]:
    """Upsert the reviews of the imported products; returns the products whose reviews
    changed (their rating is refreshed once, after all of them)."""
    touched: Counter[uuid.UUID] = Counter()
    linked: set[tuple[uuid.UUID, uuid.UUID]] = set()
    for review in reviews:
        product_id = ids[review.product_ref]
        author_id = author_of(review.author_email) if author_of and review.author_email else None
        if author_id is not None:
            # One review per customer per product: a second one by the same author stays
            # unlinked (kept as text, not attributed), as the unique constraint requires.
            if (product_id, author_id) in linked:
                author_id = None
            else:
                linked.add((product_id, author_id))
        review_outcome = await upsert_review(
            session,
            author_id=author_id,
            product_id=product_id,
            external_ref=review.external_ref,
            rating=review.rating,
            body=review.body,
            author_name=review.author_name,
            created_at=review.created_at,
            title=review.title,
        )
        report.add("reviews", review_outcome)
        if review_outcome != "unchanged":
            touched[product_id] += 1
        if progress:
            progress(1)
    return touched


def _created(report: ImportReport) -> int:
    return report.counts.get("categories", {}).get("created", 0)
