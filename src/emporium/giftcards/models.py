"""Tables of the gift-cards room. Money is integer minor units of the card's ``currency``;
the note is sealed (it may name a person); the code is never stored, only its keyed hash."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from emporium.core.clock import utcnow
from emporium.core.db.base import Base, UTCDateTime, new_id, sealed

MOVEMENT_KINDS = ("issued", "debit", "credit")


def one_of(column: str, values: tuple[str, ...]) -> str:
    """A CHECK clause: ``column`` holds one of ``values``."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class GiftCard(Base):
    """A prepaid balance. ``code_index`` is the keyed hash (HMAC-SHA256) of the normalised
    code, unique, the only way to find a card by its code; ``last4`` its last four
    characters, to tell cards apart in lists. ``balance`` never goes below zero (CHECK) and
    only moves with a ledger row. A card past ``expires_at`` or with ``disabled_at`` set
    cannot be spent (it can still be credited by a refund)."""

    __tablename__ = "gift_card"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    code_index: Mapped[str] = mapped_column(String(64), unique=True)
    last4: Mapped[str] = mapped_column(String(4))
    initial_balance: Mapped[int] = mapped_column(BigInteger)
    balance: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note_enc: Mapped[str | None] = sealed("note")
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("initial_balance > 0", name="initial_balance_positive"),
        CheckConstraint("balance >= 0", name="balance_non_negative"),
        Index("ix_gift_card_created", "created_at", "id"),
    )


class GiftCardMovement(Base):
    """One change of a card's balance: ``issued`` (the initial balance), ``debit`` (a
    payment; ``amount`` negative, one per ``payment_id``) or ``credit`` (a refund; one per
    ``refund_id``). ``balance_after`` is the card's balance right after it; the movements
    of a card sum to its balance."""

    __tablename__ = "gift_card_movement"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    gift_card_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("gift_card.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(10))
    amount: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    payment_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    refund_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint(one_of("kind", MOVEMENT_KINDS), name="kind_known"),
        CheckConstraint(
            "(kind = 'debit' AND amount < 0) OR (kind <> 'debit' AND amount > 0)",
            name="amount_signed",
        ),
        CheckConstraint("balance_after >= 0", name="balance_after_non_negative"),
        UniqueConstraint("refund_id"),
        Index(
            "uq_gift_card_movement_debit_payment",
            "payment_id",
            unique=True,
            sqlite_where=text("kind = 'debit'"),
            postgresql_where=text("kind = 'debit'"),
        ),
        Index("ix_gift_card_movement_card", "gift_card_id", "created_at"),
    )
