"""Benchmark: the dashboard's pages over a generated year — cold and warm, SQLite and PostgreSQL.

A year of records (default 1M, bench/ledger_scale.py's generator: 20 stations, visits of 1–8
items, a void now and then; ``--years N`` spreads them over N years ending in the benched one,
issue 18's "five years, 5M records": ``--records 5000000 --years 5``) is ingested into each
database; `ledger serve` runs on it as systemd
would, and the pages are fetched over HTTP after logging in, as a browser does. Before the
pages, the month and visit digests are built as `ledger run` builds them in the background
after a bulk load (``store.refresh_digests()``, timed: ``keeper_build``):

- overview, cold: the first load of the year's page (no report computed yet, the digests kept);
- overview, warm: the same page again (the median of ``--repeat``);
- overview, after a record: one new record arrives, then the page (the cache is stale);
- another tab's CSV (by referring structure: its own report, cold); the fleet page;
- the persons page (new/returning, visits per person, the years' trend) and the funders page
  (FEAD indicators over households known for 3 persons in 4, an eco-organism's declaration):
  first load, warm, and after a record.

Baselines, in the same run and the same database: the overview's figures as the dashboard
computed them before the shared report cache — one ``build_report`` per table, every table its
own months, distinct counts and totals, and its own matplotlib chart (``baseline_overview``);
the persons and funders pages' figures from the records' SQL as before the visit digests
(``baseline_persons``, ``baseline_funders``: the ``*_sql`` functions, in-process), beside the
same figures from the digests kept in the database by a fresh connection (``digests_*``).
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
from ledger.store.eco import weights_by_category, weights_by_category_sql
from ledger.store.households import (
    Composition,
    fead_counts,
    fead_counts_sql,
    fead_mass,
    fead_mass_sql,
)
from ledger.store.persons import (
    first_years,
    first_years_sql,
    new_and_returning,
    new_and_returning_sql,
    visits_per_person,
    visits_per_person_sql,
)
from ledger.web.figures import GROUPS
from sync.wire import Batch, Registry, decode_batch, encode
from tests.support.dashboard import cookie_of, get, http_login, ledger_config, serving
from tests.support.ledger_dataset import Journal
from tests.support.pg import PostgresServer

YEAR = 2025  # not this year: `ledger serve` warms this year's page up at start
TARGET_S = 1.0  # every page, both databases (issue 18)
TARGET_FIVE_YEARS_S = 2.0  # the same over five years of records (5M)


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


# an eco-organism's mapping of the generator's categories (ledger/eco.example.toml's shape)
ECO = {
    "organisms": [{"code": "ecomaison", "name": "Ecomaison"}],
    "categories": [
        {"organism": "ecomaison", "code": "AMEUB", "name": "Mobilier", "stream": "Assises"},
        {"organism": "ecomaison", "code": "JOUET", "name": "Jouets", "stream": "Autres jeux"},
    ],
    "mappings": [
        {"organism": "ecomaison", "category": "CAT-MEUB", "declares": "AMEUB"},
        {"organism": "ecomaison", "category": "CAT-JOUET", "declares": "JOUET"},
    ],
}


def office(url: str) -> None:
    """What the office imports: compositions for 3 persons in 4 (some with two spans), the
    eco-organism's mapping."""
    store = open_store(url)
    try:
        codes = [r["beneficiary"] for r in store.fetch("SELECT beneficiary FROM person_ids")]
        homes = []
        for n, code in enumerate(sorted(codes)):
            if n % 4 == 3:
                continue
            homes.append(Composition(code, women=1, men=n % 2, children_0_15=n % 3))
            if n % 4 == 2:  # a birth in the autumn: two spans
                homes[-1] = Composition(code, until=f"{YEAR}-09-30", women=1, children_0_15=1)
                homes.append(Composition(code, since=f"{YEAR}-10-01", women=1, children_0_15=2))
        store.import_households(homes)
        store.set_registry(Registry(1, extra={"eco": ECO}))
    finally:
        store.close()


def persons_figures(url: str, old: bool) -> float:
    """Seconds for the persons page's figures (in-process, a new connection): from the
    records' SQL (``old``, as before the visit digests) or from the digests kept."""
    store = open_store(url)
    bounds = Period.year(YEAR).bounds()
    try:
        t0 = time.perf_counter()
        if old:
            new_and_returning_sql(store, bounds)
            visits_per_person_sql(store, bounds)
            first_years_sql(store)
        else:
            new_and_returning(store, bounds)
            visits_per_person(store, bounds)
            first_years(store)
        return time.perf_counter() - t0
    finally:
        store.close()


def funders_figures(url: str, old: bool) -> float:
    """Seconds for the funders page's figures (FEAD and the eco declaration's sums), as
    :func:`persons_figures`."""
    store = open_store(url)
    bounds = Period.year(YEAR).bounds()
    try:
        t0 = time.perf_counter()
        if old:
            fead_counts_sql(store, bounds)
            fead_mass_sql(store, bounds)
            weights_by_category_sql(store, bounds)
        else:
            fead_counts(store, bounds)
            fead_mass(store, bounds)
            weights_by_category(store, bounds)
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
        out["fleet_s"] = statistics.median(timed(page("/fleet")) for _ in range(repeat))
        persons = page(f"/persons?year={YEAR}")
        funders = page(f"/funders?year={YEAR}&organism=ecomaison")
        out["persons_first_s"] = timed(persons)
        out["persons_warm_s"] = statistics.median(timed(persons) for _ in range(repeat))
        out["funders_first_s"] = timed(funders)
        out["funders_warm_s"] = statistics.median(timed(funders) for _ in range(repeat))
        after: dict[str, list[float]] = {"persons": [], "funders": []}
        for n in range(repeat):
            one_more_record(url, 100 + n)
            after["persons"].append(timed(persons))
            one_more_record(url, 200 + n)
            after["funders"].append(timed(funders))
        out["persons_after_record_s"] = statistics.median(after["persons"])
        out["funders_after_record_s"] = statistics.median(after["funders"])
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="(%(default)s)")
    parser.add_argument("--stations", type=int, default=20, help="(%(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="(%(default)s)")
    parser.add_argument(
        "--years", type=int, default=1, help=f"calendar years ending in {YEAR} (%(default)s)"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp dir, removed")
    args = parser.parse_args(argv)
    if args.years < 1:
        parser.error("--years must be 1 or more")
    target = TARGET_FIVE_YEARS_S if args.years >= 5 else TARGET_S
    first = YEAR - args.years + 1
    span = str(YEAR) if args.years == 1 else f"{first}–{YEAR}"
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pesee-dashboard-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    cleanups: list[Callable[[], None]] = []
    results: dict[str, dict[str, float]] = {}
    try:
        print(f"generating {args.records:,} records in {span}…", file=sys.stderr, flush=True)
        ledger_scale.YEARS = (first, YEAR)  # the benched year last
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
            office(url)
            # what `ledger run` does in the background after a bulk load (every 30 s): the
            # month and visit digests built, so a first view reads them
            keeper = open_store(url)
            t0 = time.perf_counter()
            keeper.refresh_digests()
            keeper_s = time.perf_counter() - t0
            keeper.close()
            print(f"{name}: baselines, then the pages…", file=sys.stderr, flush=True)
            base = statistics.median(baseline_overview(url) for _ in range(args.repeat))
            figures = {
                f"baseline_{page}_s": statistics.median(
                    measure(url, True) for _ in range(args.repeat)
                )
                for page, measure in (("persons", persons_figures), ("funders", funders_figures))
            }
            (workdir / name).mkdir(exist_ok=True)
            results[name] = {
                "keeper_build_s": keeper_s,
                "baseline_overview_s": base,
                **figures,
                **pages(url, workdir / name, args.repeat),
                "digests_persons_s": statistics.median(
                    persons_figures(url, False) for _ in range(args.repeat)
                ),
                "digests_funders_s": statistics.median(
                    funders_figures(url, False) for _ in range(args.repeat)
                ),
            }
    finally:
        for cleanup in cleanups:
            cleanup()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(
        f"{args.records:,} records in {span}, pages of {YEAR}, {args.stations} stations; "
        f"{os.cpu_count()} CPUs; "
        f"{len(GROUPS)} tables on the overview ({', '.join(GROUPS)}), the months and last year"
    )
    print()
    rows = [
        (
            "baseline: the overview as before (a report and a chart per table)",
            "baseline_overview_s",
        ),
        (
            "ledger run: every month's digests built after the bulk load (background)",
            "keeper_build_s",
        ),
        ("overview, cold (first load, the digests kept)", "overview_cold_s"),
        ("overview, warm", "overview_warm_s"),
        ("overview, after a new record", "overview_after_record_s"),
        ("another tab's CSV (its report cold)", "csv_after_overview_s"),
        ("fleet page", "fleet_s"),
        ("baseline: the persons page's figures from the records (before)", "baseline_persons_s"),
        ("the same from the visit digests kept (a new connection)", "digests_persons_s"),
        ("persons page, first load", "persons_first_s"),
        ("persons page, warm", "persons_warm_s"),
        ("persons page, after a new record", "persons_after_record_s"),
        ("baseline: the funders page's figures from the records (before)", "baseline_funders_s"),
        ("the same from the visit digests kept (a new connection)", "digests_funders_s"),
        ("funders page (FEAD, eco), first load", "funders_first_s"),
        ("funders page, warm", "funders_warm_s"),
        ("funders page, after a new record", "funders_after_record_s"),
    ]
    print("| page | SQLite | PostgreSQL | target |\n|---|---:|---:|---|")
    for label, key in rows:
        goal = "—" if key.startswith(("baseline", "digests", "keeper")) else f"≤ {target} s"
        print(
            f"| {label} | {results['sqlite'][key]:.3f} s | {results['postgresql'][key]:.3f} s "
            f"| {goal} |"
        )
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        json.dumps(
            {
                "bench": "dashboard",
                "records": args.records,
                "years": args.years,
                "loadavg_1m": round(load[0], 2),
                **{f"{db}_{k}": round(v, 3) for db, r in results.items() for k, v in r.items()},
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
