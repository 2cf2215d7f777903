"""Staff operations on promotions: create, read, list, change and delete them.

Every write is validated against the rules a shop owner would state (a percentage between
0.01 % and 100 %, a fixed amount of at least one minor unit, free shipping without a value,
an end after the start, categories and products that exist, usage limits of at least 1 and
never below the uses already counted: 422 naming the field, nothing changed). Codes are
stored normalised (``codes.normalise_code``), so they are unique whatever their case (409
``promotion_code_taken``). Each change is one ``info`` line in the security log
(``promotion_created``, ``promotion_updated``, ``promotion_deleted``: who, from where, which
promotion; OWASP Logging Cheat Sheet, changes made with privileges).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.audit.chain import record_audit
from emporium.catalog.models import Category, Product
from emporium.core.clock import utcnow
from emporium.core.db.pagination import by_created_at, created_at_cursor
from emporium.core.errors import InvalidInput
from emporium.core.money import BASIS_POINTS
from emporium.core.security_events import security_event
from emporium.promotions.codes import RULE, normalise_code
from emporium.promotions.exceptions import PromotionCodeTaken, PromotionInUse, PromotionNotFound
from emporium.promotions.models import Promotion
from emporium.promotions.schemas import (
    AppliesTo,
    AppliesToRead,
    PromotionCreate,
    PromotionPage,
    PromotionRead,
    PromotionUpdate,
)


@dataclass(frozen=True)
class Actor:
    """Who makes a staff change, for the security log: a user id or ``api_key:<id>`` (or a
    name such as ``demo`` for the command line), and the client address when over HTTP."""

    user_id: object
    client_ip: str | None = None


async def _log(session: AsyncSession, actor: Actor, name: str, promotion_id: uuid.UUID) -> None:
    security_event(
        name,
        user_id=actor.user_id,
        client_ip=actor.client_ip,
        level="info",
        promotion_id=str(promotion_id),
    )
    action = name.replace("promotion_", "promotion.")  # promotion_created: promotion.created
    await record_audit(session, action=action, object_type="promotion", object_id=promotion_id)


def _bad(field: str, msg: str) -> InvalidInput:
    """A 422 for the body's ``field`` (dotted for a nested one: ``applies_to.product_ids``)."""
    loc = ["body", *field.split(".")]
    return InvalidInput(f"{field}: {msg}", errors=[{"loc": loc, "msg": msg}])


def promotion_read(promotion: Promotion) -> PromotionRead:
    """The API shape of a promotion."""
    return PromotionRead(
        id=promotion.id,
        name=promotion.name,
        code=promotion.code,
        type=promotion.type,  # type: ignore[arg-type]  # the CHECK type_known holds it
        value=promotion.value,
        currency=promotion.currency,
        applies_to=AppliesToRead(
            category_ids=[uuid.UUID(x) for x in promotion.category_ids],
            product_ids=[uuid.UUID(x) for x in promotion.product_ids],
        ),
        min_subtotal=promotion.min_subtotal,
        starts_at=promotion.starts_at,
        ends_at=promotion.ends_at,
        usage_limit=promotion.usage_limit,
        usage_limit_per_customer=promotion.usage_limit_per_customer,
        times_used=promotion.times_used,
        combinable=promotion.combinable,
        active=promotion.active,
        created_at=promotion.created_at,
        updated_at=promotion.updated_at,
    )


def _check_value(kind: str, value: int) -> None:
    if kind == "percentage" and not 1 <= value <= BASIS_POINTS:
        raise _bad("value", "a percentage is 1 to 10000 basis points (0.01 % to 100 %)")
    if kind == "fixed_amount" and value < 1:
        raise _bad("value", "a fixed amount is at least 1 minor unit")
    if kind == "free_shipping" and value != 0:
        raise _bad("value", "free shipping takes no value (0 or absent)")


def _check(promotion: Promotion) -> None:
    """The rules across fields, on the promotion as it would be stored."""
    _check_value(promotion.type, promotion.value)
    starts, ends = promotion.starts_at, promotion.ends_at
    if starts is not None and ends is not None and ends <= starts:
        raise _bad("ends_at", "must be after starts_at")
    limit = promotion.usage_limit
    if limit is not None and limit < (promotion.times_used or 0):
        raise _bad("usage_limit", f"must not be below times_used ({promotion.times_used})")


async def _unknown(session: AsyncSession, column: Any, ids: Sequence[uuid.UUID]) -> list[str]:
    if not ids:
        return []
    found = set((await session.scalars(select(column).where(column.in_(ids)))).all())
    return [str(x) for x in ids if x not in found]


async def _targets(session: AsyncSession, applies_to: AppliesTo | None) -> tuple[list[str], ...]:
    """The stored ``(category_ids, product_ids)`` of ``applies_to``, each sorted and without
    repeats. Raises InvalidInput (422) naming ids that do not exist."""
    categories = sorted(set(applies_to.category_ids if applies_to else []))
    products = sorted(set(applies_to.product_ids if applies_to else []))
    missing = await _unknown(session, Category.id, categories)
    if missing:
        raise _bad("applies_to.category_ids", f"no such categories: {', '.join(missing)}")
    missing = await _unknown(session, Product.id, products)
    if missing:
        raise _bad("applies_to.product_ids", f"no such products: {', '.join(missing)}")
    return [str(x) for x in categories], [str(x) for x in products]


async def _taken(session: AsyncSession, code: str, promotion_id: uuid.UUID) -> bool:
    with session.no_autoflush:
        other = await session.scalar(
            select(Promotion.id).where(Promotion.code == code, Promotion.id != promotion_id)
        )
    return other is not None


async def _free_code(
    session: AsyncSession, code: str | None, promotion_id: uuid.UUID
) -> str | None:
    """``code`` normalised, when no other promotion has it. Raises InvalidInput (422),
    PromotionCodeTaken (409)."""
    if code is None:
        return None
    normal = normalise_code(code)
    if await _taken(session, normal, promotion_id):
        raise PromotionCodeTaken("Another promotion has this code.")
    return normal


async def _store(session: AsyncSession) -> None:
    """Flush the promotion created or changed; the database's constraints decide races
    that the checks before could not see: a code taken meanwhile (the one unique column
    besides the random id: 409), a use counted meanwhile that puts ``times_used`` over a
    lowered ``usage_limit`` (the CHECK ``times_used_within_limit``: 422)."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        # SQLite: "UNIQUE constraint failed"; PostgreSQL: "violates unique constraint".
        if "unique" in str(exc.orig).lower():
            raise PromotionCodeTaken("Another promotion has this code.") from exc
        if "times_used_within_limit" in str(exc.orig):
            raise _bad("usage_limit", "must not be below times_used") from exc
        raise


async def _get(session: AsyncSession, promotion_id: uuid.UUID) -> Promotion:
    promotion = await session.get(Promotion, promotion_id)
    if promotion is None:
        raise PromotionNotFound("No such promotion.")
    return promotion


async def create_promotion(
    session: AsyncSession, actor: Actor, data: PromotionCreate, *, currency: str
) -> PromotionRead:
    """Staff: a new promotion; ``currency`` (the shop's) unless ``data.currency`` names one.
    Raises InvalidInput (422, see the module's rules), PromotionCodeTaken (409)."""
    promotion_id = uuid.uuid4()
    categories, products = await _targets(session, data.applies_to)
    now = utcnow()
    promotion = Promotion(
        id=promotion_id,
        name=data.name,
        code=await _free_code(session, data.code, promotion_id),
        type=data.type,
        value=data.value,
        currency=data.currency or currency,
        category_ids=categories,
        product_ids=products,
        min_subtotal=data.min_subtotal,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        usage_limit=data.usage_limit,
        usage_limit_per_customer=data.usage_limit_per_customer,
        times_used=0,
        combinable=data.combinable,
        active=data.active,
        created_at=now,
        updated_at=now,
    )
    _check(promotion)
    session.add(promotion)
    await _store(session)
    await _log(session, actor, "promotion_created", promotion.id)
    return promotion_read(promotion)


async def get_promotion(session: AsyncSession, promotion_id: uuid.UUID) -> PromotionRead:
    """Staff: one promotion. Raises PromotionNotFound (404)."""
    return promotion_read(await _get(session, promotion_id))


async def update_promotion(
    session: AsyncSession, actor: Actor, promotion_id: uuid.UUID, data: PromotionUpdate
) -> PromotionRead:
    """Staff: change a promotion; the rules hold for the result (a ``usage_limit`` is never
    below ``times_used``). Raises PromotionNotFound (404), InvalidInput (422),
    PromotionCodeTaken (409)."""
    promotion = await _get(session, promotion_id)
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    if "applies_to" in changes:
        targets = await _targets(session, changes.pop("applies_to"))
        promotion.category_ids, promotion.product_ids = targets
    if "code" in changes:
        changes["code"] = await _free_code(session, changes["code"], promotion.id)
    for key, value in changes.items():
        setattr(promotion, key, value)
    _check(promotion)
    promotion.updated_at = utcnow()
    await _store(session)
    await _log(session, actor, "promotion_updated", promotion.id)
    return promotion_read(promotion)


async def delete_promotion(session: AsyncSession, actor: Actor, promotion_id: uuid.UUID) -> None:
    """Staff: delete a promotion that no order holds (``times_used`` 0; its per-customer
    counts go with it). One conditional DELETE, so a use taken meanwhile keeps it. Raises
    PromotionNotFound (404), PromotionInUse (409: orders hold it or refer to it; set
    ``active`` false instead)."""
    stmt = delete(Promotion).where(Promotion.id == promotion_id, Promotion.times_used == 0)
    try:
        async with session.begin_nested():
            gone = (await session.execute(stmt)).rowcount  # type: ignore[attr-defined]
    except IntegrityError as exc:  # a table of another room refers to it
        raise PromotionInUse("Orders refer to this promotion; deactivate it instead.") from exc
    if not gone:
        await _get(session, promotion_id)
        raise PromotionInUse("Orders hold this promotion; deactivate it instead.")
    await _log(session, actor, "promotion_deleted", promotion_id)


def _listed_code(code: str) -> str:
    try:
        return normalise_code(code)
    except InvalidInput as exc:
        raise InvalidInput(
            f"code: {RULE}", errors=[{"loc": ["query", "code"], "msg": RULE}]
        ) from exc


async def list_promotions(
    session: AsyncSession,
    *,
    limit: int,
    cursor: str | None,
    active: bool | None = None,
    code: str | None = None,
) -> PromotionPage:
    """Staff: promotions, oldest first; only those whose ``active`` flag is ``active``, and
    the one with ``code`` (any case), when given. Raises InvalidInput (422) for a bad cursor
    or code."""
    stmt = select(Promotion)
    if active is not None:
        stmt = stmt.where(Promotion.active == active)
    if code is not None:
        stmt = stmt.where(Promotion.code == _listed_code(code))
    stmt = by_created_at(stmt, "created_at", Promotion.created_at, Promotion.id, cursor)
    rows = list((await session.scalars(stmt.limit(limit + 1))).all())
    items = [promotion_read(p) for p in rows[:limit]]
    return PromotionPage(
        items=items, next_cursor=created_at_cursor(items, len(rows) > limit, "created_at")
    )
