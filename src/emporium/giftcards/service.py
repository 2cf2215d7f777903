"""Gift-card verbs: staff issue, list, read and disable cards; anyone checks a balance by
code; the ``gift_card`` payment provider debits and credits.

Money never moves by read-then-write. :func:`debit` is one conditional ``UPDATE gift_card
SET balance = balance - :x WHERE id = :card AND balance >= :x AND disabled_at IS NULL AND
(expires_at IS NULL OR expires_at > :now)`` (and the CHECK ``balance >= 0`` behind it), so
concurrent debits can never together take more than the card holds; :func:`credit` adds
back. Each writes its ledger row in the same transaction, with the balance the ``UPDATE``
returned, and the ledger's unique indexes (one debit per payment, one credit per refund)
make a repeated call fail instead of moving money twice: the caller rolls back and reads
the first one (:func:`debit_of`, :func:`credit_of`).

Every staff change is logged as ``authz_admin`` (OWASP Logging Vocabulary), a balance check
of an unusable code as ``input_validation_fail``; codes are never logged nor put in events.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from emporium.accounts.protect import Vault
from emporium.audit.chain import record_audit
from emporium.core.clock import utcnow
from emporium.core.crypto.keys import KeyRing
from emporium.core.db.base import table_of
from emporium.core.db.pagination import CreatedSort, by_created_at, created_at_cursor
from emporium.core.errors import InvalidInput
from emporium.core.money import currency_exponent
from emporium.core.security_events import security_event
from emporium.giftcards import codes
from emporium.giftcards.exceptions import GiftCardNotFound, GiftCardUnknown
from emporium.giftcards.models import GiftCard, GiftCardMovement
from emporium.giftcards.schemas import (
    BalanceRead,
    GiftCardCreate,
    GiftCardCreated,
    GiftCardDetail,
    GiftCardPage,
    GiftCardRead,
    MovementRead,
)
from emporium.jobs.outbox import emit_event

_C, _M = table_of(GiftCard).c, table_of(GiftCardMovement).c
SORT: CreatedSort = "-created_at"


@dataclass(frozen=True)
class Actor:
    """Who makes a staff change: a user (None for an API key) and from where."""

    user_id: uuid.UUID | None
    client_ip: str | None
    api_key_id: object = None


async def _audit(session: AsyncSession, actor: Actor, action: str, card_id: uuid.UUID) -> None:
    security_event(
        "authz_admin",
        user_id=actor.user_id if actor.user_id is not None else f"api_key:{actor.api_key_id}",
        client_ip=actor.client_ip,
        action=action,
        object_id=str(card_id),
    )
    await record_audit(session, action=action, object_type="gift_card", object_id=card_id)


def _bad(field: str, msg: str) -> InvalidInput:
    return InvalidInput(f"{field}: {msg}", errors=[{"loc": ["body", field], "msg": msg}])


def usable() -> Any:
    """The SQL condition of a card that may be spent now: not disabled, not expired."""
    return and_(_C.disabled_at.is_(None), or_(_C.expires_at.is_(None), _C.expires_at > utcnow()))


def _status(card: Any) -> str:
    if card.disabled_at is not None:
        return "disabled"
    if card.expires_at is not None and card.expires_at <= utcnow():
        return "expired"
    return "active"


def _read(vault: Vault, card: Any) -> dict[str, Any]:
    return {
        "id": card.id,
        "last4": card.last4,
        "initial_balance": card.initial_balance,
        "balance": card.balance,
        "currency": card.currency,
        "status": _status(card),
        "expires_at": card.expires_at,
        "disabled_at": card.disabled_at,
        "note": vault.open_column(GiftCard.note_enc, card.id, card.note_enc),
        "created_at": card.created_at,
        "updated_at": card.updated_at,
    }


def _check(data: GiftCardCreate) -> None:
    try:
        currency_exponent(data.currency)
    except ValueError:
        raise _bad("currency", "not an ISO 4217 currency code") from None
    if data.expires_at is not None and data.expires_at <= utcnow():
        raise _bad("expires_at", "must be in the future")


async def create_card(
    session: AsyncSession, vault: Vault, actor: Actor, data: GiftCardCreate
) -> GiftCardCreated:
    """Staff: issue a card of ``data.initial_balance`` (minor units) with a fresh code,
    answered this once (formatted ``XXXX-XXXX-XXXX-XXXX``); the ledger starts with an
    ``issued`` movement; ``gift_card.created`` is emitted (no code in it).

    Raises InvalidInput (422) for an unknown currency or an expiry not in the future."""
    _check(data)
    now, card_id, code = utcnow(), uuid.uuid4(), codes.new_code()
    card = GiftCard(
        id=card_id,
        code_index=codes.code_index(vault.ring, code),
        last4=code[-4:],
        initial_balance=data.initial_balance,
        balance=data.initial_balance,
        currency=data.currency,
        expires_at=data.expires_at,
        note_enc=vault.seal_column(GiftCard.note_enc, card_id, data.note),
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(card)
    await session.flush()
    await _movement(session, card_id, "issued", data.initial_balance, data.initial_balance, actor)
    emit_event(
        session,
        "gift_card.created",
        {
            "gift_card_id": str(card_id),
            "initial_balance": data.initial_balance,
            "currency": data.currency,
            "expires_at": None if data.expires_at is None else data.expires_at.isoformat(),
        },
    )
    await _audit(session, actor, "gift_card.created", card_id)
    return GiftCardCreated(**_read(vault, card), code=codes.formatted(code))


async def _movement(
    session: AsyncSession,
    card_id: uuid.UUID,
    kind: str,
    amount: int,
    balance_after: int,
    actor: Actor | None = None,
    **ids: uuid.UUID | None,
) -> None:
    await session.execute(
        table_of(GiftCardMovement).insert(),
        [
            {
                "id": uuid.uuid4(),
                "gift_card_id": card_id,
                "kind": kind,
                "amount": amount,
                "balance_after": balance_after,
                "payment_id": ids.get("payment_id"),
                "refund_id": ids.get("refund_id"),
                "order_id": ids.get("order_id"),
                "actor_id": None if actor is None else actor.user_id,
                "created_at": utcnow(),
            }
        ],
    )


async def list_cards(
    session: AsyncSession, vault: Vault, *, limit: int, cursor: str | None
) -> GiftCardPage:
    """Staff: cards, newest first. Raises InvalidInput (422) for a bad cursor."""
    stmt = by_created_at(select(table_of(GiftCard)), SORT, _C.created_at, _C.id, cursor)
    rows = list(await session.execute(stmt.limit(limit + 1)))
    items = [GiftCardRead(**_read(vault, row)) for row in rows[:limit]]
    return GiftCardPage(items=items, next_cursor=created_at_cursor(items, len(rows) > limit, SORT))


async def _card(session: AsyncSession, card_id: uuid.UUID) -> Any:
    row = (await session.execute(select(table_of(GiftCard)).where(_C.id == card_id))).first()
    if row is None:
        raise GiftCardNotFound("No such gift card.")
    return row


async def get_card(session: AsyncSession, vault: Vault, card_id: uuid.UUID) -> GiftCardDetail:
    """Staff: one card and its ledger, oldest movement first. Raises GiftCardNotFound (404)."""
    card = await _card(session, card_id)
    movements = await session.execute(
        select(table_of(GiftCardMovement))
        .where(_M.gift_card_id == card_id)
        .order_by(_M.created_at, _M.id)
    )
    return GiftCardDetail(
        **_read(vault, card),
        movements=[
            MovementRead(
                id=m.id,
                kind=m.kind,
                amount=m.amount,
                balance_after=m.balance_after,
                payment_id=m.payment_id,
                refund_id=m.refund_id,
                order_id=m.order_id,
                created_at=m.created_at,
            )
            for m in movements
        ],
    )


async def disable_card(
    session: AsyncSession, vault: Vault, actor: Actor, card_id: uuid.UUID
) -> GiftCardDetail:
    """Staff: disable a card for good (again: no change); its balance stays, refunds still
    credit it, nothing can spend it. Raises GiftCardNotFound (404)."""
    await _card(session, card_id)
    now = utcnow()
    changed = await session.execute(
        update(table_of(GiftCard))
        .where(_C.id == card_id, _C.disabled_at.is_(None))
        .values(disabled_at=now, updated_at=now)
    )
    if changed.rowcount == 1:  # type: ignore[attr-defined]
        await _audit(session, actor, "gift_card.disabled", card_id)
    return await get_card(session, vault, card_id)


async def find_usable(session: AsyncSession, ring: KeyRing, typed: str) -> Any | None:
    """The card row of the code someone typed (normalised, then found by its keyed hash)
    when it may be spent now; None when unknown, malformed, disabled or expired alike."""
    code = codes.normalise(typed)
    if code is None:
        return None
    return (
        await session.execute(
            select(table_of(GiftCard)).where(
                _C.code_index == codes.code_index(ring, code), usable()
            )
        )
    ).first()


async def check_balance(
    session: AsyncSession, ring: KeyRing, typed: str, client_ip: str | None
) -> BalanceRead:
    """Anyone holding a code: its balance (minor units), currency and expiry.

    Raises GiftCardUnknown (404, one answer for an unknown, disabled or expired code; logged
    as ``input_validation_fail`` without the code)."""
    card = await find_usable(session, ring, typed)
    if card is None:
        security_event("input_validation_fail", client_ip=client_ip, reason="gift_card_unknown")
        raise GiftCardUnknown()
    return BalanceRead(balance=card.balance, currency=card.currency, expires_at=card.expires_at)


async def debit(
    session: AsyncSession,
    card_id: uuid.UUID,
    amount: int,
    currency: str,
    *,
    payment_id: uuid.UUID,
    order_id: uuid.UUID | None,
) -> int | None:
    """Take ``amount`` (minor units, > 0) from a usable card of ``currency`` for one payment,
    in ``session``'s transaction: one conditional update and a ``debit`` movement; emits
    ``gift_card.debited``. Returns the balance after it, or None when the card cannot pay
    (too little balance, disabled, expired, another currency): then nothing changed.

    Raises IntegrityError when this payment already has its debit (the caller rolls back
    and reads it with :func:`debit_of`)."""
    taken = await session.execute(
        update(table_of(GiftCard))
        .where(_C.id == card_id, _C.currency == currency, _C.balance >= amount, usable())
        .values(balance=_C.balance - amount, updated_at=utcnow())
        .returning(_C.balance)
    )
    found = taken.scalar_one_or_none()
    if found is None:
        return None
    after = int(found)
    await _movement(
        session, card_id, "debit", -amount, after, payment_id=payment_id, order_id=order_id
    )
    emit_event(
        session,
        "gift_card.debited",
        {
            "gift_card_id": str(card_id),
            "amount": amount,
            "balance": after,
            "currency": currency,
            "payment_id": str(payment_id),
            "order_id": None if order_id is None else str(order_id),
        },
    )
    return after


async def debit_of(session: AsyncSession, payment_id: uuid.UUID) -> Any | None:
    """The debit movement of one payment (None: never debited)."""
    return (
        await session.execute(
            select(table_of(GiftCardMovement)).where(
                _M.payment_id == payment_id, _M.kind == "debit"
            )
        )
    ).first()


async def credit_of(session: AsyncSession, refund_id: uuid.UUID) -> Any | None:
    """The credit movement of one refund (None: never credited)."""
    return (
        await session.execute(select(table_of(GiftCardMovement)).where(_M.refund_id == refund_id))
    ).first()


async def credit(
    session: AsyncSession,
    card_id: uuid.UUID,
    amount: int,
    *,
    refund_id: uuid.UUID,
    payment_id: uuid.UUID,
    order_id: uuid.UUID | None,
) -> int:
    """Give ``amount`` (minor units, > 0) back to a card for one refund, in ``session``'s
    transaction (a disabled or expired card too: the money is its holder's); a ``credit``
    movement; emits ``gift_card.credited``. Returns the balance after it.

    Raises IntegrityError when this refund already has its credit (roll back and read it
    with :func:`credit_of`)."""
    added = await session.execute(
        update(table_of(GiftCard))
        .where(_C.id == card_id)
        .values(balance=_C.balance + amount, updated_at=utcnow())
        .returning(_C.balance)
    )
    after = int(added.scalar_one())
    await _movement(
        session,
        card_id,
        "credit",
        amount,
        after,
        payment_id=payment_id,
        refund_id=refund_id,
        order_id=order_id,
    )
    emit_event(
        session,
        "gift_card.credited",
        {
            "gift_card_id": str(card_id),
            "amount": amount,
            "balance": after,
            "payment_id": str(payment_id),
            "refund_id": str(refund_id),
        },
    )
    return after


async def card_currency(session: AsyncSession, card_id: uuid.UUID) -> str:
    """The ISO 4217 currency of a card. Raises GiftCardNotFound (404)."""
    found = await session.scalar(select(_C.currency).where(_C.id == card_id))
    if found is None:
        raise GiftCardNotFound("No such gift card.")
    return str(found)
