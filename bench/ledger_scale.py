"""Benchmark: a network's ledger at 1M records — ingest rate (SQLite, PostgreSQL, two PostgreSQL
workers) and the time of a yearly report on each.

Records are generated as stations write them (chained, hashed, visits of 1–8 items, Luhn-like
codes, 20 % manual-free weighings in boxes, a void now and then) over two calendar years, in
batches of 500 as the uploader sends them. Ingest is timed through ``store.ingest_many`` (eight
batches per transaction, the service's group commit), the wire decoding left out: it is the
same for both databases and measured by bench/sync_throughput.py. Two workers are two processes
with a store each, batches dealt round-robin as a shared subscription does (so the same station
reaches both, out of order). PostgreSQL runs durable (fsync on) from Debian's package, started
in a temp dir like the tests' server.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.reports import Period, build_report
from ledger.store import SqlLedgerStore, open_store
from sync.wire import RECORD_FIELDS, Batch, genesis_hash, record_hash
from tests.support.pg import PostgresServer

BATCH = 500
GROUP = 8  # batches per transaction
YEARS = (2025, 2026)
TARGET_REPORT_S = 1.0
TARGET_PG_RPS = 20_000
# A server tuned for ingest as docs/scaling.md advises (still durable: fsync, synchronous commit
# and full-page writes on): a buffer cache that holds the indexes' hot pages, and checkpoints
# spaced out so that a million inserts are not also a million full-page images in the WAL.
PG_SETTINGS = {"shared_buffers": "1GB", "max_wal_size": "4GB", "checkpoint_timeout": "15min"}


# -- data ------------------------------------------------------------------------------------
def generate(n: int, stations: int, seed: int = 1) -> list[Batch]:
    """``n`` records over ``stations`` stations and two years, as batches in send order
    (stations interleaved, each station's batches in seq order)."""
    rng = random.Random(seed)
    categories = [
        f"CAT-{c}" for c in ("VET", "ALIM", "HYG", "BEBE", "JOUET", "LIVRE", "MEUB", "ELEC")
    ]
    referrers = [f"{r:03d}" for r in range(1, 31)]
    people = [
        (f"B{rng.choice(referrers)}{rng.randrange(10**7):07d}", rng.choice(referrers))
        for _ in range(max(50, n // 40))
    ]
    start = time.mktime((YEARS[0], 1, 1, 8, 0, 0, 0, 0, 0))
    span = time.mktime((YEARS[-1] + 1, 1, 1, 8, 0, 0, 0, 0, 0)) - start
    per_station = [n // stations + (1 if i < n % stations else 0) for i in range(stations)]
    streams: list[list[Batch]] = []
    for s, count in enumerate(per_station):
        name = f"asso-{s + 1:02d}"
        epoch = uuid.UUID(int=rng.getrandbits(128)).hex
        prev = genesis_hash(epoch)
        boot = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        records: list[Any] = []  # rows as a station writes them (Batch takes any mapping)
        left = 0
        visit: dict[str, Any] = {}
        last_weighing = 0
        for i in range(count):
            seq = i + 1
            t = start + span * i / max(1, count)
            at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))
            row: dict[str, Any] = dict.fromkeys(RECORD_FIELDS)
            if left == 0:
                code, referrer = rng.choice(people)
                visit = {
                    "visit": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "beneficiary": code,
                    "referrer": referrer,
                }
                left = rng.randint(1, 8)
            left -= 1
            row.update(visit)
            if last_weighing and rng.random() < 0.01:
                row.update(kind="void", voids=last_weighing, reason="undo")
                last_weighing = 0
            else:
                net = rng.randrange(10, 5_000) * 5_000
                row.update(
                    kind="weighing",
                    category=rng.choice(categories),
                    source="manual" if rng.random() < 0.02 else "scale",
                    stable=1,
                    gross_mg=net,
                    tare_mg=0,
                    net_mg=net,
                    unit="kg",
                    scale_id="mt-sics",
                    raw=f"S S {net / 1_000_000:>10.3f} kg",
                )
                last_weighing = seq
            row.update(
                seq=seq,
                uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                epoch=epoch,
                station=name,
                recorded_at=at,
                mono_ns=int(t * 1e9),
                boot_id=boot,
                clock_synced=1,
                prev_hash=prev,
            )
            row["hash"] = prev = record_hash(row)
            records.append(row)
        streams.append(
            [
                Batch(name, epoch, tuple(records[k : k + BATCH]))
                for k in range(0, len(records), BATCH)
            ]
        )
    # interleave: every station sends its next batch in turn
    out: list[Batch] = []
    for k in range(max(len(s) for s in streams)):
        out += [s[k] for s in streams if k < len(s)]
    return out


# -- ingest ----------------------------------------------------------------------------------
def ingest(store: SqlLedgerStore, batches: Sequence[Batch]) -> int:
    n = 0
    for k in range(0, len(batches), GROUP):
        for result in store.ingest_many(list(batches[k : k + GROUP])):
            n += result.inserted
    return n


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid``, from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_ingest(url: str, batches: Sequence[Batch]) -> tuple[float, int, float, float]:
    """Wall seconds, records stored, and the CPU seconds of the worker (this process) and of
    its PostgreSQL server process (0 for SQLite): the CPU is the steady figure on a busy box."""
    store = open_store(url)
    backend = (
        int(store.sql.exec("SELECT pg_backend_pid()")[0][0]) if store.dialect != "sqlite" else 0
    )
    server0 = cpu_seconds(backend) if backend else 0.0
    cpu0, t0 = time.process_time(), time.perf_counter()
    n = ingest(store, batches)
    dt, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    server = cpu_seconds(backend) - server0 if backend else 0.0
    store.close()
    return dt, n, cpu, server


_SHARED: list[Batch] = []  # the batches, inherited by forked workers


def _worker(url: str, index: int, workers: int, go: Any, out: Any) -> None:
    store = open_store(url)
    mine = _SHARED[index::workers]  # round robin, as the broker deals a shared subscription
    go.wait()
    n = ingest(store, mine)
    out.put((index, n, time.perf_counter()))
    store.close()


def two_workers(url: str, workers: int = 2) -> tuple[float, int]:
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()
    out = ctx.Queue()
    open_store(url).close()  # the schema first, not in the timing
    procs = [ctx.Process(target=_worker, args=(url, i, workers, go, out)) for i in range(workers)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # each has opened its store
    t0 = time.perf_counter()
    go.set()
    results = [out.get(timeout=3600) for _ in procs]
    for p in procs:
        p.join(60)
        if p.exitcode != 0:
            raise SystemExit(f"worker exited with {p.exitcode}")
    return max(r[2] for r in results) - t0, sum(r[1] for r in results)


def check(url: str, expected: int) -> str:
    store = open_store(url)
    rows = store.fetch(
        "SELECT count(*) AS n, (SELECT sum(acked_through) FROM heads) AS acked, "
        "(SELECT count(*) FROM conflicts) AS conflicts FROM records"
    )[0]
    store.close()
    if (rows["n"], rows["acked"], rows["conflicts"]) != (expected, expected, 0):
        raise SystemExit(f"ingest check failed on {url}: {rows}, expected {expected}")
    return f"{expected} records, all acked, no conflict"


# -- report ----------------------------------------------------------------------------------
def report_time(url: str, year: int, repeat: int = 3) -> tuple[float, float, str]:
    """(first, median of the next ``repeat``) seconds of the yearly report by category, each in
    a new store (a new process's connection: no month digest decoded yet), after the month
    digests were built as `ledger run` builds them (docs/reports.md): the report a user runs."""
    store = open_store(url)
    # what autovacuum / a nightly ANALYZE would have done by the time anyone asks
    store.analyze()
    store.refresh_digests()
    store.close()

    def once() -> tuple[float, str]:
        fresh = open_store(url)
        try:
            t0 = time.perf_counter()
            report = build_report(fresh, Period.year(year), ("category",))
            dt = time.perf_counter() - t0
        finally:
            fresh.close()
        return dt, f"{report.total.kg / 1000:,.1f} t, {report.total.beneficiaries} persons"

    first, summary = once()
    times = [once()[0] for _ in range(repeat)]
    return first, statistics.median(times), summary


# -- main ------------------------------------------------------------------------------------
def _line(label: str, value: float, unit: str, target: str) -> str:
    return (
        f"| {label} | {value:,.3f} {unit} | {target} |"
        if unit == "s"
        else (f"| {label} | {value:,.0f} {unit} | {target} |")
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="(%(default)s)")
    parser.add_argument("--stations", type=int, default=20, help="(%(default)s)")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp dir, removed")
    args = parser.parse_args(argv)
    if args.records < BATCH:
        parser.error(f"--records must be at least {BATCH}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pesee-ledger-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    cleanups: list[Callable[[], None]] = []
    try:
        print(f"generating {args.records:,} records…", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        _SHARED[:] = generate(args.records, args.stations)
        print(f"  {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        server = PostgresServer(durable=True, settings=PG_SETTINGS).start()
        cleanups.append(server.stop)
        pg_one = server.create_database("bench_one")
        pg_two = server.create_database("bench_two")
        sqlite_url = str(workdir / "ledger.db")

        print("SQLite, one writer…", file=sys.stderr, flush=True)
        sqlite_s, n, sqlite_cpu, _ = timed_ingest(sqlite_url, _SHARED)
        sqlite_check = check(sqlite_url, n)
        print("PostgreSQL, one worker…", file=sys.stderr, flush=True)
        pg_s, n_pg, pg_cpu, pg_server_cpu = timed_ingest(pg_one, _SHARED)
        pg_check = check(pg_one, n_pg)
        print("PostgreSQL, two workers…", file=sys.stderr, flush=True)
        two_s, n_two = two_workers(pg_two)
        two_check = check(pg_two, n_two)

        year = YEARS[-1]
        print(f"yearly report {year} by category…", file=sys.stderr, flush=True)
        sq_first, sq_report, sq_sum = report_time(sqlite_url, year)
        pg_first, pg_report, pg_sum = report_time(pg_one, year)
    finally:
        for cleanup in cleanups:
            cleanup()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    rps = {"sqlite": n / sqlite_s, "pg": n_pg / pg_s, "two": n_two / two_s}
    print()
    print(
        f"{args.records:,} records, {args.stations} stations, {YEARS[0]}–{YEARS[-1]}; "
        f"{os.cpu_count()} CPUs; batches of {BATCH}, {GROUP} per transaction"
    )
    print()
    print("| measure | value | target |")
    print("|---|---:|---|")
    print(_line("SQLite ingest (one writer)", rps["sqlite"], "records/s", "—"))
    print(_line("PostgreSQL ingest, one worker", rps["pg"], "records/s", f"≥ {TARGET_PG_RPS:,}"))
    print(_line("PostgreSQL ingest, two workers", rps["two"], "records/s", f"≥ {TARGET_PG_RPS:,}"))
    cpu_us = {
        "sqlite": sqlite_cpu / n * 1e6,
        "pg_worker": pg_cpu / n_pg * 1e6,
        "pg_server": pg_server_cpu / n_pg * 1e6,
    }
    print(f"| · CPU per record, SQLite writer | {cpu_us['sqlite']:.1f} µs | — |")
    print(
        f"| · CPU per record, PostgreSQL one worker / its server process | "
        f"{cpu_us['pg_worker']:.1f} / {cpu_us['pg_server']:.1f} µs | — |"
    )
    print(
        _line(f"yearly report {year} by category, SQLite", sq_report, "s", f"≤ {TARGET_REPORT_S}")
    )
    print(
        _line(
            f"yearly report {year} by category, PostgreSQL", pg_report, "s", f"≤ {TARGET_REPORT_S}"
        )
    )
    print()
    print(
        f"Checks: SQLite {sqlite_check}; PostgreSQL {pg_check}; two workers {two_check}. "
        f"Report {year}: {sq_sum} (SQLite) / {pg_sum} (PostgreSQL); first run "
        f"{sq_first:.3f} s / {pg_first:.3f} s, then the median of 3."
    )
    if sq_sum != pg_sum:
        print("MISMATCH: the two databases give different reports", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "bench": "ledger_scale",
                "sqlite_ingest_rps": round(rps["sqlite"]),
                "pg_ingest_rps": round(rps["pg"]),
                "pg_two_workers_rps": round(rps["two"]),
                "report_1m_sqlite_s": round(sq_report, 3),
                "report_1m_pg_s": round(pg_report, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
