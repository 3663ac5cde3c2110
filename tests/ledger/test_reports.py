"""Report figures against an independent computation from the generated records, both backends."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from itertools import product
from pathlib import Path
from typing import Any

import pytest

from common.i18n import set_language, speaking
from ledger.charts import bars_svg
from ledger.report_render import summary_lines, to_csv, to_html, to_json, to_table
from ledger.reports import Figures, Period, Report, build_report, import_profiles
from ledger.store import open_store
from tests.support import ledger_dataset
from tests.support.ledger_dataset import Dataset
from tests.support.pg import PostgresServer

Store = Any


# -- the independent oracle: plain Python over the records as the stations sent them ---------------
def expected(ds: Dataset, period: Period, by: tuple[str, ...]) -> dict[tuple[str, ...], Figures]:
    start, end = period.bounds()
    dead = {(r["station"], r["epoch"], r["voids"]) for r in ds.records if r["kind"] == "void"}
    types = ds.referrer_types()
    group_of = {s: g for g, members in ds.groups.items() for s in members}
    tags: dict[str, set[str]] = {code: set(t) for code, t in ds.profiles.items()}  # always
    # a scanned tag holds from the first record that carries it, at the ledger's time
    scanned_since: dict[tuple[str, str], str] = {}
    for r in ds.records:
        if r["data"] and r["beneficiary"]:
            for tag in json.loads(r["data"]).get("profile") or []:
                at = ds.effective_at[r["uuid"]]
                pair = (r["beneficiary"], tag)
                scanned_since[pair] = min(scanned_since.get(pair, at), at)

    def tags_at(code: str, at: str) -> set[str]:
        held = {t for (c, t), since in scanned_since.items() if c == code and since <= at}
        return tags.get(code, set()) | held

    def values(grouping: str, r: dict[str, Any], at: str) -> list[str]:
        if grouping == "month":
            return [at[:7]]
        if grouping == "group":
            return [group_of.get(r["station"], "")]
        if grouping == "referrer_type":
            return [types.get(r["referrer"], "")]
        if grouping == "profile":
            return sorted(tags_at(r["beneficiary"], at)) or [""]
        return [r[grouping] or ""]

    acc: dict[tuple[str, ...], dict[str, Any]] = {}
    for r in ds.records:
        at = ds.effective_at[r["uuid"]]
        if r["kind"] != "weighing" or not start <= at < end:
            continue
        live = (r["station"], r["epoch"], r["seq"]) not in dead
        for key in product(*(values(g, r, at) for g in by)):
            a = acc.setdefault(
                key,
                {"all": 0, "items": 0, "mg": 0, "pieces": 0, "manual": 0}
                | {"visits": set(), "persons": set(), "referrers": set()},
            )
            a["all"] += 1
            if not live:
                continue
            a["items"] += 1
            a["mg"] += r["net_mg"]
            a["pieces"] += r["pieces"] or 0
            a["manual"] += r["source"] == "manual"
            if r["visit"]:
                a["visits"].add((r["station"], r["visit"]))
            for name, value in (("persons", r["beneficiary"]), ("referrers", r["referrer"])):
                if value:
                    a[name].add(value)
    months = 1.0 if "month" in by else period.months
    return {
        key: Figures(
            net_mg=a["mg"],
            items=a["items"],
            pieces=a["pieces"],
            visits=len(a["visits"]),
            beneficiaries=len(a["persons"]),
            referrers=len(a["referrers"]),
            manual=a["manual"],
            voided=a["all"] - a["items"],
            months=months,
        )
        for key, a in acc.items()
    }


# -- stores, each dataset ingested once per backend ------------------------------------------------
@pytest.fixture(scope="module")
def network() -> Dataset:
    return ledger_dataset.network()


@pytest.fixture(scope="module")
def example() -> Dataset:
    return ledger_dataset.issue_example()


def _load(url: str, ds: Dataset) -> Store:
    store = open_store(url)
    ledger_dataset.ingest(store, ds)
    import_profiles(store, ds.profiles.items())
    return store


@pytest.fixture(scope="module")
def sqlite_network(tmp_path_factory: pytest.TempPathFactory, network: Dataset) -> Iterator[Store]:
    store = _load(str(tmp_path_factory.mktemp("sqlite") / "ledger.db"), network)
    yield store
    store.close()


@pytest.fixture(scope="module")
def pg_network(pg_server: PostgresServer, network: Dataset) -> Iterator[Store]:
    url = pg_server.create_database()
    store = _load(url, network)
    yield store
    store.close()
    pg_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def network_store(request: pytest.FixtureRequest) -> Store:
    name = "sqlite_network" if request.param == "sqlite" else "pg_network"
    return request.getfixturevalue(name)


@pytest.fixture(scope="module")
def example_store(tmp_path_factory: pytest.TempPathFactory, example: Dataset) -> Iterator[Store]:
    store = _load(str(tmp_path_factory.mktemp("example") / "ledger.db"), example)
    yield store
    store.close()


PERIODS = [
    Period.year(2025),
    Period.year(2026),
    Period.quarter(2026, 1),  # st-3's stale clock is repaired into January 2026
    Period.month(2025, 5),  # st-4's boot that never synchronised: its times as sent
    Period.between(date(2026, 1, 1), date(2026, 6, 30)),  # records on both edges
    Period.parse(start="2025-12-10", end="2026-01-20"),
]
GROUPINGS = [
    ("month",),
    ("category",),
    ("station",),
    ("group",),
    ("referrer",),
    ("referrer_type",),
    ("profile",),
    ("beneficiary",),
    ("station", "category"),
    ("referrer_type", "profile"),
    ("month", "group"),
]


def quick(f: Figures) -> Figures:
    """What a report gives for months and the year before: no distinct counts."""
    return replace(f, visits=0, beneficiaries=0, referrers=0, counted=False)


def _rows(report: Report) -> dict[tuple[str, ...], Figures]:
    return {row.key: row.figures for row in report.rows}


def test_the_dataset_exercises_what_the_figures_depend_on(network: Dataset) -> None:
    records = network.records
    repaired = [r for r in records if network.effective_at[r["uuid"]] != r["recorded_at"]]
    stale = [r for r in records if r["clock_synced"] == 0]
    assert len(repaired) > 10 and len(stale) > len(repaired)  # repaired and unrepairable boots
    assert any(r["recorded_at"] < "2026" <= network.effective_at[r["uuid"]] for r in repaired)
    assert sum(r["kind"] == "void" for r in records) > 50
    assert sum(r["source"] == "manual" for r in records) > 20
    seen: dict[str, set[str]] = {}
    for r in records:
        if r["kind"] == "weighing":
            seen.setdefault(r["beneficiary"], set()).add(r["station"])
    assert sum(len(s) > 1 for s in seen.values()) > 10  # persons seen at two stations


def test_figures_match_an_independent_computation(network: Dataset, network_store: Store) -> None:
    for period in PERIODS:
        whole = expected(network, period, ())
        report = build_report(network_store, period, groups=network.groups)
        assert report.total == whole.get((), Figures(months=period.months)), period
        months = expected(network, period, ("month",))
        assert dict(report.monthly) == {
            k: quick(months.get((k,), Figures())) for k in period.month_keys()
        }, period
        for by in GROUPINGS:
            report = build_report(network_store, period, by, groups=network.groups, compare=False)
            rows = _rows(report)
            if by == ("month",):  # every month of the period has a row, an empty one too
                assert set(rows) == {(k,) for k in period.month_keys()}
                rows = {k: f for k, f in rows.items() if f.weighings}
            assert rows == expected(network, period, by), (period, by)
            assert report.previous is None and report.change_kg_pct is None


def test_change_against_the_same_period_a_year_before(
    network: Dataset, network_store: Store
) -> None:
    period = Period.quarter(2026, 2)
    report = build_report(network_store, period)
    now = expected(network, period, ())[()]
    before = expected(network, period.previous_year(), ())[()]
    # the year before is counted: kg, persons and visits year on year (issue 14 item 3)
    assert report.previous == before
    assert report.changes.persons_pct == pytest.approx(
        (now.beneficiaries - before.beneficiaries) * 100 / before.beneficiaries
    )
    assert report.changes.visits_pct == pytest.approx(
        (now.visits - before.visits) * 100 / before.visits
    )
    detailed = build_report(network_store, period, detail=True)
    assert detailed.previous == before
    assert dict(detailed.monthly) == {
        k: f for (k,), f in expected(network, period, ("month",)).items()
    }
    assert report.change_kg_pct == pytest.approx((now.net_mg - before.net_mg) * 100 / before.net_mg)
    # nothing before 2025: no comparison rather than a meaningless +inf
    assert build_report(network_store, Period.year(2025)).change_kg_pct is None


def test_every_row_has_its_figures_a_year_before(network: Dataset, network_store: Store) -> None:
    """Persons, visits and kg year on year for every row (issue 14 item 3): a month's row
    against the same month a year before, other keys against the same key."""
    period = Period.quarter(2026, 2)
    before = period.previous_year()
    for by in [
        ("category",),
        ("month",),
        ("profile",),
        ("month", "group"),
        ("station", "category"),
    ]:
        report = build_report(network_store, period, by, groups=network.groups)
        then = expected(network, before, by)
        months = 1.0 if "month" in by else before.months
        for row in report.rows:
            key = tuple(
                f"{int(k[:4]) - 1}{k[4:]}" if g == "month" else k
                for g, k in zip(by, row.key, strict=True)
            )
            assert row.previous == then.get(key, Figures(months=months)), (by, row.key)
            if row.previous is not None and row.previous.beneficiaries:
                assert row.changes.persons_pct == pytest.approx(
                    (row.figures.beneficiaries - row.previous.beneficiaries)
                    * 100
                    / row.previous.beneficiaries
                )
        assert sum(r.previous is not None and r.previous.items > 0 for r in report.rows) > 1
    quiet = build_report(network_store, period, ("category",), compare=False)
    assert all(row.previous is None for row in quiet.rows)


def test_sqlite_and_postgresql_give_identical_reports(
    network: Dataset, sqlite_network: Store, pg_network: Store
) -> None:
    for period, by in [
        (Period.year(2026), ("referrer_type", "profile")),
        (Period.year(2025), ("month", "station")),
        (Period.quarter(2026, 1), ("group",)),
    ]:
        one = build_report(sqlite_network, period, by, groups=network.groups)
        other = build_report(pg_network, period, by, groups=network.groups)
        assert one == other
        assert to_csv(one) == to_csv(other)


# -- the office's quoted figures, reproduced -------------------------------------------------------
def test_the_issue_examples_are_reproduced(example_store: Store) -> None:
    report = build_report(example_store, Period.year(2016), ("profile", "referrer_type"))
    lines = summary_lines(report, "en")
    assert lines[0] == (
        "2016: 25 t redistributed to 1,482 persons (124 a month) referred by 28 structures"
    )
    assert lines[1] == "+55 % over the same period last year"
    assert "of whom 332 women with children (2.2 t) referred by 4 hospitals" in lines
    french = summary_lines(report, "fr")
    assert french[0] == (
        "2016 : 25 t redistribuées à 1\u202f482 personnes (124 par mois) "
        "orientées par 28 structures"
    )
    assert french[1] == "+55 % par rapport à la même période de l'année précédente"
    assert "dont 332 femmes avec enfants (2,2 t) orientées par 4 hôpitaux" in french
    # the same in the table the terminal shows
    assert "of whom 332 women with children (2.2 t) referred by 4 hospitals" in to_table(
        report, "en"
    )


def test_profiles_imported_replace_a_codes_tags(tmp_path: Path, example: Dataset) -> None:
    store = open_store(str(tmp_path / "l.db"))
    ledger_dataset.ingest(store, example)
    import_profiles(store, [("B000001", ["single_parent"]), ("B000002", ["worker", "retired"])])
    import_profiles(store, [("B000002", ["worker"])])
    report = build_report(store, Period.year(2016), ("profile",), compare=False)
    persons = {row.key[0]: row.figures.beneficiaries for row in report.rows}
    assert persons["single_parent"] == 1 and persons["worker"] == 1
    assert "retired" not in persons
    assert persons[""] == 1480
    store.close()


# -- renderers -------------------------------------------------------------------------------------
def test_csv_for_a_spreadsheet(example_store: Store) -> None:
    report = build_report(example_store, Period.year(2016), ("referrer_type",))
    data = to_csv(report, excel=True)
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    header, body = rows[0], rows[1:]
    # titles for people in the staff's language; the plain CSV keeps the field names
    assert header[:4] == ["type of structure", "type of structure (name)", "kg", "net (mg)"]
    hospital = next(r for r in body if r[0] == "hospital")
    assert hospital[2].count(",") == 1 and "." not in hospital[2]  # decimal comma
    total = next(r for r in body if r[0] == "total")
    assert total[2] == "25000,000"
    plain = list(csv.DictReader(io.StringIO(to_csv(report).decode())))
    assert plain[-2]["kg"] == "25000.000" and plain[-2]["beneficiaries"] == "1482"
    assert plain[-1]["kg"] == "16100.000" and plain[-1]["referrer_type"] == "previous_year"
    tabbed = to_csv(report, sep="\t", decimal_comma=True).decode()
    assert "\t25000,000\t" in tabbed
    with speaking("fr"):
        french = to_csv(report, excel=True).decode("utf-8-sig").splitlines()
    assert french[0].startswith("type de structure;type de structure (nom);kg;net (mg);articles")
    assert french[-1].startswith("même période l'an dernier;")


def test_json_and_html(example: Dataset, example_store: Store) -> None:
    report = build_report(example_store, Period.year(2016), ("category",))
    body = json.loads(to_json(report))
    assert body["period"] == {"start": "2016-01-01", "end": "2017-01-01", "label": "2016"}
    assert body["total"]["net_mg"] == 25_000_000_000
    assert len(body["monthly"]) == 12 and len(body["rows"]) == 5
    page = to_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert "http://" not in page.replace("http://www.w3.org/", "") and "https://" not in page
    assert page.count("<svg") >= 2
    assert "25 t redistributed" in page
    assert to_html(report) == page  # charts are deterministic: a file can be compared
    # the year before is counted: persons and visits year on year, for the total and every row
    before = expected(example, Period.year(2015), ("category",))
    assert (
        body["previous"]["beneficiaries"]
        == expected(example, Period.year(2015), ())[()].beneficiaries
    )
    for row in body["rows"]:
        assert row["previous"]["beneficiaries"] == before[tuple(row["key"])].beneficiaries
        assert row["changes"]["persons_pct"] == pytest.approx(
            (row["beneficiaries"] - row["previous"]["beneficiaries"])
            * 100
            / row["previous"]["beneficiaries"]
        )


def test_bars_sum_the_long_tail(network_store: Store) -> None:
    report = build_report(network_store, Period.year(2026), ("beneficiary",), compare=False)
    assert len(report.rows) > 20
    svg = bars_svg(report.rows, "kg", limit=10, lang="en")
    assert svg.startswith("<svg") and "others" in svg
    assert svg.count("<text") < 60  # ten bars, not a hundred


def test_table_fits_a_terminal(network: Dataset, network_store: Store) -> None:
    for lang in ("en", "fr"):
        report = build_report(
            network_store, Period.year(2026), ("referrer", "category"), groups=network.groups
        )
        text = to_table(report, lang)
        assert max(len(line) for line in text.splitlines()) <= 100
        assert "CHU Nord" in text
    set_language("en")


def test_periods_parse_and_refuse_clearly() -> None:
    assert Period.parse(year=2026).label == "2026"
    assert Period.parse(year="2026", quarter="Q3") == Period.quarter(2026, 3)
    assert Period.parse(month="2026-10").label == "2026-10"
    custom = Period.parse(start="2026-01-05", end="2026-03-31")
    assert (custom.start, custom.end) == (date(2026, 1, 5), date(2026, 4, 1))
    assert custom.label == "2026-01-05 → 2026-03-31"
    assert Period.year(2024).previous_year() == Period.year(2023)
    assert Period.between(date(2024, 2, 29), date(2024, 3, 1)).previous_year() == Period.between(
        date(2023, 2, 28), date(2023, 3, 1)
    )
    # the end comes from the last day included: February 2023 whole, not up to the 27th
    assert Period.parse(start="2024-01-01", end="2024-02-28").previous_year() == Period.between(
        date(2023, 1, 1), date(2023, 3, 1)
    )
    assert Period.parse(start="2025-03-01", end="2025-03-01").previous_year() == Period.between(
        date(2024, 3, 1), date(2024, 3, 2)
    )
    assert Period.quarter(2026, 2).months == 3.0
    for kwargs, message in [
        ({"year": 2026, "month": 13}, "month must be 1 to 12"),
        ({"year": 2026, "quarter": 5}, "quarter must be 1 to 4"),
        ({"start": "2026-02-30"}, "is not a date"),
        ({"start": "2026-03-01", "end": "2026-02-01"}, "ends (2026-02-01) before it starts"),
        ({"year": 2026, "start": "2026-01-01"}, "not both"),
        ({}, "no period"),
        ({"year": "twenty"}, "expects a number"),
    ]:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            Period.parse(**kwargs)  # type: ignore[arg-type]


def test_no_referrer_is_one_row_whether_null_or_empty(tmp_path: Path, ledger_url: str) -> None:
    from station.store import Store as Journal
    from sync.record import Record
    from sync.wire import Batch, decode_batch, encode

    with Journal(tmp_path / "s.db", "st-1") as journal:
        for i, referrer in enumerate([None, "", "", "REF-A"]):
            journal.append(
                "weighing",
                net_mg=1000 * (i + 1),
                referrer=referrer,
                recorded_at="2026-05-10T10:00:00.000Z",
            )
        epoch, rows = journal.epoch, list(journal.records())
    store = open_store(ledger_url)
    store.ingest(decode_batch(encode(Batch("st-1", epoch, tuple(map(Record.from_row, rows))))))
    assert sorted(repr(r["referrer"]) for r in store.records()) == ["''", "''", "'REF-A'", "None"]
    report = build_report(store, Period.month(2026, 5), ("referrer",), compare=False)
    assert [(r.key, r.figures.items, r.figures.net_mg) for r in report.rows] == [
        (("REF-A",), 1, 4000),
        (("",), 3, 6000),
    ]
    store.close()


def test_purged_months_keep_their_kg_items_and_pieces(tmp_path: Path, ledger_url: str) -> None:
    from station.store import Store as Journal
    from sync.record import Record
    from sync.wire import Batch, decode_batch, encode

    with Journal(tmp_path / "s.db", "st-1") as journal:
        for i, (at, category, referrer) in enumerate(
            [
                ("2020-03-02T10:00:00.000Z", "CAT-VET", "REF-A"),
                ("2020-03-09T10:00:00.000Z", "CAT-ALI", ""),
                ("2020-07-01T10:00:00.000Z", "CAT-VET", "REF-A"),
                ("2021-03-01T10:00:00.000Z", "CAT-VET", "REF-A"),
            ]
        ):
            journal.append(
                "weighing",
                net_mg=1000 * 2**i,
                pieces=i + 1,
                category=category,
                referrer=referrer or None,
                beneficiary=f"B00100000{i}1",
                recorded_at=at,
            )
        epoch, rows = journal.epoch, list(journal.records())
    store = open_store(ledger_url)
    store.ingest(decode_batch(encode(Batch("st-1", epoch, tuple(map(Record.from_row, rows))))))

    def figures() -> tuple[Any, ...]:
        year = build_report(store, Period.year(2020), compare=False)
        by = build_report(store, Period.year(2020), ("category", "referrer"), compare=False)
        later = build_report(store, Period.year(2021))
        assert later.previous is not None
        return (
            (year.total.net_mg, year.total.items, year.total.pieces),
            [(k, f.net_mg, f.items) for k, f in year.monthly],
            [(r.key, r.figures.net_mg, r.figures.items, r.figures.pieces) for r in by.rows],
            (later.previous.net_mg, later.previous.items, later.change_kg_pct),
        )

    before = figures()
    assert before[0] == (7000, 3, 6)
    assert store.purge("2021-01-01", "aggregate").records == 3
    assert figures() == before
    after = build_report(store, Period.year(2020), ("profile",), compare=False)
    assert after.purged_months == ("2020-03", "2020-07")
    assert after.total.net_mg == 7000 and after.total.beneficiaries == 0
    note = json.loads(to_json(after))["purged_note"]
    assert "persons not available for purged months" in note and "profile" in note
    store.close()


def test_scanned_profiles_are_kept_at_ingest_for_reports(tmp_path: Path, ledger_url: str) -> None:
    from station.store import Store as Journal
    from sync.record import Record
    from sync.wire import Batch, decode_batch, encode

    with Journal(tmp_path / "s.db", "st-1") as journal:
        for i, tags in enumerate([["single_parent"], "worker", None]):
            journal.append(
                "weighing",
                net_mg=1000,
                beneficiary=f"B00100000{i}1",
                data=None if tags is None else {"profile": tags},
                recorded_at="2026-05-10T10:00:00.000Z",
            )
        epoch, rows = journal.epoch, list(journal.records())
    store = open_store(ledger_url)
    store.ingest(decode_batch(encode(Batch("st-1", epoch, tuple(map(Record.from_row, rows))))))
    kept = "SELECT beneficiary, tag FROM scanned_profiles ORDER BY tag"
    assert [(r["beneficiary"], r["tag"]) for r in store.fetch(kept)] == [
        ("B0010000001", "single_parent"),
        ("B0010000011", "worker"),
    ]
    import_profiles(store, [("B0010000021", ["retired"])], replace_all=True)  # scanned ones stay

    def by_profile() -> dict[str, int]:
        report = build_report(store, Period.month(2026, 5), ("profile",), compare=False)
        return {r.key[0]: r.figures.items for r in report.rows}

    assert by_profile() == {"single_parent": 1, "worker": 1, "retired": 1}

    # a database of an older ledger: the table is filled from the stored records at open
    def forget() -> None:  # through the store's dialect, in one transaction
        store.sql.exec("DELETE FROM scanned_profiles")
        store.sql.exec("DELETE FROM ledger_meta WHERE name = 'scanned_profiles'")

    store.sql.atomic(forget)
    store.close()
    store = open_store(ledger_url)
    assert by_profile() == {"single_parent": 1, "worker": 1, "retired": 1}
    store.erase_beneficiary("B0010000001")
    assert [r["tag"] for r in store.fetch(kept) if r["beneficiary"].startswith("x:")] == [
        "single_parent"
    ]
    store.close()
