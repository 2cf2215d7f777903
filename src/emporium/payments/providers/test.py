"""The built-in ``test`` provider: no keys, no network, on by default, so a demo completes a
paid order and the tests exercise the same paths as Stripe.

Outcomes follow Stripe's test payment methods: ``pm_card_visa`` succeeds (captured, or only
authorised with ``EMPORIUM_PAYMENTS_CAPTURE=manual``), ``pm_card_chargeDeclined`` fails with
``card_declined``, ``pm_card_authenticationRequired`` stays ``requires_action`` until the
provider's event says otherwise; no method leaves the intent ``pending``; any other method is
refused (:class:`PaymentDeclined` ``resource_missing``).

Like Stripe's, an intent's ``client_secret`` is ``<reference>_secret_<key>``; the key part
is an HMAC of the reference with the provider's signing secret, so it is stored nowhere.
Its state lives in its own tables (``test_provider_intent``, ``test_provider_refund``),
written in its own transactions. Every change of state also becomes a signed event, queued as
a job (``payments.test_event``) that delivers it through the same handling as
``POST /payments/webhooks/test``. Signatures follow Stripe's scheme: header
``Test-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from emporium.core.clock import utcnow
from emporium.core.db.base import table_of
from emporium.jobs.outbox import enqueue
from emporium.payments.models import TestProviderIntent, TestProviderRefund
from emporium.payments.providers.base import (
    ORDER_ID_KEY,
    PAYMENT_ID_KEY,
    REFUND_ID_KEY,
    Intent,
    InvalidSignature,
    PaymentDeclined,
    PaymentState,
    ProviderEvent,
    RefundResult,
    payment_key,
    refund_key,
)

SIGNATURE_HEADER = "test-signature"
EVENT_JOB = "payments.test_event"
TOLERANCE_SECONDS = 300
EVENT_OF_STATE: dict[str, str] = {
    "requires_action": "payment_intent.requires_action",
    "authorized": "payment_intent.amount_capturable_updated",
    "captured": "payment_intent.succeeded",
    "failed": "payment_intent.payment_failed",
    "cancelled": "payment_intent.canceled",
}
STATE_OF_EVENT = {event: state for state, event in EVENT_OF_STATE.items()}
_I, _R = table_of(TestProviderIntent).c, table_of(TestProviderRefund).c


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The ``Test-Signature`` header value of ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def intent_event(intent: Intent, type: str | None = None) -> dict[str, Any]:
    """The JSON of an event about ``intent`` (``type``: by default the one of its state)."""
    return {
        "id": f"evt_{secrets.token_hex(12)}",
        "type": type or EVENT_OF_STATE.get(intent.status, "payment_intent.processing"),
        "data": {
            "object": {
                "object": "payment_intent",
                "id": intent.reference,
                "status": intent.status,
                "amount": intent.amount,
                "captured_amount": intent.captured_amount,
                "currency": intent.currency,
                "failure_code": intent.failure_code,
                "metadata": dict(intent.metadata),
            }
        },
    }


def _refund_event(refund: RefundResult) -> dict[str, Any]:
    return {
        "id": f"evt_{secrets.token_hex(12)}",
        "type": f"refund.{refund.status}",
        "data": {
            "object": {
                "object": "refund",
                "id": refund.reference,
                "status": refund.status,
                "amount": refund.amount,
                "payment_intent": refund.payment_reference,
                "metadata": dict(refund.metadata),
            }
        },
    }


def _intent_of(row: Any, secret: str) -> Intent:
    mac = hmac.new(secret.encode(), row.reference.encode(), hashlib.sha256).hexdigest()
    return Intent(
        reference=row.reference,
        status=row.status,
        amount=row.amount,
        captured_amount=row.captured_amount,
        currency=row.currency,
        client_secret=f"{row.reference}_secret_{mac[:24]}",
        failure_code=row.failure_code,
        metadata={PAYMENT_ID_KEY: str(row.payment_id), ORDER_ID_KEY: str(row.order_id)},
    )


def _outcome(
    payment_method: str | None, capture: Literal["automatic", "manual"]
) -> tuple[PaymentState, str | None]:
    """The state a new intent reaches with this test payment method, and its decline code."""
    if payment_method is None:
        return "pending", None
    if payment_method == "pm_card_visa":
        return ("captured" if capture == "automatic" else "authorized"), None
    if payment_method == "pm_card_chargeDeclined":
        return "failed", "card_declined"
    if payment_method == "pm_card_authenticationRequired":
        return "requires_action", None
    raise PaymentDeclined(f"No such PaymentMethod: {payment_method!r}", "resource_missing")


def _parse_object(obj: Mapping[str, Any]) -> tuple[Intent | None, RefundResult | None]:
    meta = {str(k): str(v) for k, v in dict(obj.get("metadata") or {}).items()}
    if obj.get("object") == "payment_intent":
        return (
            Intent(
                reference=str(obj["id"]),
                status=obj["status"],
                amount=int(obj["amount"]),
                captured_amount=int(obj["captured_amount"]),
                currency=str(obj["currency"]),
                failure_code=obj.get("failure_code"),
                metadata=meta,
            ),
            None,
        )
    if obj.get("object") == "refund":
        refund = RefundResult(
            reference=str(obj["id"]),
            status=obj["status"],
            amount=int(obj["amount"]),
            payment_reference=str(obj["payment_intent"]),
            metadata=meta,
        )
        return None, refund
    return None, None


class TestProvider:
    """See the module docstring; ``secret`` signs its events, ``sessionmaker`` holds its
    state."""

    __test__ = False  # not a pytest test class
    name: ClassVar[str] = "test"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], secret: str) -> None:
        self._sessionmaker = sessionmaker
        self._secret = secret

    def public_settings(self) -> dict[str, str]:
        """The payment methods it understands."""
        return {
            "payment_methods": "pm_card_visa,pm_card_chargeDeclined,pm_card_authenticationRequired"
        }

    async def _announce(self, session: AsyncSession, event: dict[str, Any]) -> None:
        await enqueue(session, EVENT_JOB, {"body": json.dumps(event)})

    async def create(
        self,
        *,
        payment_id: uuid.UUID,
        order_id: uuid.UUID,
        amount: int,
        currency: str,
        payment_method: str | None,
        capture: Literal["automatic", "manual"],
    ) -> Intent:
        """Create the intent once per ``payment_key(payment_id)`` and confirm it with the
        test ``payment_method``; a repeated call answers the intent as it is now."""
        status, failure = _outcome(payment_method, capture)
        now, key = utcnow(), payment_key(payment_id)
        row = {
            "reference": f"tpi_{secrets.token_hex(12)}",
            "idempotency_key": key,
            "payment_id": payment_id,
            "order_id": order_id,
            "status": status,
            "amount": amount,
            "captured_amount": amount if status == "captured" else 0,
            "refunded_amount": 0,
            "currency": currency,
            "payment_method": payment_method,
            "failure_code": failure,
            "created_at": now,
            "updated_at": now,
        }
        async with self._sessionmaker() as session, session.begin():
            ins = (
                postgresql.insert
                if session.get_bind().dialect.name == "postgresql"
                else sqlite.insert
            )
            stmt = ins(table_of(TestProviderIntent)).values(**row).on_conflict_do_nothing()
            created = (await session.execute(stmt)).rowcount == 1  # type: ignore[attr-defined]
            found = (
                await session.execute(
                    select(table_of(TestProviderIntent)).where(_I.idempotency_key == key)
                )
            ).one()
            intent = _intent_of(found, self._secret)
            if created and status != "pending":
                await self._announce(session, intent_event(intent))
        return intent

    async def retrieve(self, reference: str) -> Intent:
        """The intent as it is now (PaymentDeclined ``resource_missing`` if unknown)."""
        async with self._sessionmaker() as session:
            return _intent_of(await self._row(session, reference), self._secret)

    async def _row(self, session: AsyncSession, reference: str) -> Any:
        row = (
            await session.execute(
                select(table_of(TestProviderIntent)).where(_I.reference == reference)
            )
        ).first()
        if row is None:
            raise PaymentDeclined(f"No such payment_intent: {reference!r}", "resource_missing")
        return row

    async def _move(self, reference: str, allowed: tuple[str, ...], **values: Any) -> Intent:
        async with self._sessionmaker() as session, session.begin():
            moved = await session.execute(
                update(table_of(TestProviderIntent))
                .where(_I.reference == reference, _I.status.in_(allowed))
                .values(updated_at=utcnow(), **values)
            )
            intent = _intent_of(await self._row(session, reference), self._secret)
            if moved.rowcount == 1:  # type: ignore[attr-defined]
                await self._announce(session, intent_event(intent))
            elif intent.status != values["status"]:
                raise PaymentDeclined(
                    f"This PaymentIntent is {intent.status}.", "payment_intent_unexpected_state"
                )
        return intent

    async def capture(self, reference: str, amount: int, *, payment_id: uuid.UUID) -> Intent:
        """Capture ``amount`` of an authorised intent (again: the intent as it is)."""
        return await self._move(
            reference, ("authorized",), status="captured", captured_amount=amount
        )

    async def cancel(self, reference: str, *, payment_id: uuid.UUID) -> Intent:
        """Void an intent that took no money."""
        return await self._move(
            reference, ("pending", "requires_action", "authorized"), status="cancelled"
        )

    async def complete_action(self, reference: str, *, succeed: bool = True) -> Intent:
        """What the customer's browser does at 3-D Secure: the intent in ``requires_action``
        is captured (``succeed``) or fails ``authentication_required``; its event follows."""
        async with self._sessionmaker() as session:
            row = await self._row(session, reference)
        if succeed:
            return await self._move(
                reference, ("requires_action",), status="captured", captured_amount=row.amount
            )
        return await self._move(
            reference,
            ("requires_action",),
            status="failed",
            failure_code="authentication_required",
        )

    async def refund(
        self, reference: str, amount: int, *, refund_id: uuid.UUID, payment_id: uuid.UUID
    ) -> RefundResult:
        """Refund ``amount`` once per ``refund_key(refund_id)``; more than is left refunded
        is refused (PaymentDeclined ``charge_already_refunded``)."""
        key = refund_key(refund_id)
        meta = {REFUND_ID_KEY: str(refund_id), PAYMENT_ID_KEY: str(payment_id)}
        async with self._sessionmaker() as session, session.begin():
            done = (
                await session.execute(
                    select(_R.reference, _R.amount).where(_R.idempotency_key == key)
                )
            ).first()
            if done is not None:
                return RefundResult(
                    done.reference, "succeeded", done.amount, reference, metadata=meta
                )
            taken = await session.execute(
                update(table_of(TestProviderIntent))
                .where(
                    _I.reference == reference,
                    _I.refunded_amount + amount <= _I.captured_amount,
                )
                .values(refunded_amount=_I.refunded_amount + amount, updated_at=utcnow())
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                raise PaymentDeclined(
                    "Refund exceeds the captured amount.", "charge_already_refunded"
                )
            result = RefundResult(
                f"tre_{refund_id.hex}", "succeeded", amount, reference, metadata=meta
            )
            await session.execute(
                table_of(TestProviderRefund).insert(),
                [
                    {
                        "reference": result.reference,
                        "idempotency_key": key,
                        "intent_reference": reference,
                        "amount": amount,
                        "refund_id": refund_id,
                        "created_at": utcnow(),
                    }
                ],
            )
            await self._announce(session, _refund_event(result))
        return result

    def parse_event(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        """Verify ``Test-Signature`` (within ``TOLERANCE_SECONDS``) and parse the event.

        Raises InvalidSignature: missing, wrong or stale signature; unparseable body.
        """
        header = headers.get(SIGNATURE_HEADER) or ""
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        try:
            timestamp = int(parts.get("t", ""))
        except ValueError:
            raise InvalidSignature("missing or malformed Test-Signature") from None
        if abs(utcnow().timestamp() - timestamp) > TOLERANCE_SECONDS:
            raise InvalidSignature("signature timestamp outside the tolerance")
        expected = sign(body, self._secret, timestamp).split("v1=", 1)[1]
        if not hmac.compare_digest(expected, parts.get("v1", "")):
            raise InvalidSignature("signature does not match")
        try:
            event = json.loads(body)
            intent, refund = _parse_object(event["data"]["object"])
            return ProviderEvent(str(event["id"]), str(event["type"]), intent, refund)
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidSignature("unparseable event") from exc
