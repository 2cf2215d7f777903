"""Product content: safe HTML descriptions, plain text for search, and URL slugs.

HTML is sanitised with nh3 (the Rust ``ammonia`` sanitiser): an allowlist of formatting tags,
no scripts, event handlers, styles or ``javascript:`` URLs (OWASP XSS Prevention Cheat Sheet).
"""

from __future__ import annotations

import html
import unicodedata

import nh3
from slugify import slugify

ALLOWED_TAGS = {
    "a",
    "b",
    "blockquote",
    "br",
    "code",
    "dd",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"}, "th": {"colspan"}}


def sanitize_html(value: str) -> str:
    """Return ``value`` with every tag, attribute and URL scheme off the allowlist removed."""
    return nh3.clean(
        value,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    ).strip()


def html_to_text(value: str) -> str:
    """The visible text of an HTML fragment, whitespace folded (for the search index)."""
    text = html.unescape(nh3.clean(value.replace("<", " <"), tags=set()))
    return " ".join(text.split())


def make_slug(text: str, *, max_length: int = 180) -> str:
    """A lower-case ASCII slug of ``text`` (``"Crème Brûlée"`` -> ``"creme-brulee"``)."""
    return slugify(text, max_length=max_length, word_boundary=True) or "item"


def normalize_tags(tags: list[str]) -> list[str]:
    """Tags trimmed (inner runs of white space made one space, at most 100 characters) and
    de-duplicated ignoring case, first occurrence first, each in the case it was given
    (``["Summer", " summer ", "Gold"]`` -> ``["Summer", "Gold"]``)."""
    seen: dict[str, str] = {}
    for tag in tags:
        clean = " ".join(tag.split())[:100]
        if clean:
            seen.setdefault(clean.lower(), clean)
    return list(seen.values())


def tag_keys(tags: list[str]) -> list[str]:
    """The lower-case keys of normalised ``tags``, as the ``tag`` filter matches them."""
    return list(dict.fromkeys(tag.lower() for tag in tags))


def fold(text: str) -> str:
    """``text`` without accents (``"Crème Brûlée"`` -> ``"Creme Brulee"``), for search."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def search_document(
    *, title: str, brand: str | None, tags: list[str], description_html: str
) -> dict[str, str]:
    """The product's search columns: accent-folded title (weight A), brand and tags (B) and
    description as plain text (C). Both databases index exactly these."""
    return {
        "search_title": fold(title),
        "keywords": fold(" ".join([brand or "", *tags]).strip()),
        "search_text": fold(html_to_text(description_html)),
    }
