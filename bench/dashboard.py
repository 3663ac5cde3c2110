"""Benchmark: the dashboard's pages over a generated year — cold and warm, SQLite and PostgreSQL.

A year of records (default 1M, bench/ledger_scale.py's generator: 20 stations, visits of 1–8
items, a void now and then) is ingested into each database; `ledger serve` runs on it as systemd
would, and the pages are fetched over HTTP after logging in, as a browser does:

- overview, cold: the first load of the year's page (nothing computed yet);
- overview, warm: the same page again (the median of ``--repeat``);
- overview, after a record: one new record arrives, then the page (the cache is stale);
- another tab's CSV (by referring structure: its own report, cold); the persons page and the
  funders page, cold; the fleet page.

Baseline, in the same run and the same database: the overview's figures as the dashboard
computed them before the shared report cache — one ``build_report`` per table, every table its
own months, distinct counts and totals, and its own matplotlib chart (``baseline_overview``).
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ledger_scale  # bench/ledger_scale.py: the same generator and ingest

from common.i18n import speaking
from ledger.charts import bars_svg, monthly_kg_svg
from ledger.report_render import summary_lines
from ledger.reports import Period, build_report, load_names
from ledger.store import open_store
from ledger.web.figures import GROUPS
from sync.wire import Batch, decode_batch, encode
from tests.support.dashboard import cookie_of, get, http_login, ledger_config, serving
from tests.support.ledger_dataset import Journal
from tests.support.pg import PostgresServer

YEAR = 2025  # not this year: `ledger serve` warms this year's page up at start
TARGET_S = 1.0


def baseline_overview(url: str) -> float:
    """Seconds for the overview as the dashboard computed it before (in-process, no HTTP): one
    report per table, a matplotlib chart per table and for the months, the sentences."""
    store = open_store(url)
    try:
        t0 = time.perf_counter()
        with speaking("fr"):
            names = load_names(store)
            reports = []
            for n, by in enumerate(GROUPS):
                first = n == 0
                reports.append(
                    build_report(
                        store, Period.year(YEAR), (by,), names=names, compare=first, detail=first
                    )
                )
            summary_lines(reports[0], "fr")
            monthly_kg_svg(reports[0], lang="fr")
            for by, report in zip(GROUPS, reports, strict=True):
                bars_svg(report.rows, by, lang="fr", limit=12)
        return time.perf_counter() - t0
    finally:
        store.close()


def one_more_record(url: str, n: int) -> None:
    """A record from a new station in the benched year: the figures change, the cache is stale."""
    journal = Journal(f"late-{n}", random.Random(n))
    journal.append("weighing", datetime(YEAR, 6, 1, 10, tzinfo=UTC), net_mg=5_000_000, visit="v")
    store = open_store(url)
    try:
        batch = Batch(journal.station, journal.epoch, tuple(journal.records))  # type: ignore[arg-type]
        store.ingest(decode_batch(encode(batch)))
    finally:
        store.close()


def timed(fetch: Callable[[], tuple[int, str]]) -> float:
    t0 = time.perf_counter()
    status, body = fetch()
    dt = time.perf_counter() - t0
    if status != 200:
        raise SystemExit(f"page failed ({status}): {body[:300]}")
    return dt


def pages(url: str, workdir: Path, repeat: int) -> dict[str, float]:
    """The page times of one database, `ledger serve` on it."""
    config = ledger_config(workdir, url, cache_seconds="0")
    out: dict[str, float] = {}
    with serving(config, workdir / "serve.log") as (base, _port):
        session = cookie_of(http_login(base)[1])

        def page(path: str) -> Callable[[], tuple[int, str]]:
            def fetch() -> tuple[int, str]:
                status, _headers, body = get(base + path, cookie=session)
                return status, body

            return fetch

        overview = page(f"/?year={YEAR}")
        out["overview_cold_s"] = timed(overview)
        out["overview_warm_s"] = statistics.median(timed(overview) for _ in range(repeat))
        stale = []
        for n in range(repeat):
            one_more_record(url, n)
            stale.append(timed(overview))
        out["overview_after_record_s"] = statistics.median(stale)
        out["csv_after_overview_s"] = timed(page(f"/export/referrer.csv?year={YEAR}"))
        out["persons_cold_s"] = timed(page(f"/persons?year={YEAR}"))
        out["funders_cold_s"] = timed(page(f"/funders?year={YEAR}"))
        out["fleet_s"] = statistics.median(timed(page("/fleet")) for _ in range(repeat))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="(%(default)s)")
    parser.add_argument("--stations", type=int, default=20, help="(%(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="(%(default)s)")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp dir, removed")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pesee-dashboard-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    cleanups: list[Callable[[], None]] = []
    results: dict[str, dict[str, float]] = {}
    try:
        print(f"generating {args.records:,} records in {YEAR}…", file=sys.stderr, flush=True)
        ledger_scale.YEARS = (YEAR, YEAR)  # every record in the benched year
        batches = ledger_scale.generate(args.records, args.stations)
        server = PostgresServer(durable=True, settings=ledger_scale.PG_SETTINGS).start()
        cleanups.append(server.stop)
        urls = {"sqlite": str(workdir / "ledger.db"), "postgresql": server.create_database()}
        for name, url in urls.items():
            print(f"{name}: ingest…", file=sys.stderr, flush=True)
            store = open_store(url)
            ledger_scale.ingest(store, batches)
            store.analyze()
            store.close()
            print(f"{name}: baseline, then the pages…", file=sys.stderr, flush=True)
            base = statistics.median(baseline_overview(url) for _ in range(args.repeat))
            (workdir / name).mkdir(exist_ok=True)
            results[name] = {"baseline_overview_s": base, **pages(url, workdir / name, args.repeat)}
    finally:
        for cleanup in cleanups:
            cleanup()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(
        f"{args.records:,} records in {YEAR}, {args.stations} stations; {os.cpu_count()} CPUs; "
        f"{len(GROUPS)} tables on the overview ({', '.join(GROUPS)}), the months and last year"
    )
    print()
    rows = [
        (
            "baseline: the overview as before (a report and a chart per table)",
            "baseline_overview_s",
        ),
        ("overview, cold (first load)", "overview_cold_s"),
        ("overview, warm", "overview_warm_s"),
        ("overview, after a new record", "overview_after_record_s"),
        ("another tab's CSV (its report cold)", "csv_after_overview_s"),
        ("persons page, cold (new/returning, visits, years)", "persons_cold_s"),
        ("funders page, cold (FEAD; no eco mapping)", "funders_cold_s"),
        ("fleet page", "fleet_s"),
    ]
    print("| page | SQLite | PostgreSQL | target |\n|---|---:|---:|---|")
    for label, key in rows:
        target = "—" if key.startswith("baseline") else f"≤ {TARGET_S} s"
        print(
            f"| {label} | {results['sqlite'][key]:.3f} s | {results['postgresql'][key]:.3f} s "
            f"| {target} |"
        )
    print(
        json.dumps(
            {
                "bench": "dashboard",
                "records": args.records,
                **{f"{db}_{k}": round(v, 3) for db, r in results.items() for k, v in r.items()},
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
