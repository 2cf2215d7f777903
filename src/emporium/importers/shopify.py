"""Import Shopify product CSV exports: products with their variants, options and images.

Reads the Shopify product CSV format (the admin's "Export products" file, older and current
layouts): UTF-8 (a byte-order mark is accepted), a header row, then one row per variant plus
image-only rows, the rows of a product adjacent and sharing its ``Handle``. Product columns
(Title, Body (HTML), Vendor as brand, Type as category or "Uncategorized", Tags in the case
given, Published TRUE/FALSE with empty meaning unpublished, Status, option names) come from a
handle's first row. A product is published when Published is true and Status (current
exports) is ``active`` or empty; ``draft`` and ``archived`` products are kept unpublished.

Variants: ``Variant SKU`` is optional (Shopify does not require one) and unique when given;
a SKU may hold spaces. ``Variant Inventory Tracker`` empty means Shopify does not track the
variant's inventory: it is imported untracked (stock null: always available, never short,
no ledger) and ``Variant Inventory Qty`` is ignored; any tracker (``shopify``) or a file
without that column makes the quantity the opening stock. ``Variant Image`` is kept on the
variant (and among the product's images). A ``Variant Compare At Price`` below the price is
refused. Prices are decimal major units (``19.99``) made integer minor units (``1999``)
exactly. Products are matched on ``shopify:<handle>``, so importing the same files again
changes nothing."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path

import msgspec
from msgspec import Struct

from emporium.catalog.content import make_slug, sanitize_html
from emporium.catalog.schemas import MAX_STOCK, SKU_PATTERN
from emporium.catalog.upsert import ImportProduct, ImportVariant
from emporium.importers.common import ImportFailed, Problem, cents

REQUIRED_COLUMNS = ("Handle", "Title", "Variant Price")
DEFAULT_CATEGORY = "Uncategorized"
_VARIANT_COLUMNS = ("Variant SKU", "Variant Price", *(f"Option{i} Value" for i in (1, 2, 3)))
_SKU = re.compile(SKU_PATTERN)
_STATUSES = ("active", "draft", "archived", "")
_TRACKER = "Variant Inventory Tracker"
_URL = re.compile(r"^https?://\S{1,2040}$")
_INTEGER = re.compile(r"^-?[0-9]{1,12}$")
_LIMITS = {"Handle": 200, "Title": 255, "Vendor": 200, "Type": 200, "Body (HTML)": 50_000}


class _Row(Struct, frozen=True):
    """One CSV record: its file, the physical line it starts on, and its cells by column."""

    file: str
    line: int
    cells: dict[str, str]

    def get(self, column: str) -> str:
        return self.cells.get(column, "").strip()

    def problem(self, message: str) -> Problem:
        return Problem(self.file, f"line {self.line}", message)

    @property
    def at(self) -> str:
        return f"{self.file} line {self.line}"

    @property
    def is_variant(self) -> bool:
        return any(self.get(column) for column in _VARIANT_COLUMNS)


class _Lines:
    """Feeds the csv reader lines; ``start`` is the first non-blank line since it was reset."""

    def __init__(self, text: str) -> None:
        self._source = io.StringIO(text, newline="")
        self.number = 0
        self.start = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self._source)
        self.number += 1
        if not self.start and line.strip("\r\n"):
            self.start = self.number
        return line


class _Found:
    """Problems in input order, and the handles of the products they invalidate."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.bad: set[str] = set()

    def add(self, problem: Problem, *handles: str) -> None:
        if handles and not problem.subject:
            problem = msgspec.structs.replace(problem, subject=f"shopify:{handles[0]}")
        self.problems.append(problem)
        self.bad.update(handles)


def _text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFailed([Problem(str(path), "line 1", f"cannot read: {exc}")]) from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        message = "not UTF-8 text: export or save the file as UTF-8 CSV"
        raise ImportFailed([Problem(str(path), f"line {line}", message)]) from exc


def _rows(name: str, text: str, found: _Found) -> list[_Row]:
    """The records of one file; a file without the required columns gives none."""
    lines = _Lines(text)
    reader = csv.DictReader(lines, restval="")
    rows: list[_Row] = []
    try:
        header = [column.strip() for column in reader.fieldnames or []]
        missing = [column for column in REQUIRED_COLUMNS if column not in header]
        if missing:
            found.add(Problem(name, "line 1", f"missing column(s): {', '.join(missing)}"))
            return []
        reader.fieldnames = header
        while True:
            lines.start = 0
            record = next(reader, None)
            if record is None:
                return rows
            cells = {k: v for k, v in record.items() if isinstance(k, str) and isinstance(v, str)}
            rows.append(_Row(name, lines.start, cells))
    except csv.Error as exc:
        found.add(Problem(name, f"line {lines.number}", f"not a valid CSV file: {exc}"))
        return []


def _group(rows: list[_Row], found: _Found) -> dict[str, list[_Row]]:
    """Rows by handle, in input order; a handle must own one run of rows in one file."""
    groups: dict[str, list[_Row]] = {}
    previous: tuple[str, str] | None = None
    for row in rows:
        handle = row.get("Handle")
        if not handle:
            found.add(row.problem("Handle is empty"))
            continue
        if handle in groups and previous != (row.file, handle):
            message = f"handle {handle!r} is also used at {groups[handle][0].at}; "
            found.add(row.problem(message + "its rows must be adjacent, in one file"), handle)
        groups.setdefault(handle, []).append(row)
        previous = (row.file, handle)
    return groups


def _collisions(groups: dict[str, list[_Row]], found: _Found) -> None:
    """SKUs used twice and handles with the same slug: both products are invalid."""
    skus: dict[str, _Row] = {}
    slugs: dict[str, _Row] = {}
    for handle, rows in groups.items():
        first = slugs.setdefault(make_slug(handle), rows[0])
        if first is not rows[0]:
            message = f"handle {handle!r} has the same URL slug as the handle at {first.at}"
            found.add(rows[0].problem(message), handle, first.get("Handle"))
        for row in rows:
            sku = row.get("Variant SKU")
            if not sku:
                continue
            other = skus.setdefault(sku, row)
            if other is not row:
                message = f"SKU {sku!r} is used twice: here and at {other.at}"
                found.add(row.problem(message), handle, other.get("Handle"))


def _quantity(text: str) -> int:
    if not _INTEGER.match(text) or not 0 <= int(text) <= MAX_STOCK:
        raise ValueError(f"must be a whole number from 0 to {MAX_STOCK}")
    return int(text)


def _grams(text: str) -> int:
    """Shopify's ``Variant Grams``: a whole number of grams (``200`` or ``200.0``)."""
    try:
        grams = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError("must be a whole number of grams") from exc
    if not grams.is_finite() or grams < 0 or grams != grams.to_integral_value() or grams > 10**9:
        raise ValueError("must be a whole number of grams from 0 to 10^9")
    return int(grams)


def _number(
    row: _Row, column: str, convert: Callable[[str], int], problems: list[Problem]
) -> int | None:
    """``convert`` of the cell of ``column``: None when it is empty, or wrong (a problem)."""
    raw = row.get(column)
    try:
        return convert(raw) if raw else None
    except ValueError as exc:
        problems.append(row.problem(f"{column} {raw!r} {exc}"))
        return None


def _options(row: _Row, names: list[str], problems: list[Problem]) -> dict[str, str]:
    """Option name -> value; {} for Shopify's single default variant (``Default Title``)."""
    values = [row.get(f"Option{i} Value") for i in (1, 2, 3)]
    if names[0] == "Title" and values[0] == "Default Title":
        return {}
    options: dict[str, str] = {}
    for i, (name, value) in enumerate(zip(names, values, strict=True), start=1):
        if value and not name:
            problems.append(row.problem(f"Option{i} Value is set but Option{i} Name is empty"))
        elif name and not value:
            problems.append(row.problem(f"Option{i} Value ({name}) is empty"))
        elif len(name) > 50 or len(value) > 100:
            problems.append(row.problem(f"Option{i} name over 50 or value over 100 characters"))
        elif name:
            options[name] = value
    return options


def _sku(row: _Row, problems: list[Problem]) -> str | None:
    """The variant's SKU, None when empty (optional); spaces inside are kept."""
    sku = row.get("Variant SKU")
    if sku and (len(sku) > 100 or not _SKU.match(sku)):
        message = "must be at most 100 printable characters"
        problems.append(row.problem(f"Variant SKU {sku!r} {message}"))
    return sku or None


def _stock(row: _Row, problems: list[Problem]) -> int | None:
    """Opening stock; None when the file says Shopify does not track the variant."""
    quantity = _number(row, "Variant Inventory Qty", _quantity, problems)
    if _TRACKER in row.cells and not row.get(_TRACKER):
        return None
    return quantity or 0


def _prices(row: _Row, problems: list[Problem]) -> tuple[int, int | None]:
    """Price and compare-at price in minor units; a compare-at price below the price is a
    problem (it would show a "was" price lower than the price)."""
    price = _number(row, "Variant Price", cents, problems)
    if price is None and not row.get("Variant Price"):
        problems.append(row.problem("Variant Price is empty"))
    compare_at = _number(row, "Variant Compare At Price", cents, problems)
    if price is not None and compare_at is not None and compare_at < price:
        raw = row.get("Variant Compare At Price")
        problems.append(row.problem(f"Variant Compare At Price {raw!r} is below the price"))
    return price or 0, compare_at


def _variant_image(row: _Row, problems: list[Problem]) -> str | None:
    url = row.get("Variant Image")
    if url and not _URL.match(url):
        problems.append(row.problem(f"Variant Image {url!r} is not an http(s) URL"))
        return None
    return url or None


def _variant(row: _Row, names: list[str], problems: list[Problem]) -> ImportVariant:
    sku = _sku(row, problems)
    price, compare_at = _prices(row, problems)
    options = _options(row, names, problems)
    title = " / ".join(options.values()) or "Default"
    if len(title) > 255:
        problems.append(row.problem("variant title (its option values) over 255 characters"))
    return ImportVariant(
        sku=sku,
        title=title,
        price=price,
        stock=_stock(row, problems),
        options=options,
        compare_at_price=compare_at,
        image_url=_variant_image(row, problems),
        weight_grams=_number(row, "Variant Grams", _grams, problems),
    )


def _images(rows: list[_Row], title: str, problems: list[Problem]) -> list[dict[str, str]]:
    """Images by Image Position, then file order, each URL once."""
    found: list[tuple[int, int, str, str]] = []
    for n, row in enumerate(rows):
        url, position = row.get("Image Src"), row.get("Image Position")
        if not url:
            continue
        if not _URL.match(url):
            problems.append(row.problem(f"Image Src {url!r} is not an http(s) URL"))
        elif position and not (position.isascii() and position.isdigit()):
            problems.append(row.problem(f"Image Position {position!r} is not a whole number"))
        else:
            alt = row.get("Image Alt Text") or title
            found.append((int(position or 2**31), n, url, alt[:500]))
    unique: dict[str, dict[str, str]] = {}
    for _, _, url, alt in sorted(found):
        unique.setdefault(url, {"url": url, "alt": alt})
    for row in rows:  # a variant's image is one of the product's images too
        url = row.get("Variant Image")
        if url and _URL.match(url):
            unique.setdefault(url, {"url": url, "alt": title[:500]})
    return list(unique.values())


def _text_problems(first: _Row, handle: str) -> list[Problem]:
    problems = [
        first.problem(f"{column} is over {limit} characters")
        for column, limit in _LIMITS.items()
        if len(first.get(column)) > limit
    ]
    if not first.get("Title"):
        problems.append(first.problem(f"Title is empty on the first row of {handle!r}"))
    if first.get("Published").lower() not in ("true", "false", ""):
        problems.append(first.problem("Published must be TRUE or FALSE"))
    if first.get("Status").lower() not in _STATUSES:
        problems.append(first.problem("Status must be active, draft or archived"))
    return problems


def _published(first: _Row) -> bool:
    """Published TRUE, and Status (current exports) active or empty: draft and archived
    products are not for sale."""
    return first.get("Published").lower() == "true" and first.get("Status").lower() in (
        "active",
        "",
    )


def _product(handle: str, rows: list[_Row]) -> tuple[ImportProduct, list[Problem]]:
    """The product of one handle's rows, with every problem found in them."""
    first = rows[0]
    problems = _text_problems(first, handle)
    names = [first.get(f"Option{i} Name") for i in (1, 2, 3)]
    variants: list[ImportVariant] = []
    combos: dict[tuple[str, ...], _Row] = {}
    for row in (r for r in rows if r.is_variant):
        variants.append(_variant(row, names, problems))
        other = combos.setdefault(tuple(variants[-1].options.values()), row)
        if other is not row:
            problems.append(row.problem(f"same options as the variant at {other.at}"))
    if not variants:
        problems.append(first.problem(f"product {handle!r} has no variant (no price)"))
    title = first.get("Title")
    return ImportProduct(
        external_ref=f"shopify:{handle}",
        title=title,
        description=sanitize_html(first.get("Body (HTML)")),
        category_path=[first.get("Type") or DEFAULT_CATEGORY],
        variants=variants,
        brand=first.get("Vendor") or None,
        tags=[tag.strip() for tag in first.get("Tags").split(",") if tag.strip()],
        published=_published(first),
        images=_images(rows, title, problems),
        slug=make_slug(handle),
        tax_class=_tax_class(rows),
    ), problems


def _tax_class(rows: list[_Row]) -> str | None:
    """``exempt`` when every variant row says ``Variant Taxable`` false (no rate is set for
    that class, so no tax), ``standard`` when one says true, None without the column."""
    marks = [r.get("Variant Taxable").lower() for r in rows if r.is_variant]
    if not any(marks):
        return None
    return "exempt" if all(m == "false" for m in marks) else "standard"


def parse(
    paths: list[Path], *, skip_invalid: bool = False
) -> tuple[list[ImportProduct], list[Problem]]:
    """Read and validate Shopify product CSV files, all of them before anything is returned.

    Returns the products (money in integer minor units) and the problems found, each with
    its file and ``line N`` (the physical line where the record starts). A product with any
    problem is left out whole. Raises ImportFailed when there is a problem and
    ``skip_invalid`` is false, or when a file cannot be read or is not UTF-8.
    """
    texts: dict[str, str] = {}
    unreadable: list[Problem] = []
    for path in paths:
        try:
            texts[str(path)] = _text(path)
        except ImportFailed as exc:
            unreadable.extend(exc.problems)
    if unreadable:
        raise ImportFailed(unreadable)
    return parse_texts(texts, skip_invalid=skip_invalid)


def parse_texts(
    texts: dict[str, str], *, skip_invalid: bool = False
) -> tuple[list[ImportProduct], list[Problem]]:
    """:func:`parse` on files already read: ``texts`` maps each file's name (used in the
    problems) to its decoded text. Raises ImportFailed as :func:`parse` does."""
    found = _Found()
    rows = [row for name, text in texts.items() for row in _rows(name, text, found)]
    groups = _group(rows, found)
    _collisions(groups, found)
    products: dict[str, ImportProduct] = {}
    for handle, group in groups.items():
        products[handle], problems = _product(handle, group)
        for problem in problems:
            found.add(problem, handle)
    order = {name: n for n, name in enumerate(texts)}
    found.problems.sort(key=lambda p: (order[p.file], int(p.where.removeprefix("line "))))
    if found.problems and not skip_invalid:
        raise ImportFailed(found.problems)
    return [p for handle, p in products.items() if handle not in found.bad], found.problems
