"""The promotions a cart or an order may use, read from the database: every automatic
promotion running now, and the codes the buyer entered, each with the reason it cannot be
used (``API.md``: ``promotion_code_invalid``, ``promotion_expired``,
``promotion_exhausted``, ``promotion_not_applicable``).

Which of them apply, and how much each gives, is ``engine.choose``'s job; :func:`report`
turns its verdict on the entered codes into the same reasons.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.catalog.models import Category
from emporium.core.db.base import table_of
from emporium.core.money import format_money
from emporium.promotions.engine import Line, Offer, Outcome
from emporium.promotions.models import Promotion, PromotionCustomerUse

_P, _U, _C = table_of(Promotion).c, table_of(PromotionCustomerUse).c, table_of(Category).c
_NOW = bindparam("now", type_=_P.starts_at.type)
_AUTOMATIC = (
    select(table_of(Promotion))
    .where(_P.active.is_(True), _P.code.is_(None))
    .where(_P.currency == bindparam("currency", type_=_P.currency.type))
    .where((_P.starts_at.is_(None)) | (_P.starts_at <= _NOW))
    .where((_P.ends_at.is_(None)) | (_P.ends_at > _NOW))
    .where((_P.usage_limit.is_(None)) | (_P.times_used < _P.usage_limit))
)
"""The automatic promotions running at ``now`` in ``currency`` with uses left (built once:
every cart view and checkout runs it)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """Why the entered ``code`` gives nothing: ``reason`` is a problem code of the contract,
    ``detail`` a sentence for the buyer."""

    code: str
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Available:
    """What a buyer may use now: ``offers`` for the engine (automatic ones and usable codes)
    and a ``problems`` entry for each entered code that cannot be used at all."""

    offers: tuple[Offer, ...]
    problems: tuple[Problem, ...]


async def _descendants(session: AsyncSession, roots: set[str]) -> dict[str, frozenset[uuid.UUID]]:
    """Each category of ``roots`` with all its sub-categories (one recursive query)."""
    if not roots:
        return {}
    ids = [uuid.UUID(r) for r in roots]
    tree = (
        select(_C.id.label("root"), _C.id.label("node")).where(_C.id.in_(ids)).cte(recursive=True)
    )
    tree = tree.union_all(select(tree.c.root, _C.id).where(_C.parent_id == tree.c.node))
    found: dict[str, set[uuid.UUID]] = {}
    for root, node in await session.execute(select(tree.c.root, tree.c.node)):
        found.setdefault(str(root), set()).add(node)
    return {root: frozenset(nodes) for root, nodes in found.items()}


def _offer(row: Any, trees: dict[str, frozenset[uuid.UUID]]) -> Offer:
    categories = frozenset().union(*(trees.get(str(c), frozenset()) for c in row.category_ids))
    return Offer(
        id=row.id,
        name=row.name,
        code=row.code,
        type=row.type,
        value=row.value,
        combinable=row.combinable,
        min_subtotal=row.min_subtotal,
        product_ids=frozenset(uuid.UUID(str(p)) for p in row.product_ids),
        category_ids=categories,
    )


def _problem(row: Any, code: str, currency: str, now: datetime) -> Problem | None:
    """Why the promotion of an entered code cannot be used now (None: it may be)."""
    if row is None or not row.active:
        return Problem(code, "promotion_code_invalid", f"There is no promotion {code!r}.")
    if row.ends_at is not None and row.ends_at <= now:
        return Problem(code, "promotion_expired", f"The promotion {code!r} has ended.")
    if row.starts_at is not None and row.starts_at > now:
        return Problem(code, "promotion_not_applicable", f"The promotion {code!r} starts later.")
    if row.currency != currency:
        return Problem(code, "promotion_not_applicable", f"{code!r} is not for {currency} carts.")
    if row.usage_limit is not None and row.times_used >= row.usage_limit:
        return Problem(code, "promotion_exhausted", f"The promotion {code!r} has been used up.")
    return None


async def _used_up_by(
    session: AsyncSession, rows: Sequence[Any], customer_key: str | None
) -> set[uuid.UUID]:
    """The promotions of ``rows`` this buyer has used as often as they allow."""
    limited = {r.id: r.usage_limit_per_customer for r in rows if r.usage_limit_per_customer}
    if customer_key is None or not limited:
        return set()
    uses = await session.execute(
        select(_U.promotion_id, _U.uses).where(
            _U.customer_key == customer_key, _U.promotion_id.in_(list(limited))
        )
    )
    return {p for p, n in uses if n >= limited[p]}


async def available(
    session: AsyncSession,
    *,
    codes: Sequence[str],
    currency: str,
    now: datetime,
    customer_key: str | None,
) -> Available:
    """The automatic promotions running ``now`` for ``currency`` with uses left (for this
    buyer too, when ``customer_key`` is known) and the entered ``codes`` (normalised), each
    usable or with its :class:`Problem`."""
    rows = list((await session.execute(_AUTOMATIC, {"currency": currency, "now": now})).all())
    entered: dict[str, Any] = {}
    if codes:
        found = await session.execute(select(table_of(Promotion)).where(_P.code.in_(list(codes))))
        entered = {r.code: r for r in found}
    problems = [p for c in codes if (p := _problem(entered.get(c), c, currency, now))]
    refused = {p.code for p in problems}
    usable = rows + [entered[c] for c in codes if c not in refused]
    spent = await _used_up_by(session, usable, customer_key)
    problems += [
        Problem(r.code, "promotion_exhausted", f"You have already used {r.code!r}.")
        for r in usable
        if r.id in spent and r.code is not None
    ]
    trees = await _descendants(session, {str(c) for r in usable for c in r.category_ids})
    offers = tuple(_offer(r, trees) for r in usable if r.id not in spent)
    return Available(offers, tuple(problems))


def report(outcome: Outcome, lines: Sequence[Line], currency: str) -> tuple[Problem, ...]:
    """The entered codes the engine left out, with the reason: conditions not met
    (``promotion_not_applicable``), or they give nothing here because a better promotion
    applies and they do not combine, or there is nothing for them to take off (reason
    ``promotion_not_combinable``: a notice, not a refusal)."""
    found = []
    for offer in outcome.not_eligible:
        if offer.code is None:
            continue
        if not any(offer.targets(line) and line.subtotal > 0 for line in lines):
            detail = f"{offer.code!r} does not apply to any item in the cart."
        else:
            need = format_money(offer.min_subtotal or 0, currency)
            detail = f"{offer.code!r} needs a subtotal of at least {need}."
        found.append(Problem(offer.code, "promotion_not_applicable", detail))
    found += [
        Problem(
            o.code,
            "promotion_not_combinable",
            f"{o.code!r} gives nothing more here: a better promotion applies that it does not "
            "combine with, or there is nothing left for it to take off.",
        )
        for o in outcome.outdone
        if o.code is not None
    ]
    return tuple(found)
