"""Checkout benchmark: checkouts per second, Emporium against a raw ASGI + asyncpg baseline.

One command does everything::

    .venv/bin/python bench/checkout.py               # seed, serve, measure, verify, clean up
    .venv/bin/python bench/checkout.py --keep-db     # ... and keep the database
    .venv/bin/python bench/checkout.py --profile     # + py-spy on one Emporium worker
    .venv/bin/python bench/checkout.py --only direct,baseline --duration 8 --warmup 2
    .venv/bin/python bench/checkout.py --only direct,baseline,pay,pay_baseline  # + paying

1. a fresh ``emporium_bench_checkout`` database (``emporium db upgrade``) priced in EUR:
   one category, ``--products`` (300) generated products with one variant each and
   ``--stock`` (1,000,000) units, plus ``--scarce`` (4) products whose variant has
   ``--scarce-stock`` (10) units; every fourth product in tax class ``reduced``, the others
   ``standard``; weights 200-1,550 g; the initial stock written to the ledger as
   ``received`` movements; a shipping zone (DE, AT) with one flat-rate method (4.90, free
   from 2,000.00, up to 50 kg, tax class ``standard``) and the German rates (standard 19 %,
   reduced 7 %), so every order computes tax per line and on shipping;
2. ``emporium serve --workers 2`` with every rate limit the settings know lifted
   (``RATE_LIMITS_LIFTED``: the bench is one client address placing thousands of orders)
   and the ``test`` payment provider on with automatic capture (``PAYMENTS_ON``),
   customers registered and signed in through the API (one per connection for the cart
   scenarios; new access tokens before each scenario, since they last 10 minutes), and the
   baseline (``bench/checkout_baseline.py``: same uvicorn, uvloop and httptools, 2 workers,
   the same order transaction on the raw driver);
3. per scenario, on freshly reset stock: ``wrk`` for a warm-up, then stock reset again,
   then the measured run. ``direct`` and ``baseline``: ``POST /orders`` with 3 lines, the
   address and the method in one request (``bench/checkout_orders.lua``); ``customer``,
   ``customer_v1`` and ``guest``: whole checkouts through a cart, one chain of requests per
   checkout (``bench/checkout_flows.lua``, one wrk thread per connection); ``pay`` and
   ``pay_baseline``: ``POST /orders`` as ``direct`` does, then ``POST
   /orders/{id}/payments`` with the ``test`` provider and ``pm_card_visa`` (captured at
   once), on Emporium and on the baseline (same flows script);
4. after every run, the database is checked: for every variant, initial stock - current
   stock == units in order lines == -(sum of its ``sale`` movements); no stock below 0;
   no two sales of a variant leaving the same stock; every order has its lines, its status
   row, a shipping method, tax, and figures that add up (subtotal = sum of line subtotals,
   tax = lines' tax + shipping tax, total = subtotal - discounts + shipping + tax); orders
   in the database == orders wrk saw answered 201 (up to the requests in flight when wrk
   stopped); every paid order has paid_total = total, exactly one payment, captured for
   its total, with its ``created`` and ``captured`` changes, its ``pending -> paid`` status
   row, one ``order.paid`` event (and its payment one ``payment.captured``); an order not
   paid has no money and no captured payment; no payment without its order; paid orders ==
   payments wrk saw answered 201 (+ those in flight), and in the pay scenarios at most one
   unpaid order per connection (the checkouts unfinished at the stop);
5. a table (checkouts/s, payments/s, requests/s, ms per request, p50, p99,
   201/409/other, oversold units, CPU per request and per checkout), the ratios Emporium /
   baseline (``pay`` / ``pay_baseline``, the others / ``baseline``) and the bars of
   the issue (``direct`` >= 20% of the baseline's orders/s, zero oversold units),
   ``bench/results/checkout.json``.

Exit status 1 when a unit was oversold, the ledger or the figures disagree, a response had
a status its step does not expect, a socket error happened, or the database and wrk
disagree; the throughput bar is reported, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from catalog_reads import (
    API,
    BENCH,
    BUSY_WARNING_PCT,
    DEFAULT_PG,
    REPO,
    RESULTS,
    BenchError,
    CpuAccounting,
    Server,
    _raise_interrupt,
    db_sessions,
    free_port,
    git_commit,
    machine_busy_pct,
    wrk,
    wrk_version,
)

from emporium.core.config import Settings

DEFAULT_DB = "emporium_bench_checkout"
LUA = BENCH / "checkout_orders.lua"
FLOWS_LUA = BENCH / "checkout_flows.lua"
BAR_RATIO = 0.20  # Emporium's orders/s >= 20% of the baseline's
CURRENCY = "EUR"
ADDRESS = {
    "name": "Bench Buyer",
    "line1": "1 Load Street",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}  # the address both wrk scripts send
TAX_RATES = (("DE", "standard", 1900), ("DE", "reduced", 700))  # (country, class, rate_bp)
SHIPPING = {
    "name": "DHL Paket",
    "carrier": "DHL",
    "price": 490,
    "free_over": 200_000,
    "max_weight_grams": 50_000,
    "tax_class": "standard",
}  # the one method: 4.90, free from 2,000.00 (some orders), up to 50 kg
RATE_LIMITS_LIFTED = {
    f"EMPORIUM_{name.upper()}": ""
    for name in Settings.model_fields
    if name.startswith("rate_limit_")
}  # every policy the settings know, so a new one (payments, ...) cannot throttle the load:
# GENERAL (wrk is one client address), CHECKOUT (10/minute per customer otherwise), CART (60
# cart writes a minute per customer or guest address), REGISTER (one customer per
# connection), LOGIN and LOGIN_ACCOUNT (signed in again before each scenario)
PAYMENTS_ON = {
    "EMPORIUM_PAYMENT_PROVIDERS": "manual,test",  # the pay scenario pays with the test provider
    "EMPORIUM_PAYMENTS_CAPTURE": "automatic",  # pm_card_visa is then captured at once
}  # set whatever the environment or a .env says; --emporium-env may still change them
PAYMENT = {"provider": "test", "payment_method": "pm_card_visa"}  # the pay scenarios' body
BACKGROUND_WORK_OFF = {
    "EMPORIUM_JOBS_EMBEDDED": "false",  # no order e-mails and webhooks in the server's CPU
}  # --emporium-env EMPORIUM_JOBS_EMBEDDED=true puts them back (mail goes to a temp dir)
SCENARIOS = ("direct", "baseline", "customer", "customer_v1", "guest", "pay", "pay_baseline")
ON_BASELINE = ("baseline", "pay_baseline")  # scenarios served by the baseline
BASELINE_OF = {"pay": "pay_baseline"}  # what a scenario is compared with (else: baseline)
PAY_SCENARIOS = ("pay", "pay_baseline")
EXPECTED = {
    "direct": {201, 409},
    "baseline": {201, 409},
    "create": {201},
    "item": {200, 201},  # /carts/{id}/items answers 200, v1's /cart/items 201
    "patch": {200},
    "order": {201, 409},
    "clear": {204},
    "pay": {201},  # POST /orders/{id}/payments: the payment, captured
}  # statuses each step may answer; anything else fails the run


class _OneCategory(dict[tuple[str, ...], uuid.UUID]):
    """Every category path of the generated catalog maps to the one bench category."""

    def __init__(self, category_id: uuid.UUID) -> None:
        super().__init__()
        self.category_id = category_id

    def __missing__(self, key: tuple[str, ...]) -> uuid.UUID:
        return self.category_id


# --------------------------------------------------------------------------- database


async def fill_catalog(
    pg: str, database: str, *, products: int, stock: int, scarce: int, scarce_stock: int
) -> dict[str, Any]:
    """One category, ``products + scarce`` published products with one variant each (every
    fourth product in tax class ``reduced``; weights 200-1,550 g), priced in ``CURRENCY``;
    the initial stock also as ``received`` ledger rows; the shipping zone, its method and
    the tax rates. Rows from ``seed.generate_rows``. Returns facts and ``method_id``."""
    import seed

    conn = await asyncpg.connect(seed.dsn(pg, database))
    try:
        now = datetime.now(UTC)
        category_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO category (id, name, slug, parent_id, description, created_at, "
            "updated_at) VALUES ($1, 'Checkout bench', 'checkout-bench', NULL, '', $2, $2)",
            category_id,
            now,
        )
        (p_cols, p_rows), (t_cols, t_rows), (v_cols, v_rows) = seed.generate_rows(
            products + scarce, _OneCategory(category_id), set(), prefix="checkout"
        )
        if "tax_class" not in p_cols:
            p_cols = [*p_cols, "tax_class"]
            p_rows = [(*r, "standard") for r in p_rows]
        p_rows = [
            _replace(
                p_cols,
                r,
                published=True,
                currency=CURRENCY,
                tax_class="reduced" if n % 4 == 3 else "standard",
            )
            for n, r in enumerate(p_rows)
        ]
        position, stock_col = v_cols.index("position"), v_cols.index("stock")
        first = [r for r in v_rows if r[position] == 0]  # one variant per product
        variants = [
            _replace(
                v_cols,
                r,
                stock=stock if n < products else scarce_stock,
                currency=CURRENCY,
                weight_grams=200 + 150 * (n % 10),
            )
            for n, r in enumerate(first)
        ]
        id_col = v_cols.index("id")
        received = [
            (uuid.uuid4(), r[id_col], "received", r[stock_col], r[stock_col], "bench seed", now)
            for r in variants
        ]
        zone_id, method_id = uuid.uuid4(), uuid.uuid4()
        async with conn.transaction():
            await conn.copy_records_to_table("product", records=p_rows, columns=p_cols)
            await conn.copy_records_to_table("product_tag", records=t_rows, columns=t_cols)
            await conn.copy_records_to_table("variant", records=variants, columns=v_cols)
            await conn.copy_records_to_table(
                "stock_movement",
                records=received,
                columns=[
                    "id",
                    "variant_id",
                    "kind",
                    "delta",
                    "stock_after",
                    "reason",
                    "created_at",
                ],
            )
            await conn.execute(
                "INSERT INTO shipping_zone (id, name, countries, regions, created_at, "
                "updated_at) VALUES ($1, 'Germany and Austria', $2::json, '[]'::json, $3, $3)",
                zone_id,
                json.dumps(["DE", "AT"]),
                now,
            )
            await conn.execute(
                "INSERT INTO shipping_method (id, zone_id, name, carrier, price, currency, "
                "free_over, min_weight_grams, max_weight_grams, tax_class, active, "
                "delivery_days_min, delivery_days_max, created_at, updated_at) VALUES "
                "($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9, true, 1, 3, $10, $10)",
                *(method_id, zone_id, SHIPPING["name"], SHIPPING["carrier"], SHIPPING["price"]),
                *(CURRENCY, SHIPPING["free_over"], SHIPPING["max_weight_grams"]),
                *(SHIPPING["tax_class"], now),
            )
            await conn.executemany(
                "INSERT INTO tax_rate (id, country, region, tax_class, rate_bp, name, "
                "created_at, updated_at) VALUES ($1, $2, '', $3, $4, $5, $6, $6)",
                [
                    (uuid.uuid4(), country, tax_class, rate, f"{country} {tax_class}", now)
                    for country, tax_class, rate in TAX_RATES
                ],
            )
        await conn.execute("VACUUM ANALYZE")
        return {
            "products": len(p_rows),
            "variants": len(variants),
            "scarce": scarce,
            "reduced_rate_products": sum(1 for n in range(len(p_rows)) if n % 4 == 3),
            "currency": CURRENCY,
            "tax_rates": [list(r) for r in TAX_RATES],
            "shipping_method": {"id": str(method_id), **SHIPPING},
            "method_id": str(method_id),
        }
    finally:
        await conn.close()


def _replace(columns: list[str], row: tuple[Any, ...], **values: Any) -> tuple[Any, ...]:
    """``row`` (in ``columns`` order) with the named columns set."""
    changed = list(row)
    for name, value in values.items():
        changed[columns.index(name)] = value
    return tuple(changed)


def prepare_database(args: argparse.Namespace) -> dict[str, Any]:
    import seed

    started = time.perf_counter()
    print(f"seeding database {args.db!r}", flush=True)
    asyncio.run(seed.recreate_database(args.pg, args.db))
    seed.ensure_key_file(args.pg, args.db, fresh=True)
    subprocess.run(
        [*seed.emporium_command(), "db", "upgrade"],
        env=seed.emporium_env(args.pg, args.db),
        check=True,
        cwd=REPO,
    )
    info = asyncio.run(
        fill_catalog(
            args.pg,
            args.db,
            products=args.products,
            stock=args.stock,
            scarce=args.scarce,
            scarce_stock=args.scarce_stock,
        )
    )
    info["seed_seconds"] = round(time.perf_counter() - started, 1)
    print(
        f"  {info['variants']} variants ({args.scarce} scarce, {args.scarce_stock} units "
        f"each) in {info['seed_seconds']} s",
        flush=True,
    )
    return info


async def _connect(pg: str, database: str) -> asyncpg.Connection:
    return await asyncpg.connect(f"{pg.rstrip('/')}/{database}")


async def variant_ids(pg: str, database: str, scarce_below: int) -> tuple[list[str], list[str]]:
    """(plentiful, scarce) variant ids, by their initial stock."""
    conn = await _connect(pg, database)
    try:
        rows = await conn.fetch(
            "SELECT variant_id, delta FROM stock_movement WHERE kind = 'received' "
            "ORDER BY variant_id"
        )
    finally:
        await conn.close()
    plenty = [str(r["variant_id"]) for r in rows if r["delta"] >= scarce_below]
    scarce = [str(r["variant_id"]) for r in rows if r["delta"] < scarce_below]
    return plenty, scarce


async def reset_stock(pg: str, database: str) -> None:
    """Back to the seeded state: no orders, carts, events or sales, every variant at its
    received stock (``CASCADE``: the tables that hang off orders and carts, such as
    promotions held, parcels and returns, go with them)."""
    conn = await _connect(pg, database)
    try:
        async with conn.transaction():
            await conn.execute(
                "TRUNCATE customer_order, order_line, order_status_change, idempotency_key, "
                "cart, cart_item, outbox_event, job, payment, payment_change, refund, "
                "payment_event, test_provider_intent, test_provider_refund CASCADE"
            )
            await conn.execute("DELETE FROM stock_movement WHERE kind <> 'received'")
            await conn.execute(
                "UPDATE variant AS v SET stock = m.delta FROM stock_movement AS m "
                "WHERE m.variant_id = v.id AND m.kind = 'received' AND v.stock <> m.delta"
            )
        await conn.execute("VACUUM ANALYZE variant, stock_movement")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


VERIFY = """
WITH received AS (
    SELECT variant_id, sum(delta) AS units FROM stock_movement WHERE kind = 'received'
    GROUP BY variant_id
), sales AS (
    SELECT variant_id, -sum(delta) AS units, count(*) AS rows,
           count(DISTINCT stock_after) AS levels, min(stock_after) AS lowest
    FROM stock_movement WHERE kind = 'sale' GROUP BY variant_id
), sold AS (
    SELECT variant_id, sum(quantity) AS units, count(*) AS rows FROM order_line
    GROUP BY variant_id
)
SELECT v.id, v.stock, coalesce(r.units, 0) AS initial, coalesce(s.units, 0) AS sale_units,
       coalesce(s.rows, 0) AS sale_rows, coalesce(s.levels, 0) AS levels, s.lowest,
       coalesce(o.units, 0) AS sold, coalesce(o.rows, 0) AS line_rows
FROM variant AS v
LEFT JOIN received AS r ON r.variant_id = v.id
LEFT JOIN sales AS s ON s.variant_id = v.id
LEFT JOIN sold AS o ON o.variant_id = v.id
"""


BAD_FIGURES = """
SELECT count(*) FROM customer_order AS o
JOIN (
    SELECT order_id, sum(subtotal) AS subtotal, sum(discount_total) AS discount_total,
           sum(tax_total) AS tax_total, sum(total) AS total
    FROM order_line GROUP BY order_id
) AS l ON l.order_id = o.id
WHERE o.subtotal <> l.subtotal OR o.discount_total <> l.discount_total
   OR o.tax_total <> l.tax_total + o.shipping_tax_total
   OR o.total <> o.subtotal - o.discount_total + o.shipping_total + o.tax_total
   OR o.total <> l.total + o.shipping_total + o.shipping_tax_total
   OR o.prices_include_tax
"""  # the bench's prices exclude tax: total = goods + shipping + every tax


PAYMENT_CHECKS = {
    "paid orders whose paid_total is not their total or payment_status not paid": """
        SELECT count(*) FROM customer_order
        WHERE status = 'paid' AND (paid_total <> total OR payment_status <> 'paid'
                                   OR refunded_total <> 0)""",
    "paid orders without exactly one captured payment of their total": """
        SELECT count(*) FROM customer_order AS o WHERE o.status = 'paid' AND 1 <> (
            SELECT count(*) FROM payment AS p WHERE p.order_id = o.id
            AND p.status = 'captured' AND p.amount = o.total AND p.captured_amount = o.total)""",
    "paid orders with another payment besides the captured one": """
        SELECT count(*) FROM customer_order AS o WHERE o.status = 'paid' AND 1 <> (
            SELECT count(*) FROM payment AS p WHERE p.order_id = o.id)""",
    "orders not paid but with money or a captured payment": """
        SELECT count(*) FROM customer_order AS o WHERE o.status <> 'paid'
        AND (o.paid_total <> 0 OR o.payment_status <> 'unpaid' OR EXISTS (
            SELECT 1 FROM payment AS p WHERE p.order_id = o.id AND p.status = 'captured'))""",
    "orders in neither pending nor paid": """
        SELECT count(*) FROM customer_order WHERE status NOT IN ('pending', 'paid')""",
    "payments of no order": """
        SELECT count(*) FROM payment AS p
        WHERE NOT EXISTS (SELECT 1 FROM customer_order AS o WHERE o.id = p.order_id)""",
    "orders without exactly one order.paid event per paid order": """
        SELECT count(*) FROM customer_order AS o WHERE (o.status = 'paid')::int <> (
            SELECT count(*) FROM outbox_event AS e
            WHERE e.type = 'order.paid' AND e.data ->> 'order_id' = o.id::text)""",
    "captured payments without exactly one payment.captured event of their amount": """
        SELECT count(*) FROM payment AS p WHERE p.status = 'captured' AND 1 <> (
            SELECT count(*) FROM outbox_event AS e
            WHERE e.type = 'payment.captured' AND e.data ->> 'payment_id' = p.id::text
            AND (e.data ->> 'amount')::bigint = p.amount)""",
    "captured payments without their created and captured changes": """
        SELECT count(*) FROM payment AS p WHERE p.status = 'captured' AND 2 <> (
            SELECT count(*) FROM payment_change AS c WHERE c.payment_id = p.id
            AND (c.kind = 'created' OR (c.kind = 'captured' AND c.amount = p.amount)))""",
    "paid orders without their pending -> paid status row": """
        SELECT count(*) FROM customer_order AS o WHERE o.status = 'paid' AND 1 <> (
            SELECT count(*) FROM order_status_change AS c WHERE c.order_id = o.id
            AND c.from_status = 'pending' AND c.to_status = 'paid')""",
}  # the payment facts after a run (PostgreSQL); every count must be 0


async def verify(pg: str, database: str, lines_per_order: int) -> dict[str, Any]:
    """Check the stock, the ledger, the orders and their payments; return counts and what
    is wrong."""
    conn = await _connect(pg, database)
    try:
        payment_problems = {
            what: n for what, sql in PAYMENT_CHECKS.items() if (n := await conn.fetchval(sql))
        }
        paid = await conn.fetchval("SELECT count(*) FROM customer_order WHERE status = 'paid'")
        payments = await conn.fetchval("SELECT count(*) FROM payment")
        captured = await conn.fetchval("SELECT count(*) FROM payment WHERE status = 'captured'")
        rows = await conn.fetch(VERIFY)
        orders = await conn.fetchval("SELECT count(*) FROM customer_order")
        lines = await conn.fetchval("SELECT count(*) FROM order_line")
        status_rows = await conn.fetchval("SELECT count(*) FROM order_status_change")
        bad_totals = await conn.fetchval(BAD_FIGURES)
        untaxed = await conn.fetchval(
            "SELECT count(*) FROM customer_order WHERE tax_total = 0 OR shipping_method_id IS NULL"
        )
        free_shipping = await conn.fetchval(
            "SELECT count(*) FROM customer_order WHERE shipping_total = 0"
        )
        bad_line_counts = await conn.fetchval(
            "SELECT count(*) FROM customer_order AS o WHERE "
            "(SELECT count(*) FROM order_line AS l WHERE l.order_id = o.id) <> $1",
            lines_per_order,
        )
        orphan_sales = await conn.fetchval(
            "SELECT count(*) FROM stock_movement AS m WHERE m.kind = 'sale' AND NOT EXISTS "
            "(SELECT 1 FROM customer_order AS o WHERE o.id = m.order_id)"
        )
    finally:
        await conn.close()
    oversold = sum(max(0, r["sold"] - r["initial"]) + max(0, -r["stock"]) for r in rows)
    problems: list[str] = []
    for r in rows:
        taken = r["initial"] - r["stock"]
        if not taken == r["sold"] == r["sale_units"]:
            problems.append(
                f"variant {r['id']}: initial - stock = {taken}, order lines {r['sold']}, "
                f"sale movements {r['sale_units']}"
            )
        if r["stock"] < 0:
            problems.append(f"variant {r['id']}: stock {r['stock']}")
        if r["levels"] != r["sale_rows"] or (r["sale_rows"] and r["lowest"] != r["stock"]):
            problems.append(
                f"variant {r['id']}: {r['sale_rows']} sales left {r['levels']} distinct stock "
                f"levels, lowest {r['lowest']}, stock now {r['stock']}"
            )
        if r["line_rows"] != r["sale_rows"]:
            problems.append(
                f"variant {r['id']}: {r['line_rows']} order lines, {r['sale_rows']} sales"
            )
    if status_rows != orders + paid:
        problems.append(f"{orders} orders ({paid} paid) but {status_rows} status rows")
    problems += [f"{n} {what}" for what, n in payment_problems.items()]
    if bad_totals:
        problems.append(f"{bad_totals} orders whose figures do not add up (see BAD_FIGURES)")
    if untaxed:
        problems.append(f"{untaxed} orders without tax or without a shipping method")
    if bad_line_counts:
        problems.append(f"{bad_line_counts} orders without {lines_per_order} lines")
    if orphan_sales:
        problems.append(f"{orphan_sales} sale movements of no order")
    return {
        "orders": orders,
        "order_lines": lines,
        "units_sold": sum(r["sold"] for r in rows),
        "oversold_units": oversold,
        "negative_stock_variants": sum(1 for r in rows if r["stock"] < 0),
        "sold_out_variants": sum(1 for r in rows if r["stock"] == 0),
        "free_shipping_orders": free_shipping,
        "paid_orders": paid,
        "unpaid_orders": orders - paid,
        "payments": payments,
        "payments_not_captured": payments - captured,
        "problems": problems,
    }


async def db_transactions(pg: str, database: str) -> tuple[int, int] | None:
    """(commits, rollbacks) so far on ``database``, from pg_stat_database."""
    try:
        conn = await _connect(pg, "postgres")
    except (OSError, asyncpg.PostgresError):
        return None
    try:
        row = await conn.fetchrow(
            "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = $1",
            database,
        )
        return None if row is None else (int(row[0]), int(row[1]))
    finally:
        await conn.close()


async def sealed_lengths(pg: str, database: str) -> list[int]:
    conn = await _connect(pg, database)
    try:
        rows = await conn.fetch("SELECT length(shipping_address_enc) FROM customer_order")
        return [r[0] for r in rows]
    finally:
        await conn.close()


# --------------------------------------------------------------------------- HTTP


def send(
    method: str,
    url: str,
    body: Any = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One JSON request; (status, decoded body or the raw start of it)."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 (our http URL)
        url, data=data, headers=sent, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        with contextlib.suppress(ValueError):
            return exc.code, json.loads(raw)
        return exc.code, raw[:500]


def post_json(url: str, body: Any, token: str | None = None) -> tuple[int, Any]:
    return send("POST", url, body, token=token)


class Customer:
    """A customer registered through the API; :meth:`token` signs in again each time."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.email = f"buyer-{secrets.token_hex(4)}@bench.example.com"
        self.password = "Bench-" + secrets.token_urlsafe(18)
        status, body = post_json(
            f"{base}{API}/auth/register", {"email": self.email, "password": self.password}
        )
        if status != 201:
            raise BenchError(f"register answered {status}: {body!r}")
        self.id = str(body["id"])

    def token(self) -> str:
        status, body = post_json(
            f"{self.base}{API}/auth/login", {"email": self.email, "password": self.password}
        )
        if status != 200:
            raise BenchError(f"login answered {status}: {body!r}")
        return str(body["access_token"])


def same_token(customer: Customer, connections: int, path: Path) -> Path:
    """A fresh access token of ``customer`` on ``connections`` lines of ``path`` (every wrk
    thread of the pay scenarios places and pays the one buyer's orders, as direct does)."""
    path.write_text((customer.token() + "\n") * connections)
    return path


def sign_in_all(customers: list[Customer], path: Path) -> Path:
    """Fresh access tokens of ``customers``, one a line in ``path`` (wrk thread n uses line
    n + 1); signed in 8 at a time."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        tokens = list(pool.map(Customer.token, customers))
    path.write_text("\n".join(tokens) + "\n")
    return path


def order_body(ids: list[str], method_id: str, quantity: int = 1) -> dict[str, Any]:
    return {
        "items": [{"variant_id": v, "quantity": quantity} for v in ids],
        "shipping_address": ADDRESS,
        "shipping_method_id": method_id,
    }


MONEY = (
    *("status", "payment_status", "fulfillment_status", "items", "subtotal", "discount_total"),
    *("shipping_total", "tax_total", "total", "paid_total", "refunded_total", "currency"),
    *("prices_include_tax", "shipping", "promotions"),
)  # what two answers to the same order must agree on (lines: but for their ids)


def _compare(ours: dict[str, Any], theirs: dict[str, Any], what: str, keys: bool) -> None:
    """Raise BenchError unless two order answers agree on ``MONEY`` (and, with ``keys``, on
    their key sets, their lines', their shipping's and their status history's)."""
    if keys:
        pairs = [(ours, theirs, "order")]
        pairs += [(ours["items"][0], theirs["items"][0], "line")]
        pairs += [(ours["shipping"] or {}, theirs["shipping"] or {}, "shipping")]
        pairs += [(ours["status_history"][0], theirs["status_history"][0], "status change")]
        for a, b, name in pairs:
            if set(a) != set(b):
                raise BenchError(f"{what}: {name} keys differ: {sorted(a)} vs {sorted(b)}")
    for key in MONEY:
        a, b = ours[key], theirs[key]
        if key == "items":  # every line has its own id
            a = [{k: v for k, v in line.items() if k != "id"} for line in a]
            b = [{k: v for k, v in line.items() if k != "id"} for line in b]
        if a != b:
            raise BenchError(f"{what} differ in {key}: {a!r} vs {b!r}")


def cart_checkout(
    base: str, ids: list[str], method_id: str, token: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One checkout through ``/carts`` as the flows script does it, as a guest (``token``
    None) or a customer; (cart answer after the PATCH, order answer)."""
    status, cart = send("POST", f"{base}{API}/carts", {}, token=token)
    if status != 201 or (token is None and not cart.get("token")):
        raise BenchError(f"POST /carts answered {status}: {cart!r}")
    held = {} if token else {"Cart-Token": cart["token"]}
    url = f"{base}{API}/carts/{cart['id']}"
    for variant_id in ids:
        status, body = send(
            "POST",
            f"{url}/items",
            {"variant_id": variant_id, "quantity": 1},
            token=token,
            headers=held,
        )
        if status != 200:
            raise BenchError(f"POST /carts/{{id}}/items answered {status}: {body!r}")
    change: dict[str, Any] = {"shipping_address": ADDRESS, "shipping_method_id": method_id}
    if token is None:
        change["email"] = "guest@bench.example.com"
    status, view = send("PATCH", url, change, token=token, headers=held)
    if status != 200:
        raise BenchError(f"PATCH /carts/{{id}} answered {status}: {view!r}")
    status, order = send(
        "POST", f"{base}{API}/orders", {"cart_id": cart["id"]}, token=token, headers=held
    )
    if status == 422 and "cart_id" in json.dumps(order):
        raise BenchError(
            f"POST /orders does not take {{cart_id}} yet ({order.get('detail')!r}): the "
            "guest and customer cart scenarios need it; --only direct,baseline,customer_v1 "
            "runs without them"
        )
    if status != 201:
        raise BenchError(f"POST /orders {{cart_id}} answered {status}: {order!r}")
    return view, order


def v1_checkout(base: str, ids: list[str], method_id: str, token: str) -> dict[str, Any]:
    """One checkout through v1's ``/cart``: lines, then ``POST /orders`` of the cart."""
    for variant_id in ids:
        status, body = send(
            "POST",
            f"{base}{API}/cart/items",
            {"variant_id": variant_id, "quantity": 1},
            token=token,
        )
        if status != 201:
            raise BenchError(f"POST /cart/items answered {status}: {body!r}")
    body = {"shipping_address": ADDRESS, "shipping_method_id": method_id}
    status, order = send("POST", f"{base}{API}/orders", body, token=token)
    if status != 201:
        raise BenchError(f"POST /orders (v1 cart) answered {status}: {order!r}")
    return dict(order)


def _payment_window(order: dict[str, Any]) -> float | None:
    """Seconds between an order answer's ``created_at`` and its ``expires_at`` (None: no
    payment deadline)."""
    if order.get("expires_at") is None:
        return None
    expires = datetime.fromisoformat(order["expires_at"].replace("Z", "+00:00"))
    created = datetime.fromisoformat(order["created_at"].replace("Z", "+00:00"))
    return round((expires - created).total_seconds())


PAYMENT_KEYS = ("provider", "status", "amount", "captured_amount", "refunded_amount", "currency")


def pay_checks(
    emporium: Server, baseline: Server, orders: tuple[dict[str, Any], dict[str, Any]], token: str
) -> dict[str, Any]:
    """Pay the sanity check's order on each server as the pay scenarios do: both answer
    ``201`` with the same keys, the payment ``captured`` for the order's total; paying it
    again answers ``409 order_not_payable`` on both. Returns Emporium's payment."""
    answers = []
    for server, order, prefix in ((emporium, orders[0], API), (baseline, orders[1], "")):
        url = f"{server.base}{prefix}/orders/{order['id']}/payments"
        status, payment = post_json(url, PAYMENT, token)
        if status != 201 or payment.get("status") != "captured":
            raise BenchError(
                f"{server.name}: paying an order answered {status}: {payment!r} (the pay "
                "scenarios need the test provider with automatic capture: "
                f"{', '.join(f'{k}={v}' for k, v in PAYMENTS_ON.items())})"
            )
        if payment["amount"] != order["total"] or payment["captured_amount"] != order["total"]:
            raise BenchError(f"{server.name}: paid {payment!r} for a total of {order['total']}")
        again, refused = post_json(url, PAYMENT, token)
        if again != 409 or refused.get("code") != "order_not_payable":
            raise BenchError(f"{server.name}: paying a paid order answered {again}: {refused!r}")
        answers.append(payment)
    ours, theirs = answers
    if set(ours) != set(theirs):
        raise BenchError(f"payment keys differ: {sorted(ours)} vs {sorted(theirs)}")
    for key in PAYMENT_KEYS:
        if ours[key] != theirs[key]:
            raise BenchError(f"the payments differ in {key}: {ours[key]!r} vs {theirs[key]!r}")
    return {k: ours[k] for k in PAYMENT_KEYS}


def sanity_checks(
    emporium: Server,
    baseline: Server,
    buyer: Customer,
    shoppers: list[Customer],
    plenty: list[str],
    scarce: list[str],
    method_id: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Both servers take the same order with the same lines and the same figures (tax and
    shipping computed), and refuse a short one with 409 ``insufficient_stock``; every cart
    scenario run places an order with those figures too; the ledger holds after it. Returns
    facts for the report."""
    token = buyer.token()
    ours_url, theirs_url = f"{emporium.base}{API}/orders", f"{baseline.base}/orders"
    ids = plenty[: args.lines]
    s1, ours = post_json(ours_url, order_body(ids, method_id), token)
    s2, theirs = post_json(theirs_url, order_body(ids, method_id), token)
    if s1 != 201 or s2 != 201:
        raise BenchError(f"order answered {s1} (emporium) / {s2} (baseline): {ours!r} {theirs!r}")
    _compare(ours, theirs, "Emporium's and the baseline's orders", keys=True)
    for key in ("customer_id", "email", "billing_address"):
        if ours[key] != theirs[key]:
            raise BenchError(f"the orders differ in {key}: {ours[key]!r} vs {theirs[key]!r}")
    if _payment_window(ours) != _payment_window(theirs):
        raise BenchError(
            f"the orders wait for payment {_payment_window(ours)} (emporium) vs "
            f"{_payment_window(theirs)} (baseline): pass the same EMPORIUM_ORDER_PAYMENT_MINUTES"
        )
    if not ours["tax_total"] or not ours["shipping"] or ours["shipping"]["method_id"] != method_id:
        raise BenchError(f"the order computed no tax or no shipping: {ours!r}")
    if {k: v for k, v in ours["shipping_address"].items() if v is not None} != ADDRESS:
        raise BenchError(f"unexpected shipping address {ours['shipping_address']!r}")
    short = order_body(
        [scarce[0], *plenty[: args.lines - 1]], method_id, quantity=args.scarce_stock + 1
    )
    for url in (ours_url, theirs_url):
        status, body = post_json(url, short, token)
        if status != 409 or body.get("code") != "insufficient_stock":
            raise BenchError(f"{url} answered {status} to a short order: {body!r}")
    placed, paid = 2, 0
    facts: dict[str, Any] = {"order": {k: ours[k] for k in MONEY if k != "items"}}
    if any(s in PAY_SCENARIOS for s in args.only):
        facts["payment"] = pay_checks(emporium, baseline, (ours, theirs), token)
        paid = 2
    if "guest" in args.only:
        view, order = cart_checkout(emporium.base, ids, method_id, None)
        _compare(order, ours, "the guest's and the customer's orders of the same lines", False)
        if not order.get("order_token") or order["customer_id"] is not None:
            raise BenchError(f"the guest's order has no order_token or a customer: {order!r}")
        if view["total"] != order["total"]:
            raise BenchError(f"the guest's cart showed {view['total']}, the order {order['total']}")
        facts["guest_order_keys"] = sorted(order)
        placed += 1
    if "customer" in args.only:
        shopper = shoppers[0].token()
        view, order = cart_checkout(emporium.base, ids, method_id, shopper)
        _compare(order, ours, "the customer's cart order and the direct order", False)
        if view["total"] != order["total"]:
            raise BenchError(f"the cart showed {view['total']}, the order {order['total']}")
        placed += 1
    if "customer_v1" in args.only:
        order = v1_checkout(emporium.base, ids, method_id, shoppers[-1].token())
        _compare(order, ours, "the v1 cart order and the direct order", False)
        placed += 1
    checked = asyncio.run(verify(args.pg, args.db, args.lines))
    if (
        checked["orders"] != placed
        or checked["paid_orders"] != paid
        or checked["payments"] != paid
        or checked["problems"]
        or checked["oversold_units"]
    ):
        raise BenchError(f"after {placed} orders ({paid} paid) and two refused ones: {checked!r}")
    facts["sealed_address_lengths"] = asyncio.run(sealed_lengths(args.pg, args.db))
    return facts


# --------------------------------------------------------------------------- runs


def wait_quiet(args: argparse.Namespace) -> float:
    """Machine busy % (other processes); waits up to --wait-quiet s for it to drop."""
    background = machine_busy_pct()
    waited = 0.0
    while background > BUSY_WARNING_PCT and waited < args.wait_quiet:
        if waited == 0:
            print(
                f"  (machine {background:.0f}% busy: waiting up to {args.wait_quiet:g} s "
                "for other processes to finish)",
                flush=True,
            )
        time.sleep(2)
        waited += 3
        background = machine_busy_pct()
    return background


class Scenario:
    """One measured load: ``name``, the server it loads, and how wrk is driven."""

    def __init__(self, name: str, server: Server, auth: Any, what: str) -> None:
        self.name, self.server, self.what = name, server, what
        self.auth = auth  # () -> the access token (direct), the tokens file, or None (guest)
        self.flow = name not in ("direct", "baseline")
        self.pays = name in PAY_SCENARIOS

    def load(
        self, files: tuple[Path, Path], method_id: str, seconds: float, args: argparse.Namespace
    ) -> tuple[dict[str, Any], str]:
        """One wrk run; the result has ``statuses`` and, for flows, ``steps``."""
        if not self.flow:
            path = f"{API}/orders" if self.server.name == "emporium" else "/orders"
            script_args = [str(files[0]), str(files[1]), str(args.scarce_share), self.auth()]
            script_args += [str(args.lines), str(args.max_quantity), method_id]
            return wrk(
                f"{self.server.base}{path}",
                files[0],
                seconds=seconds,
                connections=args.connections,
                threads=args.threads,
                script=LUA,
                script_args=script_args,
            )
        auth = "-" if self.auth is None else str(self.auth())
        script_args = [str(files[0]), str(files[1]), str(args.scarce_share), self.name, auth]
        script_args += [method_id, str(args.lines), str(args.max_quantity)]
        result, output = wrk(
            self.server.base,
            files[0],
            seconds=seconds,
            connections=args.connections,
            threads=args.connections,
            script=FLOWS_LUA,
            script_args=script_args,
        )
        match = re.search(r"^BENCH_RESULT (\{.*\})$", output, re.MULTILINE)
        assert match is not None  # wrk() found it
        result["steps"] = json.loads(match.group(1))["steps"]
        return result, output

    def paid(self, result: dict[str, Any]) -> int:
        """Payments answered 201 (the pay scenarios' second step; 0 elsewhere)."""
        return int(result.get("steps", {}).get("pay:201", 0)) if self.pays else 0

    def tally(self, result: dict[str, Any]) -> tuple[int, int, dict[str, int]]:
        """(orders placed, orders refused with 409, unexpected answers by step:status)."""
        if not self.flow:
            statuses = {str(k): v for k, v in result.get("statuses", {}).items()}
            steps = {f"{self.name}:{k}": v for k, v in statuses.items()}
        else:
            steps = result["steps"]
        unexpected = {}
        for key, n in steps.items():
            step, _, status = key.partition(":")
            if int(status) not in EXPECTED[step if self.flow else self.name]:
                unexpected[key] = n
        order = "order" if self.flow else self.name
        return steps.get(f"{order}:201", 0), steps.get(f"{order}:409", 0), unexpected


JOBS_OPEN = """
SELECT (SELECT count(*) FROM outbox_event WHERE dispatched_at IS NULL)
     + (SELECT count(*) FROM job WHERE status IN ('queued', 'running'))
"""


def wait_jobs(args: argparse.Namespace, server: Server, timeout: float = 180.0) -> float:
    """``--jobs``: wait until every event is dispatched and no job is open, then until the
    server is idle (the baseline's after-commit tasks); returns the seconds waited."""

    async def open_work() -> int:
        conn = await _connect(args.pg, args.db)
        try:
            return int(await conn.fetchval(JOBS_OPEN))
        finally:
            await conn.close()

    started = time.monotonic()
    while time.monotonic() - started < timeout and asyncio.run(open_work()):
        time.sleep(0.5)
    server.wait_idle()
    return time.monotonic() - started


def run_scenario(
    scenario: Scenario, files: tuple[Path, Path], method_id: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Warm-up and measured run on freshly reset stock, each followed by the checks."""
    failures: list[str] = []
    server, name = scenario.server, scenario.name
    asyncio.run(reset_stock(args.pg, args.db))
    server.wait_idle()
    background = wait_quiet(args)
    print(f"  {name:<12} warm-up {args.warmup:g} s ...", end="", flush=True)
    warm, _ = scenario.load(files, method_id, args.warmup, args)
    server.wait_idle()
    warm_check = asyncio.run(verify(args.pg, args.db, args.lines))
    if warm_check["oversold_units"] or warm_check["problems"]:
        failures.append(f"{name} warm-up: {warm_check['problems'][:5]}")
    asyncio.run(reset_stock(args.pg, args.db))
    server.wait_idle()
    print(f" measuring {args.duration:g} s ...", end="", flush=True)
    assert server.proc is not None
    sessions_before = asyncio.run(db_sessions(args.pg, args.db))
    xacts_before = asyncio.run(db_transactions(args.pg, args.db))
    sent_before = (args.tally.mails, args.tally.hooks) if args.jobs else (0, 0)
    with CpuAccounting(server.proc.pid) as cpu:
        result, output = scenario.load(files, method_id, args.duration, args)
        if args.jobs:  # the orders' e-mails and webhooks are part of their cost
            result["jobs_drain_s"] = round(wait_jobs(args, server), 1)
    if args.jobs:
        result["mails_sent"] = args.tally.mails - sent_before[0]
        result["webhooks_received"] = args.tally.hooks - sent_before[1]
    result["drain_s"] = round(server.wait_idle(), 1)
    time.sleep(1.5)  # PostgreSQL flushes its statistics at most once a second
    sessions_after = asyncio.run(db_sessions(args.pg, args.db))
    xacts_after = asyncio.run(db_transactions(args.pg, args.db))
    checked = asyncio.run(verify(args.pg, args.db, args.lines))

    created, conflicts, unexpected = scenario.tally(result)
    paid = scenario.paid(result)
    requests = max(1, result["requests"])
    result.update(
        paid_201=paid,
        paid_per_s=round(paid / result["seconds"], 1),
        scenario=name,
        server=server.name,
        what=scenario.what,
        checkouts_per_s=round(created / result["seconds"], 1),
        created_201=created,
        conflicts_409=conflicts,
        requests_per_checkout=round(result["requests"] / max(1, created), 2),
        unexpected=unexpected,
        background_cpu_pct=background,
        other_cpu_pct=cpu.other_pct,
        db_connections_opened=(
            None
            if sessions_before is None or sessions_after is None
            else sessions_after - sessions_before
        ),
        server_cpu_ms_per_request=round(1000 * cpu.seconds["server"] / requests, 3),
        postgres_cpu_ms_per_request=round(1000 * cpu.seconds["postgres"] / requests, 3),
        server_cpu_ms_per_checkout=round(1000 * cpu.seconds["server"] / max(1, created), 3),
        postgres_cpu_ms_per_checkout=round(1000 * cpu.seconds["postgres"] / max(1, created), 3),
        warmup={
            "requests": warm["requests"],
            "orders": warm_check["orders"],
            "oversold_units": warm_check["oversold_units"],
        },
        db=checked,
    )
    if xacts_before and xacts_after:
        result["db_commits"] = xacts_after[0] - xacts_before[0]
        result["db_rollbacks"] = xacts_after[1] - xacts_before[1]
    in_flight = checked["orders"] - created
    result["orders_committed_after_wrk_stopped"] = in_flight
    if unexpected or result["socket_errors"]:
        failures.append(
            f"{name}: unexpected answers {unexpected} (step:status), "
            f"{result['socket_errors']} socket errors/timeouts"
        )
    if checked["oversold_units"]:
        failures.append(f"{name}: {checked['oversold_units']} units oversold")
    if checked["problems"]:
        failures.append(f"{name}: ledger/orders disagree: {checked['problems'][:5]}")
    if not 0 <= in_flight <= args.connections:
        failures.append(
            f"{name}: {checked['orders']} orders in the database but wrk saw "
            f"{created} 201s (at most {args.connections} may be in flight at the stop)"
        )
    failures += _payment_failures(scenario, checked, paid, args.connections)
    result["payments_committed_after_wrk_stopped"] = checked["paid_orders"] - paid
    result["failures"] = failures
    (RESULTS / "wrk").mkdir(exist_ok=True)
    (RESULTS / "wrk" / f"checkout-{name}.txt").write_text(output)
    flag = f"  !!! {'; '.join(failures)}" if failures else ""
    if cpu.other_pct > BUSY_WARNING_PCT:
        flag += f"  (other processes used {cpu.other_pct:.0f}% of the machine meanwhile)"
    if args.jobs:
        flag += (
            f"  jobs: {result['mails_sent']} e-mails, {result['webhooks_received']} webhooks,"
            f" drained {result['jobs_drain_s']} s after the load (in the CPU figures)"
        )
    print(
        f" {result['checkouts_per_s']:>7.1f} checkouts/s  {result['rps']:>7.1f} req/s  "
        f"p50 {result['p50_ms']:>6.1f} ms  p99 {result['p99_ms']:>6.1f} ms  409s {conflicts}"
        f"{flag}",
        flush=True,
    )
    return result


def _payment_failures(
    scenario: Scenario, checked: dict[str, Any], paid: int, connections: int
) -> list[str]:
    """What the database says against wrk's payments: in the pay scenarios every order is
    paid (but those whose payment had not been sent or answered when wrk stopped: up to
    one per connection), and paid orders == wrk's payment 201s + those in flight; elsewhere
    nothing is paid."""
    name = scenario.name
    if not scenario.pays:
        if checked["paid_orders"] or checked["payments"]:
            return [f"{name}: {checked['payments']} payments, {checked['paid_orders']} paid"]
        return []
    failures = []
    if not 0 <= checked["paid_orders"] - paid <= connections:
        failures.append(
            f"{name}: {checked['paid_orders']} paid orders in the database but wrk saw "
            f"{paid} payments answered 201"
        )
    if checked["unpaid_orders"] > connections or checked["payments_not_captured"] > connections:
        failures.append(
            f"{name}: {checked['unpaid_orders']} orders unpaid and "
            f"{checked['payments_not_captured']} payments not captured (at most "
            f"{connections}, one checkout per connection, may be unfinished at the stop)"
        )
    return failures


def profile(
    server: Server, token: str, files: tuple[Path, Path], method_id: str, args: argparse.Namespace
) -> Path | None:
    """py-spy on one Emporium worker under the ``direct`` load (a separate, unreported run)."""
    pyspy = Path(sys.executable).parent / "py-spy"
    if not pyspy.exists():
        found = shutil.which("py-spy")
        if found is None:
            print("  py-spy not found: .venv/bin/pip install py-spy", flush=True)
            return None
        pyspy = Path(found)
    workers = server.worker_pids()
    if not workers:
        return None
    asyncio.run(reset_stock(args.pg, args.db))
    server.wait_idle()
    out = RESULTS / "profile-checkout.txt"
    seconds = max(4, round(args.duration))
    with tempfile.TemporaryDirectory() as tmp:
        errors = Path(tmp) / "wrk.out"
        with errors.open("w") as sink:
            url = f"{server.base}{API}/orders"
            cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds + 2}s"]
            cmd += ["--timeout", "30s", "-s", str(LUA), url, "--", str(files[0]), str(files[1])]
            cmd += [str(args.scarce_share), token, str(args.lines), str(args.max_quantity)]
            cmd += [method_id]
            background = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
        try:
            time.sleep(1)
            subprocess.run(
                [
                    *(str(pyspy), "record", "--pid", str(workers[0])),
                    *("--duration", str(seconds), "--rate", "200", "--nonblocking"),
                    *("--format", "raw", "--output", str(out)),
                ],
                check=True,
                capture_output=True,
            )
        finally:
            background.wait()
    return out


# --------------------------------------------------------------------------- report


def report(results: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    lines = [
        "",
        f"{'scenario':<12} {'co/s':>7} {'pay/s':>7} {'req/s':>7} {'req/co':>6} {'ms/req':>7} "
        f"{'p50 ms':>7} "
        f"{'p99 ms':>7} {'201':>6} {'409':>5} {'other':>5} {'oversold':>8} {'app/req':>7} "
        f"{'db/req':>6} {'app/co':>7} {'db/co':>6} {'conns':>5} {'other%':>6}",
        "-" * 133,
    ]
    for name, r in results.items():
        other = sum(r["unexpected"].values()) + r["socket_errors"]
        conns = "?" if r["db_connections_opened"] is None else r["db_connections_opened"]
        pay = f"{r['paid_per_s']:>7.1f}" if r["scenario"] in PAY_SCENARIOS else f"{'-':>7}"
        lines.append(
            f"{name:<12} {r['checkouts_per_s']:>7.1f} {pay} {r['rps']:>7.1f} "
            f"{r['requests_per_checkout']:>6.2f} {r['mean_ms']:>7.1f} {r['p50_ms']:>7.1f} "
            f"{r['p99_ms']:>7.1f} {r['created_201']:>6} {r['conflicts_409']:>5} {other:>5} "
            f"{r['db']['oversold_units']:>8} {r['server_cpu_ms_per_request']:>7.2f} "
            f"{r['postgres_cpu_ms_per_request']:>6.2f} {r['server_cpu_ms_per_checkout']:>7.2f} "
            f"{r['postgres_cpu_ms_per_checkout']:>6.2f} {conns:>5} {r['other_cpu_pct']:>6.0f}"
        )
    lines.append(
        "co/s: checkouts per second (orders answered 201); pay/s: payments answered 201 "
        "(pay scenarios); req/co: requests per checkout; "
        "ms/req: mean latency of all requests;\np50/p99 over all requests; 201/409: orders "
        "placed / refused for short stock; other: answers a step does not expect + socket "
        "errors;\noversold: units sold beyond the initial stock (+ stock below 0), from the "
        "database; app/req, db/req, app/co, db/co: CPU ms of the server's processes / of "
        "PostgreSQL\nper request and per checkout; conns: new database connections during "
        "the run; other%: CPU of processes other than the servers, wrk and PostgreSQL"
    )
    lines.append("scenarios:")
    for name, r in results.items():
        lines.append(f"  {name:<12} {r['what']}")
    lines.append("server side (database) against wrk:")
    for name, r in results.items():
        rollbacks = r.get("db_rollbacks", "?")
        lines.append(
            f"  {name:<12} {r['db']['orders']} orders in the database = {r['created_201']} 201s "
            f"+ {r['orders_committed_after_wrk_stopped']} in flight when wrk stopped; "
            f"{rollbacks} rollbacks for {r['conflicts_409']} 409s; "
            f"{r['db']['free_shipping_orders']} shipped free; "
            f"{r['db']['sold_out_variants']} variants sold out"
            + (
                f"; {r['db']['paid_orders']} paid orders = {r['paid_201']} payment 201s + "
                f"{r['payments_committed_after_wrk_stopped']} in flight, "
                f"{r['db']['unpaid_orders']} orders left unpaid at the stop"
                if r["scenario"] in PAY_SCENARIOS
                else ""
            )
        )
    bars: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    base = results.get("baseline")
    compared = [
        (name, r, results[BASELINE_OF.get(name, "baseline")])
        for name, r in results.items()
        if name not in ON_BASELINE and BASELINE_OF.get(name, "baseline") in results
    ]
    if compared:
        lines += ["", "Emporium / baseline (pay: / pay_baseline; the others: / baseline):"]
    for name, r, b in compared:
        base_cpu = b["server_cpu_ms_per_checkout"] + b["postgres_cpu_ms_per_checkout"]
        cpu = r["server_cpu_ms_per_checkout"] + r["postgres_cpu_ms_per_checkout"]
        ratios[name] = {
            "baseline": b["scenario"],
            "checkouts_per_s": round(r["checkouts_per_s"] / max(b["checkouts_per_s"], 1e-9), 3),
            "requests_per_s": round(r["rps"] / max(b["rps"], 1e-9), 3),
            "cpu_ms_per_checkout": round(cpu / max(base_cpu, 1e-9), 2),
        }
        x = ratios[name]
        paying = ""
        if name in PAY_SCENARIOS:
            x["paid_per_s"] = round(r["paid_per_s"] / max(b["paid_per_s"], 1e-9), 3)
            paying = f"   payments/s {x['paid_per_s']:>6.1%}"
        lines.append(
            f"  {name:<12} checkouts/s {x['checkouts_per_s']:>6.1%}{paying}   requests/s "
            f"{x['requests_per_s']:>6.1%}   CPU (app + db) per checkout "
            f"{x['cpu_ms_per_checkout']:>5.1f}x"
        )
    if base and "direct" in results:
        ratio = ratios["direct"]["checkouts_per_s"]
        bars["orders_per_s_vs_baseline"] = {
            "value": ratio,
            "bar": f">= {BAR_RATIO:.0%}",
            "met": ratio >= BAR_RATIO,
        }
    oversold = sum(r["db"]["oversold_units"] for r in results.values())
    bars["oversold_units"] = {"value": oversold, "bar": "== 0", "met": oversold == 0}
    lines += ["", "bars of the issue:"]
    if "orders_per_s_vs_baseline" in bars:
        b = bars["orders_per_s_vs_baseline"]
        lines.append(
            f"  direct orders/s / baseline orders/s    {b['value']:>7.1%}   bar >= "
            f"{BAR_RATIO:.0%}   {'met' if b['met'] else 'NOT MET'}"
        )
    lines.append(
        f"  oversold units (every run)             {oversold:>7}   bar == 0     "
        f"{'met' if oversold == 0 else 'NOT MET'}"
    )
    busy = [k for k, r in results.items() if r["other_cpu_pct"] > BUSY_WARNING_PCT]
    if busy:
        lines.append(
            f"WARNING: other processes used > {BUSY_WARNING_PCT:g}% of the machine during "
            f"{', '.join(busy)}: rerun on a quiet machine"
        )
    bars["ratios"] = ratios
    return "\n".join(lines), bars


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Checkout benchmark (Emporium vs raw ASGI + asyncpg baseline) on PostgreSQL."
    )
    parser.add_argument("--pg", default=DEFAULT_PG, help="server DSN without database")
    parser.add_argument("--db", default=DEFAULT_DB, help="bench database (dropped and created)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    parser.add_argument("--products", type=int, default=300, help="plentiful variants")
    parser.add_argument("--stock", type=int, default=1_000_000, help="units per plentiful variant")
    parser.add_argument("--scarce", type=int, default=4, help="scarce variants")
    parser.add_argument("--scarce-stock", type=int, default=10, help="units per scarce variant")
    parser.add_argument(
        "--scarce-share", type=float, default=0.08, help="share of orders with a scarce line"
    )
    parser.add_argument("--lines", type=int, default=3, help="distinct variants per order")
    parser.add_argument("--max-quantity", type=int, default=3, help="units per line: 1 to this")
    parser.add_argument("--duration", type=float, default=20, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of warm-up")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="wrk threads (direct, baseline; one per connection in the cart scenarios)",
    )
    parser.add_argument("--workers", type=int, default=2, help="server workers (both servers)")
    parser.add_argument(
        "--only",
        type=lambda text: [s.strip() for s in text.split(",") if s.strip()],
        default=list(SCENARIOS),
        metavar="A,B",
        help=f"scenarios to run, in this order (default: {','.join(SCENARIOS)})",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=120,
        metavar="SECONDS",
        help="before each run, wait up to this long for other processes to go quiet",
    )
    parser.add_argument(
        "--emporium-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the Emporium server",
    )
    parser.add_argument(
        "--baseline-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the baseline (e.g. BASELINE_NOTIFY=1)",
    )
    parser.add_argument(
        "--jobs",
        action="store_true",
        help="job work on: Emporium's embedded runner and the baseline's after-commit tasks "
        "send each order's e-mail (SMTP sink) and webhook (loopback receiver)",
    )
    parser.add_argument("--profile", action="store_true", help="then py-spy one Emporium worker")
    parser.add_argument("--output", type=Path, default=RESULTS / "checkout.json")
    args = parser.parse_args()
    unknown = [s for s in args.only if s not in SCENARIOS]
    if unknown or not args.only:
        parser.error(f"--only takes some of {', '.join(SCENARIOS)}, not {unknown}")
    return args


WHAT = {
    "direct": "POST /api/v1/orders {items, shipping_address, shipping_method_id}, signed in",
    "baseline": "POST /orders, the same body and transaction on the raw driver",
    "customer": "signed in: POST /carts (their cart), POST /carts/{id}/items x3, PATCH "
    "/carts/{id} {shipping_address, shipping_method_id}, POST /orders {cart_id}",
    "customer_v1": "signed in: POST /cart/items x3, POST /orders {shipping_address, "
    "shipping_method_id}",
    "guest": "POST /carts, POST /carts/{id}/items x3, PATCH /carts/{id} {email, "
    "shipping_address, shipping_method_id}, POST /orders {cart_id} (Cart-Token)",
    "pay": "signed in: POST /orders (as direct), then POST /orders/{id}/payments "
    '{"provider": "test", "payment_method": "pm_card_visa"} (captured at once)',
    "pay_baseline": "POST /orders, then POST /orders/{id}/payments on the baseline: the "
    "same three committed transactions on the raw driver",
}


def start_job_sinks(
    args: argparse.Namespace, env: dict[str, str], sinks: list[Any]
) -> dict[str, str]:
    """``--jobs``: an SMTP sink and a webhook receiver subscribed to ``order.created`` (both
    servers' job work goes there), Emporium's embedded runner on and sending to them.
    Returns the baseline's environment for the same work."""
    import jobs_drain
    from aiosmtpd.controller import Controller

    args.tally = tally = jobs_drain.Tally()
    smtp = Controller(jobs_drain.MailSink(tally), hostname="127.0.0.1", port=free_port())
    smtp.start()
    sinks.append(smtp.stop)
    receiver = jobs_drain.hook_receiver(tally)
    sinks.append(receiver.shutdown)
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hooks"
    secret = asyncio.run(jobs_drain.subscribe(env, url))
    env.update(
        EMPORIUM_JOBS_EMBEDDED="true",
        EMPORIUM_MAIL_BACKEND="smtp",
        EMPORIUM_SMTP_HOST="127.0.0.1",
        EMPORIUM_SMTP_PORT=str(smtp.port),
        EMPORIUM_SMTP_STARTTLS="false",
        EMPORIUM_WEBHOOKS_ALLOW_PRIVATE="true",
    )
    return {
        "BASELINE_JOBS": "1",
        "BASELINE_SMTP_PORT": str(smtp.port),
        "BASELINE_WEBHOOK_SECRET": secret,
    }


def main() -> int:
    args = parse_args()
    import seed

    source = f"working tree ({git_commit()})"
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)
    RESULTS.mkdir(exist_ok=True)
    servers: list[Server] = []
    sinks: list[Any] = []  # --jobs: the SMTP sink and the webhook receiver, stopped at the end
    failures: list[str] = []
    metrics_dir = tempfile.TemporaryDirectory(prefix="emporium-bench-metrics-")
    workdir = Path(tempfile.mkdtemp(prefix="emporium-bench-checkout-"))
    try:
        seeded = prepare_database(args)
        method_id = seeded.pop("method_id")
        plenty, scarce = asyncio.run(variant_ids(args.pg, args.db, args.stock))
        files = (workdir / "variants.txt", workdir / "scarce.txt")
        files[0].write_text("\n".join(plenty) + "\n")
        files[1].write_text("\n".join(scarce) + "\n")

        env = seed.emporium_env(args.pg, args.db)
        env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir.name
        env["EMPORIUM_CURRENCY"] = CURRENCY
        env.update(RATE_LIMITS_LIFTED)
        env.update(BACKGROUND_WORK_OFF)
        env.update(PAYMENTS_ON)
        env["EMPORIUM_MAIL_DIR"] = str(workdir / "mail")  # never the repository's mail/
        baseline_jobs = start_job_sinks(args, env, sinks) if args.jobs else {}
        for item in args.emporium_env:
            key, _, value = item.partition("=")
            env[key] = value
        port = free_port()
        emporium = Server(
            "emporium",
            [
                *seed.emporium_command(),
                "serve",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            env,
            port,
        )
        emporium.log_path = RESULTS / "checkout-emporium-server.log"
        servers.append(emporium)
        emporium.start()
        emporium.wait_ready()
        print(
            "rate limits lifted for the bench's Emporium server: "
            + ", ".join(f"{k}={env[k]!r}" for k in RATE_LIMITS_LIFTED)
            + f"; embedded job runner: EMPORIUM_JOBS_EMBEDDED={env['EMPORIUM_JOBS_EMBEDDED']}"
            + "; payments: "
            + ", ".join(f"{k}={env[k]}" for k in PAYMENTS_ON),
            flush=True,
        )
        buyer = Customer(emporium.base)
        carts = [s for s in args.only if s in ("customer", "customer_v1")]
        shoppers = [Customer(emporium.base) for _ in range(args.connections)] if carts else []
        port = free_port()
        baseline = Server(
            "baseline",
            [
                *(sys.executable, str(BENCH / "checkout_baseline.py")),
                *("--port", str(port), "--workers", str(args.workers)),
            ],
            {
                **os.environ,
                "BASELINE_DSN": seed.dsn(args.pg, args.db),
                "BASELINE_CUSTOMER_ID": buyer.id,
                "BASELINE_CUSTOMER_EMAIL": buyer.email,
                "BASELINE_ORDER_PAYMENT_MINUTES": env.get(
                    "EMPORIUM_ORDER_PAYMENT_MINUTES",
                    str(Settings.model_fields["order_payment_minutes"].default),
                ),
                **baseline_jobs,
                **dict(item.partition("=")[::2] for item in args.baseline_env),
            },
            port,
        )
        baseline.log_path = RESULTS / "checkout-baseline-server.log"
        servers.append(baseline)
        baseline.start()
        baseline.wait_ready()
        print(
            f"servers ready: emporium {emporium.base} (pids {emporium.worker_pids()}), "
            f"baseline {baseline.base} (pids {baseline.worker_pids()})",
            flush=True,
        )
        facts = sanity_checks(emporium, baseline, buyer, shoppers, plenty, scarce, method_id, args)
        carts_run = any(s in ("customer", "customer_v1", "guest") for s in args.only)
        pays_run = any(s in PAY_SCENARIOS for s in args.only)
        print(
            "sanity checks passed (same order document and figures on both servers, tax and "
            "shipping computed, 409 on a short line"
            + (", the same figures through every cart scenario" if carts_run else "")
            + (", the same payment captured for the total on both" if pays_run else "")
            + ")",
            flush=True,
        )
        print(
            f"wrk: {args.connections} connections, {args.lines}-line orders, "
            f"{args.scarce_share:.0%} with a scarce line, {args.warmup:g} s warm-up "
            f"+ {args.duration:g} s measured, stock (and carts) reset before each",
            flush=True,
        )
        tokens = workdir / "tokens.txt"
        auth = {
            "direct": buyer.token,
            "baseline": buyer.token,  # sent, not checked
            "customer": lambda: sign_in_all(shoppers, tokens),
            "customer_v1": lambda: sign_in_all(shoppers, tokens),
            "guest": None,
            "pay": lambda: same_token(buyer, args.connections, tokens),
            "pay_baseline": lambda: same_token(buyer, args.connections, tokens),  # not checked
        }
        results = {}
        for name in args.only:
            server = baseline if name in ON_BASELINE else emporium
            scenario = Scenario(name, server, auth[name], WHAT[name])
            results[name] = run_scenario(scenario, files, method_id, args)
        for r in results.values():
            failures += r["failures"]
            if r["conflicts_409"] == 0:
                print(
                    f"  note: no 409 in {r['scenario']} (no scarce stock ran out): raise "
                    "--scarce-share",
                    flush=True,
                )
        text, bars = report(results)
        print(text)
        document = {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": source,
            "commit": git_commit(),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "wrk": wrk_version(),
                "note": "2 cores shared by wrk, PostgreSQL, the servers and possibly other "
                "engineers' test runs",
            },
            "settings": {
                "scenarios": args.only,
                "connections": args.connections,
                "wrk_threads": args.threads,
                "workers": args.workers,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "lines_per_order": args.lines,
                "max_quantity": args.max_quantity,
                "scarce_share": args.scarce_share,
                "stock": args.stock,
                "scarce_stock": args.scarce_stock,
                "rate_limits_lifted": RATE_LIMITS_LIFTED,
                "jobs_embedded": env["EMPORIUM_JOBS_EMBEDDED"],
                "emporium_env": args.emporium_env,
                "baseline_env": args.baseline_env,
                "baseline_pool_size_per_worker": int(os.environ.get("BASELINE_POOL_SIZE", "20")),
            },
            "seed": seeded,
            "sanity": facts,
            "results": results,
            "bars": bars,
            "failures": failures,
        }
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(document, indent=2, default=str) + "\n")
        shown = args.output.relative_to(REPO) if args.output.is_relative_to(REPO) else args.output
        print(f"\nwritten: {shown}")

        if args.profile:
            print("\nprofiling (py-spy on one Emporium worker; numbers of this pass not used):")
            import pyspy_summary

            out = profile(emporium, buyer.token(), files, method_id, args)
            if out is not None:
                print(pyspy_summary.summarise(out, top=15))
        if failures:
            print("\n!!! FAILED: " + "; ".join(failures), file=sys.stderr)
            return 1
        return 0
    except BenchError as exc:
        print(f"\n!!! BENCH ERROR: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        for server in servers:
            server.stop()
        for sink in sinks:
            sink()
        shutil.rmtree(workdir, ignore_errors=True)
        metrics_dir.cleanup()
        if not args.keep_db:
            asyncio.run(seed.drop_database(args.pg, args.db))
            seed.key_file(args.db).unlink(missing_ok=True)
            print(f"dropped database {args.db!r} (--keep-db keeps it)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
