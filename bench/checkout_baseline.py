"""The baseline for checkout: a raw ASGI app, no framework, no ORM, no authentication.

``POST /orders`` takes the body of Emporium's ``POST /api/v1/orders`` for given lines
(``{"items": [{"variant_id", "quantity"}], "shipping_address": {...},
"shipping_method_id": ...}``) and does the same transaction through an asyncpg pool, one
connection, one ``BEGIN ... COMMIT``:

1. read the variants' prices, SKUs, titles, weights and their products' tax classes
   (variant JOIN product, ``= ANY($1)``);
2. per line, in variant id order, the conditional
   ``UPDATE variant SET stock = stock - q WHERE id = $1 AND stock - q >= 0 RETURNING stock,
   product_id``; a line that updates no row is short: read what is left of the short lines,
   roll back and answer ``409`` (``insufficient_stock`` naming the lines);
3. read the customer's sealed e-mail (``user_account``, as Emporium does to seal it into
   the order), the automatic promotions running now (``promotion``; the bench seeds none,
   as Emporium reads them to price the cart), the address country's tax rates
   (``tax_rate``) and the chosen method with its zone (``shipping_method`` JOIN
   ``shipping_zone``); refuse (``422``
   ``shipping_method_unavailable``) a method that is inactive, in another currency, whose
   zone does not hold the country or whose weight range does not hold the order's weight;
4. compute the figures as ``emporium.orders.pricing`` does, in integers: line ``subtotal =
   unit_price * quantity``, tax per line ``round_half_up(subtotal * rate / 10000)``, the
   method's price (0 once the subtotal reaches ``free_over``) and its tax at the rate of the
   method's tax class, ``total = subtotal + shipping + tax`` (prices exclude tax, no
   discounts: the bench uses neither);
5. INSERT the ``sale`` rows of ``stock_movement`` (one ``executemany``), the
   ``customer_order`` row with every money column, the payment and fulfilment status, the
   method's id and name (the shipping address and the e-mail as opaque random texts of the
   length of Emporium's sealed ones: no encryption; a random blind index), the
   ``order_line`` rows (``executemany``), the ``order_status_change`` row
   and the ``order.created`` ``outbox_event`` row with the data Emporium records;
6. ``COMMIT`` and answer ``201`` with the order JSON in Emporium's shape (msgspec); the
   order expires ``BASELINE_ORDER_PAYMENT_MINUTES`` (60) after it was placed, like
   Emporium's (``EMPORIUM_ORDER_PAYMENT_MINUTES``; the bench passes the same value).

``POST /orders/{id}/payments`` (``{"provider": "test", "payment_method": "pm_card_visa"}``,
optional ``amount``: the only provider and method it knows) pays the fixed customer's order
the way Emporium's ``test`` provider with automatic capture does, in the same three
committed transactions on one pooled connection:

A. (``payments.service.open_payment``) ``SELECT ... FOR UPDATE`` the order (``404`` not
   the customer's, ``409 order_not_payable`` unless ``pending``), the amount still open in
   pending payments, ``409 amount_exceeds_balance`` beyond the unpaid balance; INSERT the
   ``pending`` ``payment`` and its ``created`` ``payment_change``; ``COMMIT``;
P. (the test provider's own transaction, ``TestProvider.create``) INSERT the captured
   ``test_provider_intent`` (``ON CONFLICT DO NOTHING`` on its idempotency key) and the
   ``payments.test_event`` ``job`` carrying its ``payment_intent.succeeded`` event;
   ``COMMIT``;
B. (``payments.apply.apply_intent``) UPDATE the payment to ``captured`` (only from an open
   state), INSERT its ``captured`` change, add the amount to the order's ``paid_total``
   (relative update, ``RETURNING`` the figures); once the order is covered, the conditional
   ``UPDATE ... SET status = 'paid', payment_status = 'paid' WHERE status = 'pending'``, the
   ``pending -> paid`` ``order_status_change`` row, the lines read for the event; the
   ``payment.captured`` and ``order.paid`` ``outbox_event`` rows with Emporium's data;
   ``COMMIT``; ``201`` with the payment in Emporium's shape.

Emporium does more statements for the same rows, by design: it locks the order with a
no-op ``UPDATE`` then reads it (after a first read to check who may see it), re-reads the
payment between A and the provider call in a read-only transaction it rolls back (the
request holds no transaction during the provider call), locks the payment the same way
before applying the intent, writes ``payment_status`` in its own ``UPDATE``, reads the
whole order (lines, history, sealed address) for the ``order.paid`` event and the payment
again for the answer; the provider runs on its own pooled connection.

Differences from Emporium kept on purpose: no authentication (Emporium verifies the JWT and
reads the session and user row per request), the order belongs to a fixed customer whose
e-mail is given (``BASELINE_CUSTOMER_EMAIL``), the address and e-mail are not encrypted,
no ``pg_notify`` of the changed products (Emporium's change feed for its product cache,
which the baseline does not have), no ``inventory.low_stock`` event
(the bench's plentiful stock never crosses the threshold; the scarce variants may), no
Idempotency-Key support, no tax-inclusive prices, discounts or region (ISO 3166-2) rates.
Nothing is cached: every request reads prices, rates and the method.
``GET /readyz`` answers once the pool is up. Anything else is 404.

Same server stack as Emporium: uvicorn with uvloop and httptools::

    BASELINE_DSN=postgresql://postgres@127.0.0.1:5432/emporium_bench_checkout \\
    BASELINE_CUSTOMER_ID=<uuid> BASELINE_CUSTOMER_EMAIL=<its e-mail> \\
    .venv/bin/python bench/checkout_baseline.py --port 8002

``BASELINE_POOL_SIZE`` (default 20, per worker) matches Emporium's write pool at its former
default pool size 10 (3 since issue 10).
``BASELINE_NOTIFY=1`` (an experiment, off by default) adds Emporium's change-feed
``pg_notify`` of the order's products inside the transaction.

``BASELINE_JOBS=1`` (``checkout.py --jobs``) adds the work Emporium's job runner does for
each order, in the same worker process after the ``COMMIT`` (an asyncio task per order, as
an embedded runner would run it), with the same external effects and records: the
``order.created`` event is written already dispatched (this process handles it, and
Emporium's runner on the same database leaves it alone); the order confirmation e-mail
(the ``mail_message`` record with its fixed Message-ID, ``INSERT ... ON CONFLICT DO
NOTHING``; a multipart text + HTML message built with the standard library's ``email``
package from the order's lines and figures; submitted over SMTP to ``BASELINE_SMTP_HOST``
/ ``BASELINE_SMTP_PORT`` without TLS, one connection per message as Emporium's transport
does; then ``sent_at``); and the webhook fan-out (the active endpoints read, one
``webhook_delivery`` per endpoint subscribed to ``order.created``, the body POSTed with
Standard Webhooks headers signed with HMAC-SHA256 by ``BASELINE_WEBHOOK_SECRET`` through
one shared ``httpx`` client, then the delivery's result and its ``webhook_attempt`` row in
one transaction). What it leaves out, by design: the job rows (claims, leases, retries),
reading the account and opening its sealed e-mail (the customer's e-mail is given), and
Jinja templates (f-strings).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import smtplib
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from html import escape
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

PRICING = """
SELECT v.id, v.sku, v.title, v.price, v.currency, v.product_id, v.weight_grams,
       p.title AS product_title, p.published, p.tax_class
FROM variant AS v JOIN product AS p ON p.id = v.product_id
WHERE v.id = ANY($1::uuid[])
"""
TAKE = """
UPDATE variant SET stock = stock - $2, updated_at = $3
WHERE id = $1 AND stock - $2 >= 0
RETURNING stock, product_id
"""
AVAILABLE = "SELECT id, sku, stock FROM variant WHERE id = ANY($1::uuid[])"
RATES = "SELECT region, tax_class, rate_bp FROM tax_rate WHERE country = $1"
PROMOTIONS = """
SELECT id, type, value, combinable, min_subtotal, category_ids, product_ids FROM promotion
WHERE active AND code IS NULL AND currency = $1 AND (starts_at IS NULL OR starts_at <= $2)
  AND (ends_at IS NULL OR ends_at > $2) AND (usage_limit IS NULL OR times_used < usage_limit)
"""
METHOD = """
SELECT m.id, m.name, m.price, m.currency, m.free_over, m.min_weight_grams,
       m.max_weight_grams, m.tax_class, m.active, z.countries
FROM shipping_method AS m JOIN shipping_zone AS z ON z.id = m.zone_id
WHERE m.id = $1
"""
NOTIFY = "SELECT pg_notify('emporium_changes', $1)"
INSERT_MOVEMENT = """
INSERT INTO stock_movement
    (id, variant_id, kind, delta, stock_after, reason, order_id, actor_id, created_at)
VALUES ($1, $2, 'sale', $3, $4, '', $5, $6, $7)
"""
ACCOUNT_EMAIL = "SELECT email_enc FROM user_account WHERE id = $1"
INSERT_ORDER = """
INSERT INTO customer_order
    (id, number, status, payment_status, fulfillment_status, paid_total, refunded_total,
     customer_id, subtotal, discount_total, shipping_total, shipping_tax_rate,
     shipping_tax_total, tax_total, total, currency, prices_include_tax, shipping_method_id,
     shipping_method_name, external_ref, shipping_address_enc, billing_address_enc,
     email_enc, email_index, order_token_hash, created_at, updated_at, expires_at)
VALUES ($1, $2, 'pending', 'unpaid', 'unfulfilled', 0, 0, $3, $4, 0, $5, $6, $7, $8, $9, $10,
        false, $11, $12, NULL, $13, NULL, $14, $15, NULL, $16, $16, $17)
"""
INSERT_LINE = """
INSERT INTO order_line
    (id, order_id, position, product_id, variant_id, sku, title, quantity, unit_price,
     subtotal, discount_total, tax_rate, tax_total, total, prices_include_tax,
     quantity_fulfilled, quantity_returned, quantity_return_requested)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $12, $13, false, 0, 0, 0)
"""
INSERT_STATUS = """
INSERT INTO order_status_change
    (id, order_id, from_status, to_status, actor_id, actor_role, created_at)
VALUES ($1, $2, NULL, 'pending', $3, 'customer', $4)
"""
INSERT_EVENT = """
INSERT INTO outbox_event (id, type, data, occurred_at, dispatched_at)
VALUES ($1, 'order.created', $2::json, $3, $4)
"""
# BASELINE_JOBS=1: the order's e-mail and webhooks, after the commit
INSERT_MAIL = """
INSERT INTO mail_message (id, dedupe_key, message_id, template, created_at)
VALUES ($1, $2, $3, 'order_confirmation', $4) ON CONFLICT DO NOTHING RETURNING id
"""
MAIL_SENT = "UPDATE mail_message SET sent_at = $2 WHERE id = $1"
ENDPOINTS = "SELECT id, url, events FROM webhook_endpoint WHERE is_active"
INSERT_DELIVERY = """
INSERT INTO webhook_delivery (id, endpoint_id, event_id, event_type, msg_id, body, status,
                              attempts, created_at)
VALUES ($1, $2, $3, 'order.created', $4, $5, 'pending', 0, $6) ON CONFLICT DO NOTHING
"""
DELIVERED = """
UPDATE webhook_delivery SET attempts = attempts + 1, last_status_code = $2,
    last_duration_ms = $3, status = $4, delivered_at = $5
WHERE id = $1
"""
INSERT_ATTEMPT = """
INSERT INTO webhook_attempt (id, delivery_id, attempted_at, status_code, duration_ms, error)
VALUES ($1, $2, $3, $4, $5, NULL)
"""

# POST /orders/{id}/payments: the same three committed transactions as Emporium's
# (payments.service.open_payment, the test provider's create, payments.apply.apply_intent)
ORDER_TO_PAY = """
SELECT status, customer_id, total, paid_total, refunded_total, currency
FROM customer_order WHERE id = $1 FOR UPDATE
"""
OPEN_AMOUNT = """
SELECT coalesce(sum(amount - captured_amount), 0) FROM payment
WHERE order_id = $1 AND status IN ('pending', 'requires_action', 'authorized')
"""
INSERT_PAYMENT = """
INSERT INTO payment
    (id, order_id, provider, status, amount, captured_amount, refunded_amount, currency,
     payment_method, created_by, created_at, updated_at)
VALUES ($1, $2, $3, 'pending', $4, 0, 0, $5, $6, $7, $8, $8)
"""
INSERT_PAYMENT_CHANGE = """
INSERT INTO payment_change
    (id, order_id, payment_id, refund_id, kind, amount, source, actor_id, actor_role, created_at)
VALUES ($1, $2, $3, NULL, $4, $5, 'client', $6, 'customer', $7)
"""
INSERT_INTENT = """
INSERT INTO test_provider_intent
    (reference, idempotency_key, payment_id, order_id, status, amount, captured_amount,
     refunded_amount, currency, payment_method, failure_code, created_at, updated_at)
VALUES ($1, $2, $3, $4, 'captured', $5, $5, 0, $6, $7, NULL, $8, $8)
ON CONFLICT DO NOTHING
"""
INSERT_JOB = """
INSERT INTO job
    (id, kind, payload, status, attempts, max_attempts, run_at, dedupe_key, created_at,
     updated_at)
VALUES ($1, 'payments.test_event', $2::json, 'queued', 0, $3, $4, NULL, $4, $4)
"""
CAPTURE = """
UPDATE payment SET status = 'captured', captured_amount = amount, reference = $2,
    updated_at = $3
WHERE id = $1 AND status IN ('pending', 'requires_action', 'authorized')
RETURNING order_id, amount, currency, created_at
"""
ADD_PAID = """
UPDATE customer_order SET paid_total = paid_total + $2, updated_at = $3 WHERE id = $1
RETURNING status, number, customer_id, subtotal, discount_total, shipping_total, tax_total,
          total, paid_total, refunded_total, currency, prices_include_tax
"""
MARK_PAID = """
UPDATE customer_order SET status = 'paid', payment_status = 'paid'
WHERE id = $1 AND status = 'pending'
"""
SET_PAYMENT_STATUS = "UPDATE customer_order SET payment_status = $2 WHERE id = $1"
INSERT_PAID_STATUS = """
INSERT INTO order_status_change
    (id, order_id, from_status, to_status, actor_id, actor_role, created_at)
VALUES ($1, $2, 'pending', 'paid', $3, 'customer', $4)
"""
EVENT_LINES = """
SELECT sku, title, quantity, unit_price, subtotal AS line_total, discount_total, tax_rate,
       tax_total, total
FROM order_line WHERE order_id = $1 ORDER BY position
"""
INSERT_EVENTS = """
INSERT INTO outbox_event (id, type, data, occurred_at, dispatched_at)
VALUES ($1, $2, $3::json, $4, NULL)
"""
JOB_MAX_ATTEMPTS = 10  # jobs.outbox.DEFAULT_MAX_ATTEMPTS

MAX_QUANTITY = 999
MAX_LINES = 100
BASIS_POINTS = 10_000
SEAL_OVERHEAD = 28  # bytes AES-GCM adds to the sealed JSON (12-byte nonce, 16-byte tag)
_NUMBER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_JSON_HEADERS = [(b"content-type", b"application/json")]
ORDER_EVENT_KEYS = (
    *("number", "subtotal", "discount_total", "shipping_total", "tax_total", "total"),
    *("currency", "prices_include_tax"),
)  # the order's figures in order.* events (orders.service.order_event_data)
EVENT_LINE_KEYS = (
    *("sku", "title", "quantity", "unit_price", "line_total"),
    *("discount_total", "tax_rate", "tax_total", "total"),
)  # the lines in the order.created event's data (orders.service.order_event_data)


class Line(msgspec.Struct, forbid_unknown_fields=True):
    variant_id: uuid.UUID
    quantity: int


class Address(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    line1: str
    city: str
    postal_code: str
    country: str
    line2: str | None = None
    region: str | None = None
    phone: str | None = None


class OrderIn(msgspec.Struct, forbid_unknown_fields=True):
    items: list[Line]
    shipping_address: Address
    shipping_method_id: uuid.UUID


class PaymentIn(msgspec.Struct, forbid_unknown_fields=True):
    provider: str
    payment_method: str | None = None
    amount: int | None = None


_encode = msgspec.json.Encoder().encode
_decode_order = msgspec.json.Decoder(OrderIn).decode
_decode_payment = msgspec.json.Decoder(PaymentIn).decode


class Problem(Exception):
    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.body = _encode(
            {
                "type": f"/problems/{code}",
                "title": code.replace("_", " ").capitalize(),
                "status": status,
                "detail": detail,
                "code": code,
                **extra,
            }
        )


def _order_number() -> str:
    raw = "".join(secrets.choice(_NUMBER_ALPHABET) for _ in range(10))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def _opaque(clear: bytes) -> str:
    """Random text as long as Emporium's sealed form of ``clear`` (AES-GCM)."""
    size = len(clear) + SEAL_OVERHEAD
    return "v1.bench00." + base64.urlsafe_b64encode(os.urandom(size)).decode()


def _title(product_title: str, variant_title: str) -> str:
    if not variant_title or variant_title.lower() == "default":
        return product_title
    return f"{product_title} - {variant_title}"


def tax_of(amount: int, rate_bp: int) -> int:
    """``amount * rate_bp / 10000`` rounded half up, for amounts >= 0 (integers only)."""
    return (2 * amount * rate_bp + BASIS_POINTS) // (2 * BASIS_POINTS)


def _method(row: asyncpg.Record | None, currency: str, country: str, weight: int) -> Any:
    if row is None or not row["active"] or row["currency"] != currency:
        raise Problem(422, "shipping_method_unavailable", "That shipping method is not available.")
    countries = row["countries"]
    if isinstance(countries, str):  # asyncpg hands json columns over as text
        countries = json.loads(countries)
    low, high = row["min_weight_grams"], row["max_weight_grams"]
    if (
        country not in countries
        or (low is not None and weight < low)
        or (high is not None and weight > high)
    ):
        raise Problem(
            422,
            "shipping_method_unavailable",
            "That shipping method does not serve this address or this weight.",
        )
    return row


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _money(minor: int, currency: str) -> str:
    return f"{minor // 100}.{minor % 100:02d} {currency}"


def _confirmation(data: dict[str, Any], to: str, message_id: str) -> EmailMessage:
    """The order confirmation as Emporium writes it (text and HTML parts), from f-strings."""
    cur = data["currency"]
    rows = [
        (
            i["quantity"],
            i["title"],
            i["sku"],
            _money(i["unit_price"], cur),
            _money(i["line_total"], cur),
        )
        for i in data["items"]
    ]
    figures = [
        ("Subtotal", _money(data["subtotal"], cur)),
        ("Shipping", _money(data["shipping_total"], cur)),
        ("Tax", _money(data["tax_total"], cur)),
        ("Total", _money(data["total"], cur)),
    ]
    number = data["number"]
    text = f"Hello,\n\nThank you for your order {number}.\n\n"
    text += "".join(f"{q} x {t} ({s}) at {u}: {lt}\n" for q, t, s, u, lt in rows)
    text += "\n" + "".join(f"{k}: {v}\n" for k, v in figures) + "\nEmporium\n"
    html = f"<html><body><p>Thank you for your order {number}.</p><table>"
    html += "".join(
        f"<tr><td>{q}</td><td>{escape(t)} ({escape(s)})</td><td>{u}</td><td>{lt}</td></tr>"
        for q, t, s, u, lt in rows
    )
    html += "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in figures)
    html += "</table></body></html>"
    message = EmailMessage(policy=SMTP)
    message["From"] = "Emporium <shop@bench.example.com>"
    message["To"] = to
    message["Subject"] = f"Order {number} confirmed"
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def _smtp_send(message: EmailMessage) -> None:
    host = os.environ.get("BASELINE_SMTP_HOST", "127.0.0.1")
    with smtplib.SMTP(host, int(os.environ["BASELINE_SMTP_PORT"]), timeout=10) as smtp:
        smtp.ehlo()
        smtp.send_message(message)


def _signed(msg_id: str, body: str, now: datetime) -> dict[str, str]:
    """Standard Webhooks headers: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    secret = os.environ["BASELINE_WEBHOOK_SECRET"].removeprefix("whsec_")
    stamp = str(int(now.timestamp()))
    mac = hmac.new(base64.b64decode(secret), f"{msg_id}.{stamp}.{body}".encode(), "sha256")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode(),
        "content-type": "application/json",
        "user-agent": "Emporium-Webhooks/1",
    }


class BaselineApp:
    """The whole ASGI application."""

    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None
        self.customer_id = uuid.UUID(int=0)
        self.email = ""
        self.notify = os.environ.get("BASELINE_NOTIFY") == "1"
        self.jobs = os.environ.get("BASELINE_JOBS") == "1"
        self.tasks: set[asyncio.Task[None]] = set()
        self.http: Any = None
        self.payment_minutes = int(os.environ.get("BASELINE_ORDER_PAYMENT_MINUTES", "60"))

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                size = int(os.environ.get("BASELINE_POOL_SIZE", "20"))
                self.customer_id = uuid.UUID(os.environ["BASELINE_CUSTOMER_ID"])
                self.email = os.environ["BASELINE_CUSTOMER_EMAIL"]
                self.pool = await asyncpg.create_pool(
                    os.environ["BASELINE_DSN"], min_size=min(2, size), max_size=size
                )
                if self.jobs:
                    import httpx

                    self.http = httpx.AsyncClient(trust_env=False, timeout=10)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.tasks:
                    await asyncio.gather(*self.tasks, return_exceptions=True)
                if self.http is not None:
                    await self.http.aclose()
                if self.pool is not None:
                    await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _take(
        self,
        conn: asyncpg.Connection,
        quantities: dict[uuid.UUID, int],
        order_id: uuid.UUID,
        now: datetime,
    ) -> list[tuple[Any, ...]]:
        """The conditional updates in variant id order; 409 naming every short line."""
        movements, short = [], []
        for variant_id in sorted(quantities):
            units = quantities[variant_id]
            taken = await conn.fetchrow(TAKE, variant_id, units, now)
            if taken is None:
                short.append(variant_id)
                continue
            movements.append(
                (uuid.uuid4(), variant_id, -units, taken["stock"], order_id, self.customer_id, now)
            )
        if short:
            left = {r["id"]: r for r in await conn.fetch(AVAILABLE, short)}
            lines = [
                {
                    "variant_id": str(v),
                    "sku": left[v]["sku"] if v in left else "",
                    "requested": quantities[v],
                    "available": left[v]["stock"] if v in left else 0,
                }
                for v in short
            ]
            raise Problem(
                409, "insufficient_stock", f"{len(lines)} line(s) are short of stock.", lines=lines
            )  # leaving the transaction block rolls back
        return movements

    async def _place_order(self, data: OrderIn) -> bytes:
        quantities: dict[uuid.UUID, int] = {}
        for line in data.items:
            quantities[line.variant_id] = quantities.get(line.variant_id, 0) + line.quantity
        if not quantities or len(quantities) > MAX_LINES:
            raise Problem(422, "validation_error", f"1 to {MAX_LINES} lines")
        if any(q < 1 or q > MAX_QUANTITY for q in quantities.values()):
            raise Problem(422, "validation_error", f"1 to {MAX_QUANTITY} units per variant")
        order_id, now = uuid.uuid4(), datetime.now(UTC)
        expires_at = now + timedelta(minutes=self.payment_minutes)
        customer_id = self.customer_id
        country = data.shipping_address.country
        assert self.pool is not None
        async with self.pool.acquire() as conn, conn.transaction():
            rows = {r["id"]: r for r in await conn.fetch(PRICING, list(quantities))}
            missing = [v for v in quantities if v not in rows or not rows[v]["published"]]
            if missing:
                raise Problem(422, "variant_unavailable", f"{len(missing)} line(s) not for sale")
            priced = [rows[v] for v in quantities]
            currency = priced[0]["currency"]
            if any(r["currency"] != currency for r in priced):
                raise Problem(422, "validation_error", "one currency per order")
            movements = await self._take(conn, quantities, order_id, now)
            await conn.fetchval(ACCOUNT_EMAIL, customer_id)  # Emporium reads it to seal it
            if await conn.fetch(PROMOTIONS, currency, now):  # the bench seeds none
                raise Problem(500, "unsupported", "the baseline prices no promotion")
            rates = {
                r["tax_class"]: r["rate_bp"]
                for r in await conn.fetch(RATES, country)
                if not r["region"]
            }
            weight = sum((r["weight_grams"] or 0) * quantities[r["id"]] for r in priced)
            method = _method(
                await conn.fetchrow(METHOD, data.shipping_method_id), currency, country, weight
            )
            items = []
            for r in priced:
                units, rate = quantities[r["id"]], rates.get(r["tax_class"], 0)
                subtotal = r["price"] * units
                tax = tax_of(subtotal, rate)
                items.append(
                    {
                        "id": uuid.uuid4(),
                        "variant_id": r["id"],
                        "sku": r["sku"],
                        "title": _title(r["product_title"], r["title"]),
                        "quantity": units,
                        "unit_price": r["price"],
                        "line_total": subtotal,
                        "subtotal": subtotal,
                        "discount_total": 0,
                        "tax_rate": rate,
                        "tax_total": tax,
                        "total": subtotal + tax,
                        "quantity_fulfilled": 0,
                        "quantity_returned": 0,
                    }
                )
            subtotal = sum(i["subtotal"] for i in items)
            free = method["free_over"] is not None and subtotal >= method["free_over"]
            shipping = 0 if free else method["price"]
            shipping_rate = rates.get(method["tax_class"], 0)
            shipping_tax = tax_of(shipping, shipping_rate)
            tax_total = sum(i["tax_total"] for i in items) + shipping_tax
            total = subtotal + shipping + tax_total
            await conn.executemany(INSERT_MOVEMENT, movements)
            number = _order_number()
            await conn.execute(
                INSERT_ORDER,
                *(order_id, number, customer_id, subtotal, shipping, shipping_rate),
                *(shipping_tax, tax_total, total, currency, method["id"], method["name"]),
                *(_opaque(_encode(data.shipping_address)), _opaque(self.email.encode())),
                *(secrets.token_hex(32), now),  # the e-mail's blind index: 64 hex digits
                expires_at,
            )
            await conn.executemany(
                INSERT_LINE,
                [
                    (
                        i["id"],
                        order_id,
                        n,
                        r["product_id"],
                        i["variant_id"],
                        i["sku"],
                        i["title"],
                        i["quantity"],
                        i["unit_price"],
                        i["subtotal"],
                        i["tax_rate"],
                        i["tax_total"],
                        i["total"],
                    )
                    for n, (r, i) in enumerate(zip(priced, items, strict=True))
                ],
            )
            await conn.execute(INSERT_STATUS, uuid.uuid4(), order_id, customer_id, now)
            event = {
                "order_id": str(order_id),
                "number": number,
                "customer_id": str(customer_id),
                "status": "pending",
                "subtotal": subtotal,
                "discount_total": 0,
                "shipping_total": shipping,
                "tax_total": tax_total,
                "total": total,
                "currency": currency,
                "items": [{k: i[k] for k in EVENT_LINE_KEYS} for i in items],
            }
            event_id = uuid.uuid4()
            dispatched = now if self.jobs else None  # BASELINE_JOBS: handled by this process
            await conn.execute(INSERT_EVENT, event_id, _encode(event).decode(), now, dispatched)
            if self.notify:  # experiment: Emporium's change-feed notice, in the transaction
                keys = sorted({str(r["product_id"]) for r in priced})
                await conn.execute(NOTIFY, _encode(["product", keys]).decode())
        if self.jobs:
            payload = {"event_id": str(event_id), "occurred_at": now.isoformat(), "data": event}
            task = asyncio.create_task(self._order_jobs(payload))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return _encode(
            {
                "id": order_id,
                "number": number,
                "status": "pending",
                "payment_status": "unpaid",
                "fulfillment_status": "unfulfilled",
                "customer_id": customer_id,
                "email": self.email,
                "items": items,
                "subtotal": subtotal,
                "discount_total": 0,
                "shipping": {
                    "method_id": method["id"],
                    "name": method["name"],
                    "price": shipping,
                    "tax_total": shipping_tax,
                },
                "shipping_total": shipping,
                "tax_total": tax_total,
                "total": total,
                "paid_total": 0,
                "refunded_total": 0,
                "currency": currency,
                "prices_include_tax": False,
                "promotions": [],
                "shipping_address": data.shipping_address,
                "billing_address": None,
                "status_history": [
                    {"from_status": None, "to_status": "pending", "by": "customer", "at": now}
                ],
                "expires_at": expires_at,
                "created_at": now,
                "updated_at": now,
            }
        )

    async def _order_jobs(self, event: dict[str, Any]) -> None:
        """BASELINE_JOBS: the order confirmation e-mail, then the webhook fan-out."""
        try:
            await self._mail(event)
            await self._webhooks(event)
        except Exception as exc:  # reported, never raised into the loop
            print(f"baseline job work failed: {type(exc).__name__}: {exc}", flush=True)

    async def _mail(self, event: dict[str, Any]) -> None:
        key = f"{event['event_id']}:order_confirmation"
        message_id = f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@bench.example.com>"
        assert self.pool is not None
        now = datetime.now(UTC)
        record = await self.pool.fetchval(INSERT_MAIL, uuid.uuid4(), key, message_id, now)
        if record is None:
            return  # sent already
        message = _confirmation(event["data"], self.email, message_id)
        await asyncio.to_thread(_smtp_send, message)
        await self.pool.execute(MAIL_SENT, record, datetime.now(UTC))

    async def _webhooks(self, event: dict[str, Any]) -> None:
        assert self.pool is not None
        endpoints = [
            r for r in await self.pool.fetch(ENDPOINTS) if "order.created" in _json(r["events"])
        ]
        body = _encode(
            {"type": "order.created", "timestamp": event["occurred_at"], "data": event["data"]}
        ).decode()
        for endpoint in endpoints:
            delivery_id, now = uuid.uuid4(), datetime.now(UTC)
            msg_id = f"msg_{delivery_id.hex}"
            await self.pool.execute(
                INSERT_DELIVERY,
                delivery_id,
                endpoint["id"],
                uuid.UUID(event["event_id"]),
                msg_id,
                body,
                now,
            )
            started = time.monotonic()
            answer = await self.http.post(
                endpoint["url"], content=body, headers=_signed(msg_id, body, now)
            )
            ms = int((time.monotonic() - started) * 1000)
            ok = 200 <= answer.status_code < 300
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    DELIVERED,
                    delivery_id,
                    answer.status_code,
                    ms,
                    "succeeded" if ok else "failed",
                    now if ok else None,
                )
                await conn.execute(
                    INSERT_ATTEMPT, uuid.uuid4(), delivery_id, now, answer.status_code, ms
                )

    async def _open_payment(
        self, conn: asyncpg.Connection, order_id: uuid.UUID, data: PaymentIn, now: datetime
    ) -> tuple[uuid.UUID, int, str]:
        """Transaction A (Emporium's ``open_payment``): lock the order, check it is pending
        and the amount within its unpaid balance, write the ``pending`` payment and its
        ``created`` change. Returns (payment id, amount, currency)."""
        payment_id = uuid.uuid4()
        async with conn.transaction():
            order = await conn.fetchrow(ORDER_TO_PAY, order_id)
            if order is None or order["customer_id"] != self.customer_id:
                raise Problem(404, "order_not_found", "No such order.")
            if order["status"] != "pending":
                raise Problem(
                    409, "order_not_payable", f"This order is {order['status']}; it cannot be paid."
                )
            balance = order["total"] - order["paid_total"] + order["refunded_total"]
            balance -= int(await conn.fetchval(OPEN_AMOUNT, order_id))  # sum(): numeric
            amount = balance if data.amount is None else data.amount
            if amount <= 0 or amount > balance:
                raise Problem(
                    409, "amount_exceeds_balance", f"The unpaid balance is {max(balance, 0)}."
                )
            currency = order["currency"]
            await conn.execute(
                INSERT_PAYMENT,
                *(payment_id, order_id, data.provider, amount, currency),
                *(data.payment_method, self.customer_id, now),
            )
            await conn.execute(
                INSERT_PAYMENT_CHANGE,
                *(uuid.uuid4(), order_id, payment_id, "created", 0, self.customer_id, now),
            )
        return payment_id, amount, currency

    async def _provider(
        self,
        conn: asyncpg.Connection,
        ids: tuple[uuid.UUID, uuid.UUID],
        amount: int,
        currency: str,
        data: PaymentIn,
    ) -> str:
        """The test provider's own transaction (``TestProvider.create``): its captured
        intent, and the job that will deliver its ``payment_intent.succeeded`` event.
        Returns the intent's reference."""
        payment_id, order_id = ids
        reference, now = f"tpi_{secrets.token_hex(12)}", datetime.now(UTC)
        event = {
            "id": f"evt_{secrets.token_hex(12)}",
            "type": "payment_intent.succeeded",
            "data": {
                "object": {
                    "object": "payment_intent",
                    "id": reference,
                    "status": "captured",
                    "amount": amount,
                    "captured_amount": amount,
                    "currency": currency,
                    "failure_code": None,
                    "metadata": {
                        "emporium_payment_id": str(payment_id),
                        "emporium_order_id": str(order_id),
                    },
                }
            },
        }
        async with conn.transaction():
            await conn.execute(
                INSERT_INTENT,
                *(reference, f"emporium-payment-{payment_id}-create", payment_id, order_id),
                *(amount, currency, data.payment_method, now),
            )
            payload = _encode({"body": json.dumps(event)}).decode()
            await conn.execute(INSERT_JOB, uuid.uuid4(), payload, JOB_MAX_ATTEMPTS, now)
        return reference

    async def _capture(
        self, conn: asyncpg.Connection, payment_id: uuid.UUID, reference: str
    ) -> None:
        """Transaction B (Emporium's ``apply_intent``): the payment captured, its
        ``captured`` change, the money added to the order's ``paid_total``, and once the
        order is covered: ``paid`` (conditional update), its status row, ``order.paid``;
        ``payment.captured`` in any case."""
        now = datetime.now(UTC)
        async with conn.transaction():
            paid = await conn.fetchrow(CAPTURE, payment_id, reference, now)
            if paid is None:
                raise Problem(409, "payment_state_conflict", "The payment moved meanwhile.")
            order_id, amount = paid["order_id"], paid["amount"]
            await conn.execute(
                INSERT_PAYMENT_CHANGE,
                *(uuid.uuid4(), order_id, payment_id, "captured", amount, self.customer_id, now),
            )
            order = await conn.fetchrow(ADD_PAID, order_id, amount, now)
            captured = {
                "payment_id": str(payment_id),
                "order_id": str(order_id),
                "provider": "test",
                "currency": paid["currency"],
                "status": "captured",
                "amount": amount,
                "captured_amount": amount,
            }
            events = [(uuid.uuid4(), "payment.captured", _encode(captured).decode(), now)]
            net = order["paid_total"] - order["refunded_total"]
            covered = order["status"] == "pending" and net >= order["total"]
            if covered and await conn.execute(MARK_PAID, order_id) == "UPDATE 1":
                await conn.execute(
                    INSERT_PAID_STATUS, uuid.uuid4(), order_id, self.customer_id, now
                )
                lines = [dict(r) for r in await conn.fetch(EVENT_LINES, order_id)]
                event = {k: order[k] for k in ORDER_EVENT_KEYS}
                event.update(order_id=str(order_id), status="paid", items=lines)
                event["customer_id"] = str(order["customer_id"])
                events.append((uuid.uuid4(), "order.paid", _encode(event).decode(), now))
            else:
                status = "paid" if order["paid_total"] >= order["total"] else "partially_paid"
                await conn.execute(SET_PAYMENT_STATUS, order_id, status)
            await conn.executemany(INSERT_EVENTS, events)

    async def _pay(self, order_id: uuid.UUID, data: PaymentIn) -> bytes:
        """``POST /orders/{id}/payments`` with the ``test`` provider and ``pm_card_visa``
        (captured at once): transaction A, the provider's transaction, transaction B, on
        one pooled connection. ``201`` with the payment in Emporium's shape."""
        if data.provider != "test":
            raise Problem(404, "provider_not_found", f"No payment provider {data.provider!r}.")
        if data.payment_method != "pm_card_visa":
            raise Problem(422, "validation_error", "the baseline pays with pm_card_visa only")
        created = datetime.now(UTC)
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            payment_id, amount, currency = await self._open_payment(conn, order_id, data, created)
            reference = await self._provider(conn, (payment_id, order_id), amount, currency, data)
            await self._capture(conn, payment_id, reference)
        return _encode(
            {
                "id": payment_id,
                "order_id": order_id,
                "provider": data.provider,
                "status": "captured",
                "amount": amount,
                "captured_amount": amount,
                "refunded_amount": 0,
                "currency": currency,
                "created_at": created,
                "updated_at": datetime.now(UTC),
            }
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        status, body = 404, b'{"status":404,"title":"Not Found"}'
        path: str = scope["path"]
        order_id = _payments_path(path) if scope["method"] == "POST" else None
        if (path == "/orders" and scope["method"] == "POST") or order_id is not None:
            raw = await _read_body(receive)
            try:
                if order_id is None:
                    status, body = 201, await self._place_order(_decode_order(raw))
                else:
                    status, body = 201, await self._pay(order_id, _decode_payment(raw))
            except msgspec.ValidationError as exc:
                problem = Problem(422, "validation_error", str(exc))
                status, body = problem.status, problem.body
            except msgspec.DecodeError as exc:
                problem = Problem(400, "bad_request", str(exc))
                status, body = problem.status, problem.body
            except Problem as problem:
                status, body = problem.status, problem.body
        elif path == "/readyz":
            status, body = 200, b'{"status":"ready"}'
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _payments_path(path: str) -> uuid.UUID | None:
    """The order id of ``/orders/{id}/payments``, or None."""
    parts = path.split("/")
    if len(parts) != 4 or parts[1] != "orders" or parts[3] != "payments":
        return None
    try:
        return uuid.UUID(parts[2])
    except ValueError:
        return None


async def _read_body(receive: Any) -> bytes:
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


app = BaselineApp()


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="raw ASGI + asyncpg checkout baseline server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    for name in ("BASELINE_DSN", "BASELINE_CUSTOMER_ID", "BASELINE_CUSTOMER_EMAIL"):
        if name not in os.environ:
            raise SystemExit(f"set {name}")
    uvicorn.run(
        "checkout_baseline:app",
        app_dir=str(Path(__file__).resolve().parent),
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        server_header=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
