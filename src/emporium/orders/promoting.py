"""Promotions as the orders room uses them: the buyer's key for per-customer limits, the
promotions a cart or an order may use now, their uses taken at checkout and given back on
cancellation, and their API shapes."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.protect import Vault
from emporium.core.clock import utcnow
from emporium.core.db.base import Reader, table_of
from emporium.jobs.outbox import emit_event
from emporium.orders.models import OrderPromotion
from emporium.orders.schemas import PromotionApplied, PromotionIssue
from emporium.promotions import usage
from emporium.promotions.engine import Outcome
from emporium.promotions.exceptions import REFUSALS
from emporium.promotions.offers import Available, Problem, available

_OP = table_of(OrderPromotion).c


def buyer_key(vault: Vault, email: str | None, customer_id: uuid.UUID | None) -> str | None:
    """The key a buyer's promotion uses are counted under: the keyed hash of their e-mail
    (so a guest and a customer with one e-mail are one buyer), else their account id;
    None when neither is known yet (a guest cart without an e-mail)."""
    if email:
        return vault.email_index(email)
    return None if customer_id is None else f"customer:{customer_id}"


async def usable_now(
    session: AsyncSession, *, codes: Sequence[str], currency: str, customer_key: str | None
) -> Available:
    """The automatic promotions and entered ``codes`` usable now (``promotions.offers``)."""
    return await available(
        session, codes=codes, currency=currency, now=utcnow(), customer_key=customer_key
    )


def applied(outcome: Outcome) -> list[PromotionApplied]:
    """The ``promotions`` of a cart or an order: each applied one with what it saved."""
    return [
        PromotionApplied(code=a.offer.code, name=a.offer.name, amount=a.amount)
        for a in outcome.applied
    ]


def issues(problems: Sequence[Problem]) -> list[PromotionIssue]:
    """The ``promotion_issues`` of a cart: each entered code that gives nothing, and why."""
    return [PromotionIssue(code=p.code, reason=p.reason, detail=p.detail) for p in problems]


def refuse_codes(problems: Sequence[Problem]) -> None:
    """Checkout refuses an order while an entered code gives nothing for a reason the buyer
    must act on (``promotions.exceptions.REFUSALS``); a code only outdone by a better
    promotion is no reason.

    Raises:
        PromotionRefused: (422) the first such code's reason.
    """
    for problem in problems:
        if problem.reason in REFUSALS:
            raise REFUSALS[problem.reason](problem.detail)


async def redeem(
    session: AsyncSession,
    order: Mapping[str, Any],
    outcome: Outcome,
    buyer: str,
    *,
    announce: bool,
) -> None:
    """Checkout, in its transaction: take one use of each applied promotion for ``buyer``
    (``promotions.usage.take``: race-proof), record them on the order (``order_promotion``)
    and announce ``promotion.redeemed`` for each.

    Raises:
        PromotionExhausted: (422 ``promotion_exhausted``) a promotion has no use left;
            the checkout's transaction rolls back, so nothing at all changes.
    """
    rows = []
    for position, a in enumerate(outcome.applied):
        await usage.take(session, a.offer.id, buyer)
        rows.append(
            {
                "order_id": order["id"],
                "position": position,
                "promotion_id": a.offer.id,
                "code": a.offer.code,
                "name": a.offer.name,
                "amount": a.amount,
                "customer_key": buyer,
            }
        )
        if announce:
            event = {
                "promotion_id": str(a.offer.id),
                "code": a.offer.code,
                "name": a.offer.name,
                "amount": a.amount,
                "currency": order["currency"],
                "order_id": str(order["id"]),
                "order_number": order["number"],
            }
            emit_event(session, "promotion.redeemed", event)
    if rows:
        await session.execute(insert(table_of(OrderPromotion)), rows)


async def give_back(session: AsyncSession, order_id: uuid.UUID) -> None:
    """The order was cancelled or expired (its move made once, by a conditional update, in
    the caller's transaction): give back each use it took."""
    held = await session.execute(
        select(_OP.promotion_id, _OP.customer_key).where(
            _OP.order_id == order_id, _OP.promotion_id.is_not(None)
        )
    )
    for promotion_id, customer_key in held:
        await usage.give_back(session, promotion_id, customer_key)


async def held_by(
    db: AsyncSession | Reader, order_ids: Sequence[uuid.UUID]
) -> dict[Any, list[PromotionApplied]]:
    """The ``promotions`` of each order, as they were at checkout."""
    found: dict[Any, list[PromotionApplied]] = defaultdict(list)
    if not order_ids:
        return found
    rows = await db.execute(
        select(_OP.order_id, _OP.code, _OP.name, _OP.amount)
        .where(_OP.order_id.in_(list(order_ids)))
        .order_by(_OP.order_id, _OP.position)
    )
    for r in rows:
        found[r.order_id].append(PromotionApplied(code=r.code, name=r.name, amount=r.amount))
    return found
