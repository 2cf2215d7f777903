"""Ranked full-text search over products, per database.

PostgreSQL: the generated, weighted ``product.search_vector`` (title A, brand and tags B,
description C) behind a GIN index, matched with ``plainto_tsquery('english', words)`` and
ranked with ``ts_rank_cd``. SQLite: the FTS5 table ``product_fts`` (porter stemmer,
diacritics folded) kept in step by triggers, ranked with ``bm25`` using the same weights.
Both index accent-folded text and answer "every word of q, stemmed, accents ignored"; a
higher ``score`` is a better match. One search's cost is bounded: at most
``MAX_QUERY_WORDS`` words, and on SQLite at most ``MAX_RANKED`` matches (the newest) are
ranked (ADR 0004, amendment).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, func, literal_column, select, text
from sqlalchemy.sql.elements import TextClause

from emporium.catalog.content import fold
from emporium.catalog.models import Product

product_table = Product.__table__

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_QUERY_WORDS = 8
"""Words of ``q`` searched; the rest are ignored (each word adds a posting-list merge)."""
MAX_RANKED = 1000
"""On SQLite, matches ranked per search: the newest ones (``bm25`` costs per match)."""


def query_words(q: str) -> list[str]:
    """The words of free text, accent-folded, at most ``MAX_QUERY_WORDS``; operators and
    punctuation are not words, so no engine's query syntax can be injected."""
    return _WORD.findall(fold(q))[:MAX_QUERY_WORDS]


def search_join(
    stmt: Select[Any], q: str, dialect: str
) -> tuple[Select[Any], ColumnElement[float]] | None:
    """Restrict ``stmt`` (a select from ``product``) to products matching every word of ``q``;
    return it and the score (higher is better). None when ``q`` has no word."""
    words = query_words(q)
    if not words:
        return None
    if dialect == "postgresql":
        query = func.plainto_tsquery(literal_column("'english'"), " ".join(words))
        vector: ColumnElement[Any] = literal_column("product.search_vector")
        score: ColumnElement[float] = func.ts_rank_cd(vector, query)
        return stmt.where(vector.op("@@")(query)), score
    expression = " ".join(f'"{w}"' for w in words)
    matches: FromClause = (
        select(
            literal_column("rowid").label("rid"),
            literal_column("-bm25(product_fts, 10.0, 4.0, 1.0)").label("score"),
        )
        .select_from(text("product_fts"))
        .where(_match(expression))
        .order_by(literal_column("rowid").desc())  # the newest products first
        .limit(MAX_RANKED)
        .subquery("matches")
    )
    joined = stmt.join_from(
        product_table, matches, matches.c.rid == literal_column("product.rowid")
    )
    return joined, matches.c.score


def _match(expression: str) -> TextClause:
    return text("product_fts MATCH :fts_query").bindparams(fts_query=expression)
