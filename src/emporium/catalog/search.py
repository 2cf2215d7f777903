"""Ranked full-text search over products, per database.

PostgreSQL: the generated, weighted ``product.search_vector`` (title A, brand and tags B,
description C) behind a GIN index, matched with ``websearch_to_tsquery('english', q)`` and
ranked with ``ts_rank_cd``. SQLite: the FTS5 table ``product_fts`` (porter stemmer,
diacritics folded) kept in step by triggers, ranked with ``bm25`` using the same weights.
Both answer "every word of q, stemmed", and a higher ``score`` is a better match.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, func, literal_column, select, text
from sqlalchemy.sql.elements import TextClause

from emporium.catalog.models import Product

product_table = Product.__table__

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_QUERY_WORDS = 20


def fts5_query(q: str) -> str | None:
    """Turn free text into a safe FTS5 expression: each word quoted, all required.

    Returns None when ``q`` holds no word (nothing can match).
    """
    words = _WORD.findall(q)[:MAX_QUERY_WORDS]
    if not words:
        return None
    return " ".join('"' + w.replace('"', "") + '"' for w in words)


def search_join(
    stmt: Select[tuple[object, ...]], q: str, dialect: str
) -> tuple[Select[tuple[object, ...]], ColumnElement[float]] | None:
    """Restrict ``stmt`` (a select from ``product``) to matches of ``q``; return it and the score.

    Returns None when ``q`` can match nothing.
    """
    if dialect == "postgresql":
        query = func.websearch_to_tsquery(literal_column("'english'"), q)
        vector: ColumnElement[Any] = literal_column("product.search_vector")
        score: ColumnElement[float] = func.ts_rank_cd(vector, query)
        return stmt.where(vector.op("@@")(query)), score
    expression = fts5_query(q)
    if expression is None:
        return None
    matches: FromClause = (
        select(
            literal_column("rowid").label("rid"),
            literal_column("-bm25(product_fts, 10.0, 4.0, 1.0)").label("score"),
        )
        .select_from(text("product_fts"))
        .where(_match(expression))
        .subquery("matches")
    )
    joined = stmt.join_from(
        product_table, matches, matches.c.rid == literal_column("product.rowid")
    )
    return joined, matches.c.score


def _match(expression: str) -> TextClause:
    return text("product_fts MATCH :fts_query").bindparams(fts_query=expression)
