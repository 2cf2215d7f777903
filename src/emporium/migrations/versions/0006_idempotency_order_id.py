"""idempotency keys keep the order id, not the answer's body (no personal data in clear)

The stored body of ``POST /orders`` held the shipping address in clear text. Each stored
answer becomes a reference to its order (replays render the order again from its sealed
row); an answer whose order cannot be found is dropped. On SQLite, ``secure_delete`` zeroes
the freed pages so that the old bodies do not linger in the file.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 12:40:00.000000
"""

import json
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEYS = sa.table(
    "idempotency_key",
    sa.column("scope", sa.String),
    sa.column("key", sa.String),
    sa.column("body", sa.LargeBinary),
    sa.column("order_id", sa.Uuid),
)
_ORDERS = sa.table("customer_order", sa.column("id", sa.Uuid))


def _order_id(body: bytes | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(json.loads(bytes(body or b""))["id"]))
    except (ValueError, KeyError, TypeError):
        return None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("PRAGMA secure_delete = ON")
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.add_column(sa.Column("order_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_idempotency_key_order_id_customer_order"),
            "customer_order",
            ["order_id"],
            ["id"],
            ondelete="CASCADE",
        )
    stored = bind.execute(
        sa.select(_KEYS.c.scope, _KEYS.c.key, _KEYS.c.body).where(_KEYS.c.body.is_not(None))
    ).all()
    for scope, key, body in stored:
        where = (_KEYS.c.scope == scope, _KEYS.c.key == key)
        order_id = _order_id(body)
        found = (
            order_id is not None
            and bind.execute(sa.select(_ORDERS.c.id).where(_ORDERS.c.id == order_id)).first()
        )
        if found:
            bind.execute(sa.update(_KEYS).where(*where).values(order_id=order_id, body=None))
        else:
            bind.execute(sa.delete(_KEYS).where(*where))
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.drop_column("body")


def downgrade() -> None:
    # The bodies are not rebuilt: a downgraded server replays an empty answer for old keys,
    # so they are dropped instead (their orders stay).
    op.execute(sa.delete(_KEYS).where(_KEYS.c.order_id.is_not(None)))
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body", sa.LargeBinary(), nullable=True))
        batch_op.drop_constraint(
            batch_op.f("fk_idempotency_key_order_id_customer_order"), type_="foreignkey"
        )
        batch_op.drop_column("order_id")
