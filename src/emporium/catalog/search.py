"""Ranked full-text search over products, per database.

PostgreSQL: the generated, weighted ``product.search_vector`` (title A, brand and tags B,
description C) behind a GIN index, matched with ``plainto_tsquery('english', words)`` and
ranked with ``ts_rank_cd``. SQLite: the FTS5 table ``product_fts`` (porter stemmer,
diacritics folded) kept in step by triggers, ranked with ``bm25`` using the same weights.
Both index accent-folded text and answer "every word of q, stemmed, accents ignored"; a
higher ``score`` is a better match. One search's cost is bounded: at most
``MAX_QUERY_WORDS`` words, and at most ``MAX_RANKED`` matches (the newest) are ranked on
both databases (ADR 0004, amendment; ADR 0023 for PostgreSQL). The statements that use
these pieces are built once per shape (``catalog.queries``); ``:q`` / ``:fts_query`` are
bound per request from :func:`search_terms`.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    FromClause,
    String,
    bindparam,
    func,
    literal_column,
    select,
    text,
)

from emporium.catalog.content import fold
from emporium.catalog.models import Product

product_table = Product.__table__

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_QUERY_WORDS = 8
"""Words of ``q`` searched; the rest are ignored (each word adds a posting-list merge)."""
MAX_RANKED = 200
"""Matches ranked per relevance search: the newest ones (ranking costs per match; ADR 0023)."""


def query_words(q: str) -> list[str]:
    """The words of free text, accent-folded, at most ``MAX_QUERY_WORDS``; operators and
    punctuation are not words, so no engine's query syntax can be injected."""
    return _WORD.findall(fold(q))[:MAX_QUERY_WORDS]


def search_terms(q: str, dialect: str) -> str | None:
    """The bound value of a search (``:q`` on PostgreSQL, ``:fts_query`` on SQLite) for the
    words of ``q``: the words for ``plainto_tsquery``, or an FTS5 expression of quoted words
    (every word required). None when ``q`` has no word."""
    words = query_words(q)
    if not words:
        return None
    if dialect == "postgresql":
        return " ".join(words)
    return " ".join(f'"{w}"' for w in words)


def pg_match() -> tuple[ColumnElement[bool], ColumnElement[float]]:
    """PostgreSQL: the condition "``product.search_vector`` holds every word of ``:q``" and
    the ``ts_rank_cd`` score (higher is better)."""
    query = func.plainto_tsquery(literal_column("'english'"), bindparam("q", type_=String))
    vector: ColumnElement[Any] = literal_column("product.search_vector")
    return vector.op("@@")(query), func.ts_rank_cd(vector, query, type_=Float)


def sqlite_matches() -> FromClause:
    """SQLite: the ``MAX_RANKED`` newest products matching ``:fts_query`` (``rid``: their
    rowid) with their ``bm25`` score (``score``, higher is better)."""
    return (
        select(
            literal_column("rowid").label("rid"),
            literal_column("-bm25(product_fts, 10.0, 4.0, 1.0)", type_=Float).label("score"),
        )
        .select_from(text("product_fts"))
        .where(text("product_fts MATCH :fts_query"))
        .order_by(literal_column("rowid").desc())  # the newest products first
        .limit(MAX_RANKED)
        .subquery("matches")
    )
