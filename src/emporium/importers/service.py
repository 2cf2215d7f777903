"""Run an importer on input sent over HTTP (the admin's "Import" screen, integrators).

The input is validated whole before anything is written, then written in the request's
transaction: a problem anywhere refuses the request (422 ``import_invalid``) and the
catalog is left as it was, unless the caller asked to skip the invalid products.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.core.errors import DomainError
from emporium.importers import shopify
from emporium.importers.common import ImportFailed, ImportReport, Problem, write_catalog

MAX_CSV_CHARS = 1_000_000
"""The largest CSV text accepted in one request (characters); bigger catalogs are split into
several files, or imported with ``emporium import shopify-csv``."""
UPLOAD_NAME = "upload.csv"


class ShopifyCsvImport(Struct, forbid_unknown_fields=True):
    """A Shopify product CSV export as text (UTF-8, a byte-order mark is accepted)."""

    csv: Annotated[str, Meta(min_length=1, max_length=MAX_CSV_CHARS)]
    skip_invalid: bool = False


class ImportProblemOut(Struct):
    """One problem of the input: where (``line N``), what, and the product it keeps out."""

    where: str
    message: str
    subject: str = ""


class ImportReportOut(Struct):
    """What the import did: per kind (products, categories) the count of each outcome
    (created, updated, unchanged, skipped), the problems skipped and a summary for people."""

    counts: dict[str, dict[str, int]]
    problems: list[ImportProblemOut]
    summary: str
    changed: bool


class ImportInvalid(DomainError):
    """The input has problems; nothing was imported. ``errors`` lists ``{loc, msg}``."""

    status, code, title = 422, "import_invalid", "The import has problems"

    def __init__(self, problems: list[Problem]) -> None:
        errors = [{"loc": p.where, "msg": p.message, "subject": p.subject} for p in problems]
        super().__init__(
            f"{len(problems)} problem(s) found; nothing was imported", extra={"errors": errors}
        )


def _out(problem: Problem) -> ImportProblemOut:
    return ImportProblemOut(problem.where, problem.message, problem.subject)


async def import_shopify_csv(
    session: AsyncSession, data: ShopifyCsvImport, *, currency: str
) -> ImportReportOut:
    """Parse ``data.csv`` as a Shopify product export and upsert its products in
    ``session``'s transaction (prices in integer minor units of ``currency``); importing
    the same file again changes nothing.

    Raises ImportInvalid (422 ``import_invalid``) when the file has a problem (or, with
    ``skip_invalid``, when every product has one) or the database refuses a product; the
    request then rolls back, so nothing is imported.
    """
    text = data.csv.removeprefix("\ufeff")
    try:
        products, problems = shopify.parse_texts(
            {UPLOAD_NAME: text}, skip_invalid=data.skip_invalid
        )
        if problems and not products:
            raise ImportFailed(problems)
        report = ImportReport()
        await write_catalog(session, products, currency=currency, report=report)
    except ImportFailed as exc:
        raise ImportInvalid(exc.problems) from exc
    if problems:
        report.add("products", "skipped", len({p.subject for p in problems if p.subject}))
    return ImportReportOut(
        counts=report.counts,
        problems=[_out(p) for p in problems],
        summary=report.summary(),
        changed=report.changed,
    )
