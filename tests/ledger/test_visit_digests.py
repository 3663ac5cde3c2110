"""Visit digests give the persons and funders pages' figures exactly as the records do: against
a straightforward Python computation over the records table, and the SQL of the records, on
SQLite and PostgreSQL, through new records, a late void, clock repairs, households imported,
a purge, an erasure, and a second connection whose digests were read before each change."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ledger.period import Period
from ledger.store import open_store
from ledger.store.eco import weights_by_category, weights_by_category_sql
from ledger.store.households import (
    FIGURES,
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
from sync.record import Record as WireRecord
from sync.wire import Batch, decode_batch, encode
from tests.support import ledger_dataset
from tests.support.ledger_dataset import Journal

Store = Any

PERIODS = [
    Period.year(2025),
    Period.year(2026),
    Period.quarter(2025, 2),
    Period.month(2026, 1),
    Period.parse(start="2025-03-15", end="2026-02-10"),  # partial months at both ends
    Period.parse(start="2025-05-01", end="2025-05-01"),  # one day
]
STATIONS: list[list[str] | None] = [None, ["st-1", "st-3"], []]


# -- the figures, straight from the records table ------------------------------------------------
def _live(store: Store) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = store.fetch(
        "SELECT station, occurred_at, person_n, visit_n, category, net_mg FROM records "
        "WHERE kind = 'weighing' AND voided_by IS NULL"
    )
    return rows


def expected(store: Store, period: Period, stations: list[str] | None) -> dict[str, Any]:
    start, end = period.bounds()
    rows = [r for r in _live(store) if stations is None or r["station"] in stations]
    first: dict[int, str] = {}
    visits: dict[int, set[int]] = {}
    days: dict[int, set[str]] = {}
    net_mg = items = anonymous = 0
    by_category: dict[str, list[int]] = {}
    for r in rows:
        at, person = r["occurred_at"], r["person_n"]
        if person is not None:
            first[person] = min(first.get(person, at), at)
        if not start <= at < end:
            continue
        items += 1
        net_mg += r["net_mg"] or 0
        acc = by_category.setdefault(r["category"] or "", [0, 0])
        acc[0] += r["net_mg"] or 0
        acc[1] += 1
        if person is None:
            anonymous += 1
            continue
        seen = visits.setdefault(person, set())
        if r["visit_n"] is not None:
            seen.add(r["visit_n"])
        days.setdefault(person, set()).add(at[:10])
    homes: dict[int, list[dict[str, Any]]] = {}
    for h in store.fetch(
        "SELECT p.n AS person_n, h.* FROM households h JOIN person_ids p "
        "ON p.beneficiary = h.beneficiary"
    ):
        homes.setdefault(h["person_n"], []).append(h)
    fead = dict.fromkeys(("households", "known", "partly", *FIGURES), 0)
    fead["households"] = len(days)
    for person, seen_days in days.items():
        statuses = [
            h
            for d in seen_days
            for h in homes.get(person, [])
            if (not h["valid_from"] or h["valid_from"] <= d)
            and (not h["valid_until"] or d <= h["valid_until"])
        ]
        known_days = {
            d
            for d in seen_days
            for h in homes.get(person, [])
            if (not h["valid_from"] or h["valid_from"] <= d)
            and (not h["valid_until"] or d <= h["valid_until"])
        }
        if not statuses:
            continue
        fead["known"] += 1
        fead["partly"] += len(known_days) < len(seen_days)
        for name in FIGURES:
            fead[name] += max(size(h, name) for h in statuses)
    every: dict[int, str] = {}
    for r in _live(store):
        if r["person_n"] is not None:
            every[r["person_n"]] = min(every.get(r["person_n"], r["occurred_at"]), r["occurred_at"])
    return {
        "persons": {"persons": len(visits), "new": sum(first[p] >= start for p in visits)},
        "visits": dict(sorted(Counter(len(v) for v in visits.values()).items())),
        "years": dict(sorted(Counter(at[:4] for at in every.values()).items())),
        "fead": fead,
        "mass": {"net_mg": net_mg, "items": items, "anonymous": anonymous},
        "eco": [
            {"category": c, "net_mg": mg, "items": n} for c, (mg, n) in sorted(by_category.items())
        ],
    }


def size(h: dict[str, Any], figure: str) -> int:
    """A composition's members of one FEAD figure."""
    children = h["children_0_15"] + h["children_16_17"]
    found = {
        "persons": h["women"] + h["men"] + children,
        "children_15": h["children_0_15"],
        "children_17": children,
    }
    return int(found[figure] if figure in found else h[figure])


def computed(store: Store, period: Period, stations: list[str] | None) -> dict[str, Any]:
    b = period.bounds()
    return {
        "persons": new_and_returning(store, b, stations),
        "visits": visits_per_person(store, b, stations),
        "years": first_years(store),
        "fead": fead_counts(store, b, stations),
        "mass": fead_mass(store, b, stations),
        "eco": weights_by_category(store, b, stations),
    }


def from_records(store: Store, period: Period, stations: list[str] | None) -> dict[str, Any]:
    b = period.bounds()
    return {
        "persons": new_and_returning_sql(store, b, stations),
        "visits": visits_per_person_sql(store, b, stations),
        "years": first_years_sql(store),
        "fead": fead_counts_sql(store, b, stations),
        "mass": fead_mass_sql(store, b, stations),
        "eco": weights_by_category_sql(store, b, stations),
    }


def check(*stores: Store) -> None:
    for period in PERIODS:
        for stations in STATIONS:
            want = expected(stores[0], period, stations)
            assert from_records(stores[0], period, stations) == want, (period.label, stations)
            for store in stores:
                assert computed(store, period, stations) == want, (period.label, stations)


# -- changes -----------------------------------------------------------------------------------
def send(store: Store, journal: Journal, records: list[dict[str, Any]]) -> None:
    batch = Batch(journal.station, journal.epoch, tuple(map(WireRecord.from_row, records)))
    result = store.ingest(decode_batch(encode(batch)))
    assert not result.conflicts


def homes(store: Store, seed: int = 5) -> list[Composition]:
    """Compositions for most codes: always, until a day, from a day, two that follow."""
    rng = random.Random(seed)
    codes = [r["beneficiary"] for r in store.fetch("SELECT beneficiary FROM person_ids ORDER BY n")]
    out = []
    for n, code in enumerate(codes):
        base = Composition(
            code,
            women=rng.randint(0, 2),
            men=rng.randint(0, 1),
            children_0_15=rng.randint(0, 3),
            seniors=rng.randint(0, 1),
        )
        shape = n % 4
        if shape == 1:
            out.append(base)
        elif shape == 2:
            out.append(replace(base, until="2025-09-30"))
            out.append(replace(base, since="2025-10-01", children_16_17=1))
        elif shape == 3:
            out.append(replace(base, since="2025-05-10", until="2026-01-20", disabled=1))
    return out


def marks(store: Store) -> dict[str, str]:
    return {r["month"]: r["mark"] for r in store.fetch("SELECT month, mark FROM visit_digests")}


def test_figures_equal_the_records_through_every_change(ledger_url: str) -> None:
    ds = ledger_dataset.network(persons=40, visits_per_station=50)
    store = open_store(ledger_url)
    other = open_store(ledger_url)  # its digests read before each change: never stale after
    try:
        # st-3's boot with a stale clock first, the digests read, then the rest: the clock
        # repair moves its records (here from 7 to 26 January 2026: other days of visit)
        st3 = next(j for j in ds.journals if j.station == "st-3")
        cut = max(i for i, r in enumerate(st3.records) if not r["clock_synced"]) + 1
        for journal in ds.journals:
            records = journal.records[:cut] if journal is st3 else journal.records
            for k in range(0, len(records), 300):
                send(store, journal, records[k : k + 300])
        store.set_registry(ds.registry)
        check(store, other)
        before_repair = marks(store)
        for k in range(cut, len(st3.records), 300):
            send(store, st3, st3.records[k : k + 300])
        # a household known before its code is first seen (below, in May 2025)
        store.import_households([*homes(store), Composition("B777777", women=1, men=2)])
        check(store, other)
        moved = st3.records[cut - 1]
        assert moved["recorded_at"][:10] != ds.effective_at[moved["uuid"]][:10]
        month = moved["recorded_at"][:7]
        assert before_repair[month] != marks(store)[month]
        shapes = fead_counts(store, Period.year(2025).bounds())
        assert 0 < shapes["partly"] < shapes["known"] < shapes["households"]
        built = marks(store)
        assert len(built) >= 24  # the digests are kept (the figures did not come from SQL)

        # new records in May 2025 (a new station, a person seen before, one without a code),
        # and a late void of a weighing made in March 2025 by an existing station
        late = Journal("st-late", random.Random(3))
        known = store.fetch("SELECT beneficiary FROM person_ids ORDER BY n LIMIT 1")[0]
        at = datetime(2025, 5, 20, 10, tzinfo=UTC)
        late.append("weighing", at, visit="v1", beneficiary=known["beneficiary"], net_mg=7_000)
        late.append("weighing", at, visit="v1", net_mg=3_000, category="FRU")
        late.append("weighing", at, visit="v2", beneficiary="B777777", net_mg=1_000)
        send(store, late, late.records)
        journal = ds.journals[0]
        target = next(
            r
            for r in journal.records
            if r["kind"] == "weighing" and ds.effective_at[r["uuid"]].startswith("2025-03")
        )
        void = journal.append(
            "void", datetime(2026, 11, 1, tzinfo=UTC), visit=target["visit"], voids=target["seq"]
        )
        send(store, journal, [void])
        check(store, other)
        changed = {m for m, mark in marks(store).items() if built.get(m) != mark}
        assert {"2025-03", "2025-05"} <= changed
        assert len(changed) < len(built) / 2  # only the months whose records changed

        store.import_households(homes(store, seed=9), replace_all=True)
        check(store, other)

        store.purge("2025-04-01", "aggregate")
        check(store, other)

        code = known["beneficiary"]
        assert store.erase_beneficiary(code)
        check(store, other)
    finally:
        other.close()
        store.close()


def test_a_ledger_without_records(tmp_path: Any) -> None:
    path = str(tmp_path / "ledger.db")
    store = open_store(path)
    try:
        for period in PERIODS:
            assert computed(store, period, None) == expected(store, period, None)
        assert first_years(store) == {}
    finally:
        store.close()
