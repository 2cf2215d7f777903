"""Uses of promotions, taken when an order is placed and given back when it is cancelled.

Race-proof the way stock is (``inventory.service.take_stock``): a use is one conditional
``UPDATE ... SET times_used = times_used + 1 WHERE times_used < usage_limit``, never a read
then a write, so however many checkouts run at once, on however many processes, a
promotion is never held by more orders than its limit (the table's CHECK says so too).
The per-customer count works the same way on ``promotion_customer_use``. Both run in the
checkout's transaction: when the order fails, its uses were never taken.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.core.db.base import table_of
from emporium.promotions.exceptions import PromotionExhausted
from emporium.promotions.models import Promotion, PromotionCustomerUse

_P, _U = table_of(Promotion).c, table_of(PromotionCustomerUse).c
_NO_LIMIT = 2**31 - 1


async def take(session: AsyncSession, promotion_id: uuid.UUID, customer_key: str) -> None:
    """Take one use of the promotion for the buyer ``customer_key`` (the keyed hash of the
    order's e-mail), in the caller's transaction.

    Raises:
        PromotionExhausted: (422 ``promotion_exhausted``) no use is left in all, or for
            this buyer; the caller's transaction must roll back.
    """
    taken = await session.execute(
        update(table_of(Promotion))
        .where(
            _P.id == promotion_id,
            (_P.usage_limit.is_(None)) | (_P.times_used < _P.usage_limit),
        )
        .values(times_used=_P.times_used + 1)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise PromotionExhausted("This promotion has been used up.")
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    await session.execute(
        dialect.insert(PromotionCustomerUse)
        .values(promotion_id=promotion_id, customer_key=customer_key, uses=0)
        .on_conflict_do_nothing()
    )
    limit = (
        select(func.coalesce(_P.usage_limit_per_customer, _NO_LIMIT))
        .where(_P.id == promotion_id)
        .scalar_subquery()
    )
    mine = await session.execute(
        update(table_of(PromotionCustomerUse))
        .where(
            _U.promotion_id == promotion_id,
            _U.customer_key == customer_key,
            _U.uses < limit,
        )
        .values(uses=_U.uses + 1)
    )
    if mine.rowcount != 1:  # type: ignore[attr-defined]
        raise PromotionExhausted("You have already used this promotion as often as it allows.")


async def give_back(session: AsyncSession, promotion_id: uuid.UUID, customer_key: str) -> None:
    """Give back the use an order took (it was cancelled or expired), in the caller's
    transaction, which has made sure (by its own conditional move of the order) that this
    happens once per order."""
    await session.execute(
        update(table_of(Promotion))
        .where(_P.id == promotion_id, _P.times_used > 0)
        .values(times_used=_P.times_used - 1)
    )
    await session.execute(
        update(table_of(PromotionCustomerUse))
        .where(_U.promotion_id == promotion_id, _U.customer_key == customer_key, _U.uses > 0)
        .values(uses=_U.uses - 1)
    )
