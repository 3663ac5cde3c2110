"""Benchmark: yearly reports from month digests against the same reports from the records.

Generates records as bench/ledger_scale.py does (20 stations, visits of 1–8 items, 1 % voids;
``--years`` calendar years ending in 2026, ``--records`` in all), ingests them into a SQLite
file and a durable PostgreSQL, then times two reports of 2026 — ``ledger report --by category``
(``build_report(by=("category",))``) and the dashboard's (by category, ``detail=True``: every
month's persons and visits, and the year before) — each way:

- baseline, records: the store seen without its digests (the SQL of ledger/store/queries.py
  over the records, as every report ran before the digests); first run and median of 3;
- digests, first build: right after the ingest, every month stale (an upgraded database, or
  nothing read since a bulk load): the report builds the months it reads and keeps them;
- digests, new process: a new store (no decoded digest in memory), the digests kept;
- digests, after a record: one new record in December 2026, then a new store: that month is
  built again, the others read;
- digests, warm: the same store again (median of 3).

Checks that both ways give the same report. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ledger_scale  # bench/ledger_scale.py: the same generator and group-commit ingest

from ledger.reports import Period, Report, build_report
from ledger.store import open_store
from sync.wire import Batch, decode_batch, encode
from tests.support.ledger_dataset import Journal
from tests.support.pg import PostgresServer

YEAR = 2026


class Records:
    """A store seen without its digests: reports read the records (the baseline)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.dialect = store.dialect

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self.store.fetch(sql, params)  # type: ignore[no-any-return]

    def registries(self) -> Any:
        return self.store.registries()


REPORTS: dict[str, Callable[[Any], Report]] = {
    "report by category": lambda s: build_report(s, Period.year(YEAR), ("category",)),
    "dashboard's report": lambda s: build_report(
        s, Period.year(YEAR), ("category",), compare=True, detail=True
    ),
}


def timed(fn: Callable[[], Report]) -> tuple[float, Report]:
    t0 = time.perf_counter()
    report = fn()
    return time.perf_counter() - t0, report


def one_record(url: str, n: int) -> None:
    journal = Journal(f"late-{n}", random.Random(n))
    at = datetime(YEAR, 12, 20, 10, tzinfo=UTC)
    journal.append("weighing", at, net_mg=5_000_000, visit=f"v-{n}", category="CAT-VET")
    store = open_store(url)
    try:
        batch = Batch(journal.station, journal.epoch, tuple(journal.records))  # type: ignore[arg-type]
        store.ingest(decode_batch(encode(batch)))
    finally:
        store.close()


def measure(url: str) -> dict[str, dict[str, float]]:
    """Seconds per report and way, on the database at ``url`` (digests all stale at start)."""
    out: dict[str, dict[str, float]] = {name: {} for name in REPORTS}
    store = open_store(url)
    store.analyze()
    expected: dict[str, Report] = {}
    for name, fn in REPORTS.items():
        first, expected[name] = timed(lambda fn=fn: fn(Records(store)))
        out[name]["records_first"] = first
        out[name]["records"] = statistics.median(
            timed(lambda fn=fn: fn(Records(store)))[0] for _ in range(3)
        )
    # the first build, by the first report asked
    for name, fn in REPORTS.items():
        dt, report = timed(lambda fn=fn: fn(store))
        if report != expected[name]:
            raise SystemExit(f"{name}: digests and records disagree on {url}")
        out[name]["digests_first_build"] = dt
    store.close()
    for name, fn in REPORTS.items():
        fresh = open_store(url)
        out[name]["digests_new_process"] = timed(lambda fn=fn, s=fresh: fn(s))[0]
        out[name]["digests_warm"] = statistics.median(
            timed(lambda fn=fn, s=fresh: fn(s))[0] for _ in range(3)
        )
        fresh.close()
    for k, (name, fn) in enumerate(REPORTS.items()):
        one_record(url, k)
        fresh = open_store(url)
        dt, report = timed(lambda fn=fn, s=fresh: fn(s))
        if report != fn(Records(fresh)):
            raise SystemExit(f"{name}: digests and records disagree after a record on {url}")
        out[name]["digests_after_record"] = dt
        fresh.close()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--years", type=int, default=2, help="calendar years ending in 2026")
    parser.add_argument("--stations", type=int, default=20)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    ledger_scale.YEARS = tuple(range(YEAR - args.years + 1, YEAR + 1))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="pesee-digests-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"generating {args.records:,} records over {args.years} years …", flush=True)
    batches = ledger_scale.generate(args.records, args.stations)
    results: dict[str, dict[str, dict[str, float]]] = {}
    try:
        url = str(work / "ledger.db")
        store = open_store(url)
        ledger_scale.ingest(store, batches)
        store.close()
        results["sqlite"] = measure(url)
        if not args.no_pg:
            with PostgresServer() as server:
                url = server.create_database()
                store = open_store(url)
                ledger_scale.ingest(store, batches)
                store.close()
                results["postgresql"] = measure(url)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    ways = [
        ("records_first", "baseline: from the records, first run"),
        ("records", "baseline: from the records, median of 3"),
        ("digests_first_build", "digests: first build (every month stale)"),
        ("digests_new_process", "digests: new process, digests kept"),
        ("digests_after_record", "digests: new process, after a new record"),
        ("digests_warm", "digests: warm (same store), median of 3"),
    ]
    for name in REPORTS:
        print(f"\n{name}, {YEAR}, {args.records:,} records over {args.years} years (seconds)")
        dbs = list(results)
        print("| way | " + " | ".join(dbs) + " |")
        print("|---|" + "---:|" * len(dbs))
        for key, label in ways:
            print(f"| {label} | " + " | ".join(f"{results[d][name][key]:.3f}" for d in dbs) + " |")
    line = {"bench": "report_digests", "records": args.records, "years": args.years}
    for db, per in results.items():
        for name, figures in per.items():
            tag = "report" if name == "report by category" else "dashboard"
            for key, value in figures.items():
                line[f"{db}_{tag}_{key}_s"] = round(value, 3)
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
