"""Do the job workers keep up with checkout? Orders placed per second against orders whose
e-mail and webhook went out per second, with two ``emporium worker`` processes.

One command (PostgreSQL at ``127.0.0.1:5432``, ``wrk``)::

    .venv/bin/python bench/jobs_drain.py                    # seed, serve, load 20 s, drain
    .venv/bin/python bench/jobs_drain.py --src /tmp/old/src  # measure another copy of src/

What it does: seeds ``emporium_bench_jobs`` as the checkout bench does (``checkout.py``'s
catalog, shipping and tax), starts ``emporium serve --workers 2`` with the embedded job
runner off and ``--job-workers`` (2) ``emporium worker`` processes, an SMTP sink (aiosmtpd,
as the mail tests use; ``EMPORIUM_MAIL_BACKEND=smtp`` without STARTTLS) and a webhook
receiver on loopback subscribed to ``order.created`` (``EMPORIUM_WEBHOOKS_ALLOW_PRIVATE``
for the workers); registers one customer; then puts the checkout load on the server
(``wrk`` with ``checkout_orders.lua``, ``--connections`` 32, ``--duration`` 20 s, no
scarce lines) and samples every second: orders in the database (placed), order
confirmations the sink accepted (mailed), webhooks the receiver got (hooked), undispatched
events and open jobs. An order is *drained* once both its e-mail and its webhook arrived.
After the load it waits up to ``--after`` (60) s for the backlog to reach 0, then reads the
workers' resident memory (``VmRSS``, and the peak ``VmHWM``) and CPU.

It prints the timeline, placed/s and drained/s over the load, their ratio, the backlog at
the end of the load and how long it took to reach 0, CPU ms per order of the server and of
the workers, and each worker's RSS; ``bench/results/jobs_drain.json`` keeps it all. It
asserts no timing; exit status 1 when an order was never drained within ``--after``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
from aiosmtpd.controller import Controller
from catalog_reads import (
    API,
    DEFAULT_PG,
    RESULTS,
    BenchError,
    Server,
    free_port,
    git_commit,
    machine_busy_pct,
)
from checkout import LUA, RATE_LIMITS_LIFTED, Customer, prepare_database, variant_ids

DEFAULT_DB = "emporium_bench_jobs"
COUNTS = """
SELECT (SELECT count(*) FROM customer_order) AS placed,
       (SELECT count(*) FROM outbox_event WHERE dispatched_at IS NULL) AS events,
       (SELECT count(*) FROM job WHERE status IN ('queued', 'running')) AS jobs,
       (SELECT count(*) FROM job WHERE status = 'dead') AS dead
"""


@dataclass
class Tally:
    """Messages the sinks received (thread-safe enough: one writer per counter)."""

    mails: int = 0
    hooks: int = 0
    hook_ids: set[str] = field(default_factory=set)


class MailSink:
    """aiosmtpd handler counting the messages it accepts."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.tally.mails += 1
        return "250 OK"


def hook_receiver(tally: Tally) -> ThreadingHTTPServer:
    """A webhook receiver on loopback answering 204 to every POST, counting webhook ids."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            tally.hook_ids.add(self.headers.get("webhook-id", ""))
            tally.hooks = len(tally.hook_ids)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def subscribe(env: dict[str, str], url: str) -> str:
    """Register ``url`` for ``order.created`` through the webhooks room's own service;
    returns its signing secret."""
    from emporium.core.config import Settings
    from emporium.core.crypto.keys import load_key_file
    from emporium.core.db.base import create_engine, create_sessionmaker
    from emporium.webhooks import service
    from emporium.webhooks.delivery import WebhooksContext
    from emporium.webhooks.schemas import WebhookCreate

    settings = Settings(
        database_url=env["EMPORIUM_DATABASE_URL"],
        key_file=Path(env["EMPORIUM_KEY_FILE"]),
        webhooks_allow_private=True,
    )
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            ctx = WebhooksContext(load_key_file(settings.key_file))
            data = WebhookCreate(url=url, events=["order.created"])
            created = await service.create_endpoint(session, ctx, settings, data)
    finally:
        await engine.dispose()
    return created.secret


def proc_stat(pid: int) -> tuple[float, int, int]:
    """(CPU seconds, VmRSS kB, VmHWM kB) of ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return cpu, int(status["VmRSS"].split()[0]), int(status["VmHWM"].split()[0])


@dataclass
class Sample:
    t: float
    placed: int
    mailed: int
    hooked: int
    events: int
    jobs: int
    dead: int

    @property
    def drained(self) -> int:
        return min(self.mailed, self.hooked)

    @property
    def backlog(self) -> int:
        return self.placed - self.drained


async def sample(conn: asyncpg.Connection, tally: Tally, started: float) -> Sample:
    row = await conn.fetchrow(COUNTS)
    assert row is not None
    return Sample(
        round(time.monotonic() - started, 1),
        row["placed"],
        tally.mails,
        tally.hooks,
        row["events"],
        row["jobs"],
        row["dead"],
    )


def start_wrk(
    args: argparse.Namespace, base: str, token: str, files: tuple[Path, Path], method: str
) -> subprocess.Popen[bytes]:
    cmd = ["wrk", "-t2", f"-c{args.connections}", f"-d{args.duration:g}s", "--timeout", "30s"]
    cmd += ["-s", str(LUA), f"{base}{API}/orders", "--", str(files[0]), str(files[1])]
    cmd += ["0", token, "3", "3", method]  # no scarce line: every order is placed
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def measure(
    args: argparse.Namespace,
    dsn: str,
    tally: Tally,
    load: subprocess.Popen[bytes],
) -> tuple[list[Sample], float, float | None]:
    """Sample each second through the load and the drain; returns (samples, load seconds,
    seconds from the end of the load to an empty backlog, or None)."""
    conn = await asyncpg.connect(dsn)
    try:
        started = time.monotonic()
        samples = [await sample(conn, tally, started)]
        while load.poll() is None:
            await asyncio.sleep(1)
            samples.append(await sample(conn, tally, started))
        load_end = time.monotonic() - started
        samples.append(await sample(conn, tally, started))
        deadline = time.monotonic() + args.after
        while time.monotonic() < deadline:
            last = samples[-1]
            if last.backlog <= 0 and last.events == 0 and last.jobs == 0:
                return samples, load_end, round(last.t - load_end, 1)
            await asyncio.sleep(0.5)
            samples.append(await sample(conn, tally, started))
        return samples, load_end, None
    finally:
        await conn.close()


def report(samples: list[Sample], load_end: float, to_zero: float | None) -> dict[str, Any]:
    print("\n     t  placed  mailed  hooked  drained  backlog  events  jobs")
    for s in samples:
        print(
            f"{s.t:6.1f} {s.placed:7d} {s.mailed:7d} {s.hooked:7d} {s.drained:8d} "
            f"{s.backlog:8d} {s.events:7d} {s.jobs:5d}"
        )
    during = [s for s in samples if s.t <= load_end] or samples[:1]
    first, end = samples[0], during[-1]
    seconds = max(end.t - first.t, 1e-9)
    placed_rate = (end.placed - first.placed) / seconds
    drained_rate = (end.drained - first.drained) / seconds
    peak_backlog = max(s.backlog for s in samples)
    return {
        "load_seconds": round(seconds, 1),
        "placed_per_s": round(placed_rate, 1),
        "drained_per_s": round(drained_rate, 1),
        "drained_over_placed": round(drained_rate / placed_rate, 3) if placed_rate else None,
        "backlog_at_load_end": end.backlog,
        "peak_backlog": peak_backlog,
        "seconds_to_empty_after_load": to_zero,
        "orders": samples[-1].placed,
        "drained": samples[-1].drained,
        "dead_jobs": samples[-1].dead,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Job workers against the checkout load.")
    parser.add_argument("--pg", default=DEFAULT_PG, help="server DSN without database")
    parser.add_argument("--db", default=DEFAULT_DB, help="bench database (dropped and created)")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--duration", type=float, default=20, help="seconds of checkout load")
    parser.add_argument("--after", type=float, default=60, help="seconds allowed to drain")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--job-workers", type=int, default=2, help="emporium worker processes")
    parser.add_argument("--src", type=Path, help="a src/ directory to run instead of the tree's")
    parser.add_argument(
        "--worker-env", action="append", default=[], metavar="KEY=VALUE", help="for workers"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the first worker")
    parser.add_argument("--output", type=Path, default=RESULTS / "jobs_drain.json")
    args = parser.parse_args()
    # what checkout.prepare_database reads
    args.products, args.stock, args.scarce, args.scarce_stock = 300, 1_000_000, 4, 10
    return args


def environment(args: argparse.Namespace, smtp_port: int) -> dict[str, str]:
    import seed

    env = seed.emporium_env(args.pg, args.db)
    if args.src:
        env["PYTHONPATH"] = os.pathsep.join([str(args.src), env.get("PYTHONPATH", "")])
    env.update(RATE_LIMITS_LIFTED)
    env.update(
        EMPORIUM_CURRENCY="EUR",
        EMPORIUM_JOBS_EMBEDDED="false",  # the jobs run in the workers only
        EMPORIUM_MAIL_BACKEND="smtp",
        EMPORIUM_SMTP_HOST="127.0.0.1",
        EMPORIUM_SMTP_PORT=str(smtp_port),
        EMPORIUM_SMTP_STARTTLS="false",
        EMPORIUM_WEBHOOKS_ALLOW_PRIVATE="true",
    )
    return env


def start_workers(args: argparse.Namespace, env: dict[str, str]) -> list[Server]:
    import seed

    extra = dict(item.partition("=")[::2] for item in args.worker_env)
    workers = []
    for n in range(args.job_workers):
        command = [*seed.emporium_command(), "worker", "--name", f"w{n}"]
        worker = Server(f"jobs-worker{n}", command, {**env, **extra}, 0)
        worker.log_path = RESULTS / f"jobs-worker{n}.log"
        worker.start()
        workers.append(worker)
    return workers


def wait_started(workers: list[Server], timeout: float = 120.0) -> None:
    """Until every worker printed that it runs jobs (its imports are done)."""
    deadline = time.monotonic() + timeout
    for worker in workers:
        while b"running jobs" not in worker.log_path.read_bytes():
            if worker.proc is None or worker.proc.poll() is not None:
                raise BenchError(f"{worker.name} exited; see {worker.log_path}")
            if time.monotonic() > deadline:
                raise BenchError(f"{worker.name} not started; see {worker.log_path}")
            time.sleep(0.2)


def profile(args: argparse.Namespace, worker: Server) -> subprocess.Popen[bytes] | None:
    """``--profile``: py-spy on the first worker through the load and the drain."""
    pyspy = Path(sys.executable).parent / "py-spy"
    if not args.profile or worker.proc is None or not pyspy.exists():
        return None
    out = RESULTS / "profile-jobs-worker.txt"
    seconds = str(round(args.duration + 15))
    cmd = [str(pyspy), "record", "--pid", str(worker.proc.pid), "--duration", seconds]
    cmd += ["--rate", "100", "--nonblocking", "--format", "raw", "--output", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(args: argparse.Namespace, workdir: Path, servers: list[Server]) -> dict[str, Any]:
    import seed

    seeded = prepare_database(args)
    plenty, scarce = asyncio.run(variant_ids(args.pg, args.db, args.stock))
    files = (workdir / "variants.txt", workdir / "scarce.txt")
    files[0].write_text("\n".join(plenty) + "\n")
    files[1].write_text("\n".join(scarce) + "\n")
    tally = Tally()
    smtp = Controller(MailSink(tally), hostname="127.0.0.1", port=free_port())
    smtp.start()
    receiver = hook_receiver(tally)
    try:
        env = environment(args, smtp.port)
        hook_url = f"http://127.0.0.1:{receiver.server_address[1]}/hooks"
        asyncio.run(subscribe(env, hook_url))
        port = free_port()
        command = [*seed.emporium_command(), "serve", "--port", str(port)]
        server = Server("jobs-emporium", [*command, "--workers", str(args.workers)], env, port)
        server.log_path = RESULTS / "jobs-emporium-server.log"
        servers.append(server)
        server.start()
        server.wait_ready()
        buyer = Customer(server.base)
        token = buyer.token()
        workers = start_workers(args, env)
        servers.extend(workers)
        wait_started(workers)
        time.sleep(2)  # the first polls
        idle_rss = [proc_stat(w.proc.pid)[1] for w in workers if w.proc]
        busy = machine_busy_pct()
        loadavg = Path("/proc/loadavg").read_text().split()[:3]
        print(f"machine before the load: {busy:.0f}% busy, load average {' '.join(loadavg)}")
        cpu0 = [proc_stat(w.proc.pid)[0] for w in workers if w.proc]
        server_cpu0 = server.cpu_seconds()
        spy = profile(args, workers[0])
        load = start_wrk(args, server.base, token, files, seeded["method_id"])
        samples, load_end, to_zero = asyncio.run(
            measure(args, seed.dsn(args.pg, args.db), tally, load)
        )
        stats = [proc_stat(w.proc.pid) for w in workers if w.proc]
        result = report(samples, load_end, to_zero)
        if spy is not None:
            import pyspy_summary

            spy.wait()
            print(pyspy_summary.summarise(RESULTS / "profile-jobs-worker.txt", top=25))
        orders = max(result["orders"], 1)
        result.update(
            job_workers=args.job_workers,
            worker_cpu_ms_per_order=round(
                sum(s[0] - c for s, c in zip(stats, cpu0, strict=True)) * 1000 / orders, 2
            ),
            server_cpu_ms_per_order=round((server.cpu_seconds() - server_cpu0) * 1000 / orders, 2),
            worker_rss_mb_idle=[round(kb / 1024, 1) for kb in idle_rss],
            worker_rss_mb_after=[round(s[1] / 1024, 1) for s in stats],
            worker_rss_mb_peak=[round(s[2] / 1024, 1) for s in stats],
            machine_busy_pct_before=round(busy, 1),
            loadavg_before=loadavg,
        )
        return result
    finally:
        smtp.stop()
        receiver.shutdown()


def main() -> int:
    args = parse_args()
    import seed

    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    RESULTS.mkdir(exist_ok=True)
    servers: list[Server] = []
    workdir = Path(tempfile.mkdtemp(prefix="emporium-bench-jobs-"))
    try:
        result = run(args, workdir, servers)
    except BenchError as exc:
        print(f"\n!!! BENCH ERROR: {exc}", file=sys.stderr)
        return 1
    finally:
        for server in servers:
            with contextlib.suppress(Exception):
                server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        if not args.keep_db:
            asyncio.run(seed.drop_database(args.pg, args.db))
            seed.key_file(args.db).unlink(missing_ok=True)
    source = str(args.src) if args.src else f"working tree ({git_commit()})"
    result["source"] = source
    print(
        f"\nsource: {source}; {args.job_workers} workers; load {result['load_seconds']} s at "
        f"{args.connections} connections"
    )
    print(
        f"placed {result['placed_per_s']}/s, drained {result['drained_per_s']}/s "
        f"(ratio {result['drained_over_placed']}); backlog at the end of the load "
        f"{result['backlog_at_load_end']} orders, peak {result['peak_backlog']}; "
        f"empty {result['seconds_to_empty_after_load']} s after the load"
    )
    print(
        f"CPU per order: server {result['server_cpu_ms_per_order']} ms, workers "
        f"{result['worker_cpu_ms_per_order']} ms; worker RSS idle "
        f"{result['worker_rss_mb_idle']} MB, after {result['worker_rss_mb_after']} MB, "
        f"peak {result['worker_rss_mb_peak']} MB"
    )
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["seconds_to_empty_after_load"] is not None else 1


if __name__ == "__main__":
    sys.exit(main())
