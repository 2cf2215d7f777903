"""Checkout benchmark: orders per second, Emporium against a raw ASGI + asyncpg baseline.

One command does everything::

    .venv/bin/python bench/checkout.py               # seed, serve, measure, verify, clean up
    .venv/bin/python bench/checkout.py --keep-db     # ... and keep the database
    .venv/bin/python bench/checkout.py --profile     # + py-spy on one Emporium worker

1. a fresh ``emporium_bench_checkout`` database (``emporium db upgrade``), one category,
   ``--products`` (300) generated products with one variant each and ``--stock``
   (1,000,000) units, plus ``--scarce`` (4) products whose variant has ``--scarce-stock``
   (10) units; the initial stock is written to the ledger as ``received`` movements;
2. ``emporium serve --workers 2``, a customer registered and signed in through the API
   (``POST /api/v1/auth/register`` + ``/auth/login``; a new access token before each load,
   since they last 10 minutes), and the baseline (``bench/checkout_baseline.py``: same
   uvicorn, uvloop and httptools, 2 workers, the same transaction on the raw driver);
3. for each server in turn, on freshly reset stock: ``wrk`` (32 connections, 2 threads,
   ``bench/checkout_orders.lua``: random 3-line orders of distinct variants, 1-3 units per
   line, a scarce variant in ``--scarce-share`` (8%) of them, so that scarce stock runs out
   and 409s happen) for a warm-up, then stock reset again, then the measured run;
4. after every run, the database is checked: for every variant, initial stock - current
   stock == units in order lines == -(sum of its ``sale`` movements); no stock below 0;
   no two sales of a variant leaving the same stock; every order has its lines, its status
   row and total = sum of lines; orders in the database == 201s wrk counted (up to the
   requests in flight when wrk stopped);
5. a table (orders/s, requests/s, p50, p99, 201/409/other, oversold units, CPU per order),
   the bars of the issue (Emporium >= 20% of the baseline's orders/s, zero oversold units),
   ``bench/results/checkout.json``.

Exit status 1 when a unit was oversold, the ledger disagrees, a response was neither 201 nor
409, a socket error happened, or the database and wrk disagree; the throughput bar is
reported, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
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

DEFAULT_DB = "emporium_bench_checkout"
LUA = BENCH / "checkout_orders.lua"
BAR_RATIO = 0.20  # Emporium's orders/s >= 20% of the baseline's
ADDRESS = {
    "name": "Bench Buyer",
    "line1": "1 Load Street",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}  # the address checkout_orders.lua sends


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
    """One category, ``products + scarce`` published products with one variant each; the
    initial stock also as ``received`` ledger rows. Rows from ``seed.generate_rows``."""
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
        published = p_cols.index("published")
        p_rows = [(*r[:published], True, *r[published + 1 :]) for r in p_rows]
        position, stock_col = v_cols.index("position"), v_cols.index("stock")
        first = [r for r in v_rows if r[position] == 0]  # one variant per product
        variants = [
            (*r[:stock_col], stock if n < products else scarce_stock, *r[stock_col + 1 :])
            for n, r in enumerate(first)
        ]
        id_col = v_cols.index("id")
        received = [
            (uuid.uuid4(), r[id_col], "received", r[stock_col], r[stock_col], "bench seed", now)
            for r in variants
        ]
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
        await conn.execute("VACUUM ANALYZE")
        return {"products": len(p_rows), "variants": len(variants), "scarce": scarce}
    finally:
        await conn.close()


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
    """Back to the seeded state: no orders, no sales, every variant at its received stock."""
    conn = await _connect(pg, database)
    try:
        async with conn.transaction():
            await conn.execute(
                "TRUNCATE customer_order, order_line, order_status_change, idempotency_key"
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


async def verify(pg: str, database: str, lines_per_order: int) -> dict[str, Any]:
    """Check the stock, the ledger and the orders; return counts and what is wrong."""
    conn = await _connect(pg, database)
    try:
        rows = await conn.fetch(VERIFY)
        orders = await conn.fetchval("SELECT count(*) FROM customer_order")
        lines = await conn.fetchval("SELECT count(*) FROM order_line")
        status_rows = await conn.fetchval("SELECT count(*) FROM order_status_change")
        bad_totals = await conn.fetchval(
            "SELECT count(*) FROM customer_order AS o WHERE o.total <> o.subtotal OR o.total <> "
            "(SELECT coalesce(sum(l.total), 0) FROM order_line AS l WHERE l.order_id = o.id)"
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
    if status_rows != orders:
        problems.append(f"{orders} orders but {status_rows} status rows")
    if bad_totals:
        problems.append(f"{bad_totals} orders whose total is not the sum of their lines")
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


def post_json(url: str, body: Any, token: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(  # noqa: S310 (our http URL)
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        with contextlib.suppress(ValueError):
            return exc.code, json.loads(raw)
        return exc.code, raw[:500]


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


def order_body(ids: list[str], quantity: int = 1) -> dict[str, Any]:
    return {
        "items": [{"variant_id": v, "quantity": quantity} for v in ids],
        "shipping_address": ADDRESS,
    }


def sanity_checks(
    emporium: Server,
    baseline: Server,
    customer: Customer,
    plenty: list[str],
    scarce: list[str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Both servers take the same order with the same lines and refuse a short one with 409
    ``insufficient_stock``; the ledger holds after it. Returns facts for the report."""
    token = customer.token()
    ours_url, theirs_url = f"{emporium.base}{API}/orders", f"{baseline.base}/orders"
    ids = plenty[: args.lines]
    s1, ours = post_json(ours_url, order_body(ids), token)
    s2, theirs = post_json(theirs_url, order_body(ids), token)
    if s1 != 201 or s2 != 201:
        raise BenchError(f"order answered {s1} (emporium) / {s2} (baseline): {ours!r} {theirs!r}")
    if set(ours) != set(theirs):
        raise BenchError(f"order documents differ in keys: {sorted(ours)} vs {sorted(theirs)}")
    for key in ("status", "customer_id", "items", "subtotal", "total", "currency"):
        if ours[key] != theirs[key]:
            raise BenchError(f"order documents differ in {key}: {ours[key]!r} vs {theirs[key]!r}")
    if {k: v for k, v in ours["shipping_address"].items() if v is not None} != ADDRESS:
        raise BenchError(f"unexpected shipping address {ours['shipping_address']!r}")
    short = order_body([scarce[0], *plenty[: args.lines - 1]], quantity=args.scarce_stock + 1)
    for url in (ours_url, theirs_url):
        status, body = post_json(url, short, token)
        if status != 409 or body.get("code") != "insufficient_stock":
            raise BenchError(f"{url} answered {status} to a short order: {body!r}")
    checked = asyncio.run(verify(args.pg, args.db, args.lines))
    if checked["orders"] != 2 or checked["problems"] or checked["oversold_units"]:
        raise BenchError(f"after two orders and two refused ones: {checked!r}")
    return {"sealed_address_lengths": asyncio.run(sealed_lengths(args.pg, args.db))}


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


def load(
    server: Server, files: tuple[Path, Path], token: str, seconds: float, args: argparse.Namespace
) -> tuple[dict[str, Any], str]:
    url = f"{server.base}{API}/orders" if server.name == "emporium" else f"{server.base}/orders"
    return wrk(
        url,
        files[0],
        seconds=seconds,
        connections=args.connections,
        threads=args.threads,
        script=LUA,
        script_args=[
            str(files[0]),
            str(files[1]),
            str(args.scarce_share),
            token,
            str(args.lines),
            str(args.max_quantity),
        ],
    )


def run_server(
    server: Server,
    token_for_run: Any,
    files: tuple[Path, Path],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Warm-up and measured run on freshly reset stock, each followed by the checks."""
    failures: list[str] = []
    asyncio.run(reset_stock(args.pg, args.db))
    server.wait_idle()
    background = wait_quiet(args)
    print(f"  {server.name:<9} warm-up {args.warmup:g} s ...", end="", flush=True)
    warm, _ = load(server, files, token_for_run(), args.warmup, args)
    server.wait_idle()
    warm_check = asyncio.run(verify(args.pg, args.db, args.lines))
    if warm_check["oversold_units"] or warm_check["problems"]:
        failures.append(f"{server.name} warm-up: {warm_check['problems'][:5]}")
    asyncio.run(reset_stock(args.pg, args.db))
    server.wait_idle()
    token = token_for_run()
    print(f" measuring {args.duration:g} s ...", end="", flush=True)
    assert server.proc is not None
    sessions_before = asyncio.run(db_sessions(args.pg, args.db))
    xacts_before = asyncio.run(db_transactions(args.pg, args.db))
    with CpuAccounting(server.proc.pid) as cpu:
        result, output = load(server, files, token, args.duration, args)
    result["drain_s"] = round(server.wait_idle(), 1)
    time.sleep(1.5)  # PostgreSQL flushes its statistics at most once a second
    sessions_after = asyncio.run(db_sessions(args.pg, args.db))
    xacts_after = asyncio.run(db_transactions(args.pg, args.db))
    checked = asyncio.run(verify(args.pg, args.db, args.lines))

    statuses: dict[int, int] = result.pop("statuses", {})
    created, conflicts = statuses.get(201, 0), statuses.get(409, 0)
    others = {code: n for code, n in statuses.items() if code not in (201, 409)}
    result.update(
        orders_per_s=round(created / result["seconds"], 1),
        created_201=created,
        conflicts_409=conflicts,
        other_statuses={str(k): v for k, v in sorted(others.items())},
        background_cpu_pct=background,
        other_cpu_pct=cpu.other_pct,
        db_connections_opened=(
            None
            if sessions_before is None or sessions_after is None
            else sessions_after - sessions_before
        ),
        server_cpu_ms_per_request=round(
            1000 * cpu.seconds["server"] / max(1, result["requests"]), 3
        ),
        postgres_cpu_ms_per_request=round(
            1000 * cpu.seconds["postgres"] / max(1, result["requests"]), 3
        ),
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
    if others or result["socket_errors"]:
        failures.append(
            f"{server.name}: statuses {result['other_statuses']} besides 201/409, "
            f"{result['socket_errors']} socket errors/timeouts"
        )
    if checked["oversold_units"]:
        failures.append(f"{server.name}: {checked['oversold_units']} units oversold")
    if checked["problems"]:
        failures.append(f"{server.name}: ledger/orders disagree: {checked['problems'][:5]}")
    if not 0 <= in_flight <= args.connections:
        failures.append(
            f"{server.name}: {checked['orders']} orders in the database but wrk saw "
            f"{created} 201s (at most {args.connections} may be in flight at the stop)"
        )
    if created + conflicts != result["requests"]:
        failures.append(f"{server.name}: 201s + 409s + others != requests")
    result["failures"] = failures
    (RESULTS / "wrk").mkdir(exist_ok=True)
    (RESULTS / "wrk" / f"checkout-{server.name}.txt").write_text(output)
    flag = f"  !!! {'; '.join(failures)}" if failures else ""
    if cpu.other_pct > BUSY_WARNING_PCT:
        flag += f"  (other processes used {cpu.other_pct:.0f}% of the machine meanwhile)"
    print(
        f" {result['orders_per_s']:>7.1f} orders/s  p50 {result['p50_ms']:>6.1f} ms  "
        f"p99 {result['p99_ms']:>6.1f} ms  409s {conflicts}{flag}",
        flush=True,
    )
    return result


def profile(
    server: Server, token: str, files: tuple[Path, Path], args: argparse.Namespace
) -> Path | None:
    """py-spy on one Emporium worker under the same load (a separate, unreported run)."""
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
        f"{'server':<10} {'orders/s':>9} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'201':>7} {'409':>6} {'other':>5} {'oversold':>8} {'app ms':>7} {'db ms':>6} "
        f"{'conns':>5} {'other%':>6}",
        "-" * 104,
    ]
    for name, r in results.items():
        other = sum(r["other_statuses"].values()) + r["socket_errors"]
        conns = "?" if r["db_connections_opened"] is None else r["db_connections_opened"]
        lines.append(
            f"{name:<10} {r['orders_per_s']:>9.1f} {r['rps']:>8.1f} {r['p50_ms']:>7.1f} "
            f"{r['p99_ms']:>7.1f} {r['created_201']:>7} {r['conflicts_409']:>6} {other:>5} "
            f"{r['db']['oversold_units']:>8} {r['server_cpu_ms_per_request']:>7.2f} "
            f"{r['postgres_cpu_ms_per_request']:>6.2f} {conns:>5} {r['other_cpu_pct']:>6.0f}"
        )
    lines.append(
        "orders/s: 201s per second; p50/p99 over all responses (201 and 409); other: statuses "
        "besides 201/409 + socket errors;\noversold: units sold beyond the initial stock "
        "(+ stock below 0), from the database; app ms / db ms: CPU ms per request of the "
        "server's processes / of PostgreSQL;\nconns: new database connections during the "
        "run; other%: CPU of processes other than the servers, wrk and PostgreSQL"
    )
    lines.append("server side (database) against wrk:")
    for name, r in results.items():
        rollbacks = r.get("db_rollbacks", "?")
        lines.append(
            f"  {name:<9} {r['db']['orders']} orders in the database = {r['created_201']} 201s "
            f"+ {r['orders_committed_after_wrk_stopped']} in flight when wrk stopped; "
            f"{rollbacks} rollbacks (pg_stat_database) for {r['conflicts_409']} 409s; "
            f"{r['db']['sold_out_variants']} variants sold out"
        )
    bars: dict[str, Any] = {}
    ours, base = results.get("emporium"), results.get("baseline")
    if ours and base:
        ratio = ours["orders_per_s"] / max(base["orders_per_s"], 1e-9)
        bars["orders_per_s_vs_baseline"] = {
            "value": round(ratio, 3),
            "bar": f">= {BAR_RATIO:.0%}",
            "met": ratio >= BAR_RATIO,
        }
    oversold = sum(r["db"]["oversold_units"] for r in results.values())
    bars["oversold_units"] = {"value": oversold, "bar": "== 0", "met": oversold == 0}
    lines += ["", "bars of the issue:"]
    if "orders_per_s_vs_baseline" in bars:
        b = bars["orders_per_s_vs_baseline"]
        lines.append(
            f"  Emporium orders/s / baseline orders/s  {b['value']:>7.1%}   bar >= "
            f"{BAR_RATIO:.0%}   {'met' if b['met'] else 'NOT MET'}"
        )
    lines.append(
        f"  oversold units (both runs)             {oversold:>7}   bar == 0     "
        f"{'met' if oversold == 0 else 'NOT MET'}"
    )
    busy = [k for k, r in results.items() if r["other_cpu_pct"] > BUSY_WARNING_PCT]
    if busy:
        lines.append(
            f"WARNING: other processes used > {BUSY_WARNING_PCT:g}% of the machine during "
            f"{', '.join(busy)}: rerun on a quiet machine"
        )
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
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="server workers (both servers)")
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
    parser.add_argument("--profile", action="store_true", help="then py-spy one Emporium worker")
    parser.add_argument("--output", type=Path, default=RESULTS / "checkout.json")
    return parser.parse_args()


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
    failures: list[str] = []
    metrics_dir = tempfile.TemporaryDirectory(prefix="emporium-bench-metrics-")
    workdir = Path(tempfile.mkdtemp(prefix="emporium-bench-checkout-"))
    try:
        seeded = prepare_database(args)
        plenty, scarce = asyncio.run(variant_ids(args.pg, args.db, args.stock))
        files = (workdir / "variants.txt", workdir / "scarce.txt")
        files[0].write_text("\n".join(plenty) + "\n")
        files[1].write_text("\n".join(scarce) + "\n")

        env = seed.emporium_env(args.pg, args.db)
        env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir.name
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
        customer = Customer(emporium.base)
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
                "BASELINE_CUSTOMER_ID": customer.id,
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
        facts = sanity_checks(emporium, baseline, customer, plenty, scarce, args)
        print("sanity checks passed (same order document, 409 on a short line)", flush=True)
        print(
            f"wrk: {args.connections} connections, {args.threads} threads, {args.lines}-line "
            f"orders, {args.scarce_share:.0%} with a scarce line, {args.warmup:g} s warm-up "
            f"+ {args.duration:g} s measured, stock reset before each",
            flush=True,
        )
        results = {
            "emporium": run_server(emporium, customer.token, files, args),
            "baseline": run_server(baseline, customer.token, files, args),
        }
        for r in results.values():
            failures += r["failures"]
            if r["conflicts_409"] == 0:
                print(
                    "  note: no 409 in a run (no scarce stock ran out): raise --scarce-share",
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

            out = profile(emporium, customer.token(), files, args)
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
        shutil.rmtree(workdir, ignore_errors=True)
        metrics_dir.cleanup()
        if not args.keep_db:
            asyncio.run(seed.drop_database(args.pg, args.db))
            seed.key_file(args.db).unlink(missing_ok=True)
            print(f"dropped database {args.db!r} (--keep-db keeps it)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
