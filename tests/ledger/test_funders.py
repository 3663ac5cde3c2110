"""The funders' sentences of issue 14 come out of `ledger report` exactly, on both databases.

Every figure is checked against a computation written here, from the records as the stations sent
them and the office's profiles file: a person counts in a subgroup by their status at each
weighing (an imported tag over its days, a scanned one from the first record carrying it, at the
ledger's repaired time), and every report and row carries the same period a year before.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger.cli import cli
from ledger.report_render import summary_lines, to_csv, to_html, to_json, to_table
from ledger.reports import Period, build_report, import_profiles
from ledger.store import open_store
from tests.support.funders_dataset import WOMEN, FundersData, vestiaire
from tests.support.ledger_dataset import ingest
from tests.support.pg import PostgresServer

Store = Any
NNBSP = "\u202f"  # French thousands separator


# -- the oracle: plain Python over the records and the imported lines -----------------------------
@dataclass
class Sub:
    """What a subgroup holds: kg, persons, visits, structures (live weighings only)."""

    mg: int = 0
    persons: set[str] = field(default_factory=set)
    visits: set[tuple[str, str]] = field(default_factory=set)
    referrers: set[str] = field(default_factory=set)


def tags_at(data: FundersData) -> Any:
    """A function (code, record time) -> the tags the person held then."""
    spans: dict[str, list[tuple[str, str, str]]] = {}
    for code, tags, since, until in data.profile_lines:
        for tag in tags:
            spans.setdefault(code, []).append((tag, since, until))
    scanned: dict[tuple[str, str], str] = {}
    ds = data.dataset
    for r in ds.records:
        if r["data"] and r["beneficiary"]:
            for tag in json.loads(r["data"]).get("profile") or []:
                at = ds.effective_at[r["uuid"]]
                key = (r["beneficiary"], tag)
                scanned[key] = min(scanned.get(key, at), at)

    def held(code: str, at: str | None) -> set[str]:
        """``at`` None: every tag the person ever had, whatever the day."""
        day = at[:10] if at else ""
        out = {
            tag
            for tag, since, until in spans.get(code, [])
            if at is None or ((not since or since <= day) and (not until or day <= until))
        }
        return out | {
            tag for (c, tag), since in scanned.items() if c == code and (at is None or since <= at)
        }

    return held


def oracle(data: FundersData, period: Period, dated: bool = True) -> dict[str, Sub]:
    """Per tag ("" for the total), what the period's live weighings add up to. ``dated=False``:
    every tag the person ever had, at every weighing (what the reports did before)."""
    ds = data.dataset
    start, end = period.bounds()
    dead = {(r["station"], r["epoch"], r["voids"]) for r in ds.records if r["kind"] == "void"}
    held = tags_at(data)
    out: dict[str, Sub] = {}
    for r in ds.records:
        at = ds.effective_at[r["uuid"]]
        if r["kind"] != "weighing" or not start <= at < end:
            continue
        if (r["station"], r["epoch"], r["seq"]) in dead:
            continue
        tags = held(r["beneficiary"], at if dated else None)
        for key in ["", *tags]:
            sub = out.setdefault(key, Sub())
            sub.mg += r["net_mg"]
            sub.persons.add(r["beneficiary"])
            sub.visits.add((r["station"], r["visit"]))
            sub.referrers.add(r["referrer"])
    return out


def by_type(data: FundersData, referrers: set[str]) -> dict[str, int]:
    types = {r["code"]: r["type"] for r in data.dataset.registry.referrers}
    out: dict[str, int] = {}
    for code in referrers:
        out[types[code]] = out.get(types[code], 0) + 1
    return out


# -- the dataset in each database, once ------------------------------------------------------------
@pytest.fixture(scope="module")
def data() -> FundersData:
    return vestiaire()


def _load(url: str, data: FundersData) -> Store:
    store = open_store(url)
    ingest(store, data.dataset)
    import_profiles(store, data.profile_lines)
    return store


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory, data: FundersData) -> Iterator[Store]:
    store = _load(str(tmp_path_factory.mktemp("funders") / "ledger.db"), data)
    yield store
    store.close()


@pytest.fixture(scope="module")
def pg_store(pg_server: PostgresServer, data: FundersData) -> Iterator[Store]:
    url = pg_server.create_database()
    store = _load(url, data)
    yield store
    store.close()
    pg_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Store:
    return request.getfixturevalue("sqlite_store" if request.param == "sqlite" else "pg_store")


JAN_APR_2017 = Period.parse(start="2017-01-01", end="2017-04-30")


def test_the_dataset_exercises_dated_profiles(data: FundersData) -> None:
    """Counting every tag at every weighing gives what the issue found wrong: the persons
    tagged only later (scanned in 2017, imported from 2017) and the ended tags inflate 2016."""
    undated = oracle(data, Period.year(2016), dated=False)[WOMEN]
    dated = oracle(data, Period.year(2016))[WOMEN]
    assert len(dated.persons) == 332 and len(undated.persons) > 332
    assert undated.mg > dated.mg and len(undated.referrers) > len(dated.referrers)
    before = Period.parse(start="2016-01-01", end="2016-04-30")
    assert len(oracle(data, before)[WOMEN].persons) == 139
    assert len(oracle(data, before, dated=False)[WOMEN].persons) > 139
    # one scan was made on a clock 400 days behind: its time as sent is in 2016
    stale = [r for r in data.dataset.records if r["clock_synced"] == 0 and r["data"]]
    assert stale and all(r["recorded_at"] < "2016-03" for r in stale)
    assert all(data.dataset.effective_at[r["uuid"]] >= "2017" for r in stale)


def test_the_funders_sentences_come_out_exactly(data: FundersData, store: Store) -> None:
    year = build_report(store, Period.year(2016), ("profile",))
    french = summary_lines(year, "fr")
    assert french[0] == (
        f"2016 : 25 t redistribuées à 1{NNBSP}482 personnes (124 par mois) orientées par "
        "28 structures"
    )
    assert "dont 332 femmes avec enfants (2,2 t) orientées par 4 hôpitaux, 1 CHU et 1 CASO" in (
        french
    )
    english = summary_lines(year, "en")
    assert english[0] == (
        "2016: 25 t redistributed to 1,482 persons (124 a month) referred by 28 structures"
    )
    assert (
        "of whom 332 women with children (2.2 t) referred by 4 hospitals, 1 CHU and 1 CASO"
        in english
    )
    spring = build_report(store, JAN_APR_2017, ("profile",))
    assert (
        "215 femmes avec enfants de janvier à avril 2017, +55 % par rapport à la même période "
        "de 2016"
    ) in summary_lines(spring, "fr")
    assert (
        "215 women with children from January to April 2017, +55 % over the same period of 2016"
    ) in summary_lines(spring, "en")
    earlier = build_report(store, Period.year(2015))
    assert "2015 : 10,5 t, moyenne mensuelle 874,8 kg et 65 bénéficiaires" in summary_lines(
        earlier, "fr"
    )
    assert "2015: 10.5 t, monthly average 874.8 kg and 65 beneficiaries" in summary_lines(
        earlier, "en"
    )


def test_each_figure_matches_the_computation(data: FundersData, store: Store) -> None:
    for period in (Period.year(2016), JAN_APR_2017, Period.year(2015), Period.quarter(2016, 2)):
        now = oracle(data, period)
        then = oracle(data, period.previous_year())
        report = build_report(store, period, ("profile",))
        total = now[""]
        assert (report.total.net_mg, report.total.beneficiaries) == (
            total.mg,
            len(total.persons),
        )
        assert (report.total.visits, report.referrers) == (
            len(total.visits),
            len(total.referrers),
        )
        if "" not in then:  # nothing a year before: no comparison rather than +inf
            assert report.previous is None and report.changes.persons_pct is None
        else:
            assert report.previous is not None
            assert report.previous.beneficiaries == len(then[""].persons)
            assert report.previous.visits == len(then[""].visits)
        for group in report.subgroups:
            sub, before = now[group.tag], then.get(group.tag, Sub())
            f = group.figures
            assert (f.net_mg, f.beneficiaries, f.visits, f.referrers) == (
                sub.mg,
                len(sub.persons),
                len(sub.visits),
                len(sub.referrers),
            ), (period, group.tag)
            assert dict(group.structures) == by_type(data, sub.referrers)
            assert group.previous is not None
            assert group.previous.beneficiaries == len(before.persons)
            if before.persons:
                assert group.changes.persons_pct == pytest.approx(
                    (len(sub.persons) - len(before.persons)) * 100 / len(before.persons)
                )
        assert {g.tag for g in report.subgroups} == set(now) - {""}
        # rows by profile: the same figures; persons with no tag at a weighing are in "(none)"
        rows = {row.key[0]: row for row in report.rows}
        for tag, sub in now.items():
            if tag:
                assert rows[tag].figures.beneficiaries == len(sub.persons)
                assert rows[tag].figures.net_mg == sub.mg
    women = build_report(store, Period.year(2016), ("profile",)).subgroups[0]
    # by type and profile (the issue's --by profile,referrer_type): one sentence per profile,
    # with the same subgroups as by profile alone
    both = build_report(store, Period.year(2016), ("referrer_type", "profile"))
    assert both.subgroups == build_report(store, Period.year(2016), ("profile",)).subgroups
    assert sum(s.startswith("of whom 332 ") for s in summary_lines(both, "en")) == 1
    assert women.tag == WOMEN
    assert women.structures == (("hospital", 4), ("chu", 1), ("caso", 1))
    assert women.figures.net_mg == 2_200_000_000


def test_grammar_agrees_with_number_and_gender(data: FundersData, store: Store) -> None:
    report = build_report(store, Period.year(2016), ("profile",))
    french = summary_lines(report, "fr")
    parents = oracle(data, Period.year(2016))["single_parent"]
    assert len(parents.persons) == 30
    line = next(s for s in french if s.startswith("dont 30 parents isolés"))
    assert " orientés par " in line  # masculine plural
    single = next(s for s in french if s.startswith("dont 1 femme enceinte ("))
    assert " orientée par 1 " in single  # feminine singular
    english = summary_lines(report, "en")
    assert any(s.startswith("of whom 1 pregnant woman (") for s in english)
    assert any(s.startswith("of whom 30 single parents (") for s in english)


def test_year_on_year_in_every_output(data: FundersData, store: Store) -> None:
    report = build_report(store, JAN_APR_2017, ("profile",))
    then = oracle(data, JAN_APR_2017.previous_year())
    # CSV: the year before and the change on every row and on the total
    rows = {r["profile"]: r for r in csv.DictReader(io.StringIO(to_csv(report).decode()))}
    women = rows[WOMEN]
    assert women["beneficiaries"] == "215" and women["previous_beneficiaries"] == "139"
    assert women["change_beneficiaries_pct"] == "54.7"
    assert int(women["previous_visits"]) == len(then[WOMEN].visits)
    assert rows["total"]["previous_beneficiaries"] == str(len(then[""].persons))
    # JSON: rows, total and subgroups
    body = json.loads(to_json(report, "fr"))
    row = next(r for r in body["rows"] if r["profile"] == WOMEN)
    assert row["previous"]["beneficiaries"] == 139
    assert row["changes"]["persons_pct"] == pytest.approx(76 * 100 / 139)
    assert body["previous"]["beneficiaries"] == len(then[""].persons)
    assert body["changes"]["persons_pct"] is not None
    assert body["subgroups"][0]["tag"] == WOMEN
    assert body["subgroups"][0]["previous"]["beneficiaries"] == 139
    # terminal and HTML
    table = to_table(report, "en")
    line = next(x for x in table.splitlines() if x.startswith("women with children"))
    assert line.split()[-2] == "+55"  # Δpers%
    assert max(len(x) for x in table.splitlines()) <= 100
    page = to_html(report, "fr")
    assert "personnes l&#x27;an dernier" in page and "+55 %" in page


def test_profiles_import_with_dates_from_the_command_line(tmp_path: Path, ledger_url: str) -> None:
    """``ledger profiles import`` reads since/until; a tag holds on its first and last day."""
    from station.store import Store as Journal
    from sync.record import Record
    from sync.wire import Batch, decode_batch, encode

    with Journal(tmp_path / "s.db", "st-1") as journal:
        for day in ("2016-02-29", "2016-03-01", "2016-06-30", "2016-07-01"):
            journal.append(
                "weighing",
                net_mg=1_000_000,
                beneficiary="B0010000001",
                referrer="H1",
                recorded_at=f"{day}T23:59:59.999Z" if day < "2016-03" else f"{day}T00:00:00.000Z",
            )
        epoch, kept = journal.epoch, list(journal.records())
    store = open_store(ledger_url)
    store.ingest(decode_batch(encode(Batch("st-1", epoch, tuple(map(Record.from_row, kept))))))
    store.close()
    config = tmp_path / "ledger.toml"
    config.write_text(f'[ledger]\ndatabase = "{ledger_url}"\n', encoding="utf-8")
    profiles = tmp_path / "profils.csv"
    profiles.write_text(
        "code;tags;since;until\n"
        "B0010000001;single_parent;2016-03-01;2016-04-30\n"
        "B0010000001;single_parent;2016-05-01;2016-06-30\n",  # merged with the line before
        encoding="utf-8",
    )
    runner = CliRunner()
    result = runner.invoke(cli, ["--lang", "en", "--config", str(config), "profiles", "import",
                                 str(profiles)])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "2 codes, 1 profile tags imported"
    store = open_store(ledger_url)
    try:
        report = build_report(store, Period.year(2016), ("profile",), compare=False)
        assert {r.key[0]: r.figures.items for r in report.rows} == {"single_parent": 2, "": 2}
        assert report.subgroups[0].structures == (("other", 1),)
        # a re-import replaces the code's spans; --replace forgets every other code's
        import_profiles(store, [("B0010000001", ["single_parent"], "2016-07-01", None)])
        report = build_report(store, Period.year(2016), ("profile",), compare=False)
        assert {r.key[0]: r.figures.items for r in report.rows} == {"single_parent": 1, "": 3}
    finally:
        store.close()
    bad = tmp_path / "bad.csv"
    bad.write_text("B1;single_parent;2016-03-01;2016-02-01\n", encoding="utf-8")
    result = runner.invoke(cli, ["--lang", "en", "--config", str(config), "profiles", "import",
                                 str(bad)])  # fmt: skip
    assert result.exit_code == 65 and result.stderr.count("\n") == 1
    assert "line 1: the tags end (2016-02-01) before they start (2016-03-01)" in result.stderr


def test_period_words_for_sentences() -> None:
    from common.i18n import speaking

    cases = [
        (Period.year(2016), "in 2016", "2015", "en 2016"),
        (Period.month(2017, 4), "in April 2017", "the same period of 2016", "en avril 2017"),
        (JAN_APR_2017, "from January to April 2017", "the same period of 2016",
         "de janvier à avril 2017"),
        (Period.parse(start="2016-04-01", end="2016-06-30"), "from April to June 2016",
         "the same period of 2015", "d'avril à juin 2016"),
        (Period.parse(start="2016-12-01", end="2017-02-28"),
         "from December 2016 to February 2017", "the same period a year before",
         "de décembre 2016 à février 2017"),
        (Period.between(date(2016, 1, 5), date(2016, 4, 1)), "from 2016-01-05 to 2016-03-31",
         "the same period of 2015", "du 2016-01-05 au 2016-03-31"),
    ]  # fmt: skip
    for period, english, before, french in cases:
        with speaking("en"):
            assert period.words() == english
            assert period.previous_year().reference() == before
        with speaking("fr"):
            assert period.words() == french


def test_a_scanned_tag_holds_from_its_first_record_and_outlives_a_purge(
    tmp_path: Path, ledger_url: str
) -> None:
    from station.store import Store as Journal
    from sync.record import Record
    from sync.wire import Batch, decode_batch, encode

    with Journal(tmp_path / "s.db", "st-1") as journal:
        for at, data in [
            ("2020-01-10T10:00:00.000Z", None),  # before the scan
            ("2020-03-02T10:00:00.000Z", {"profile": ["single_parent"]}),
            ("2021-03-01T10:00:00.000Z", None),  # after: the tag still holds
        ]:
            journal.append(
                "weighing", net_mg=1_000_000, beneficiary="B0010000001", data=data, recorded_at=at
            )
        epoch, kept = journal.epoch, list(journal.records())
    store = open_store(ledger_url)
    try:
        store.ingest(decode_batch(encode(Batch("st-1", epoch, tuple(map(Record.from_row, kept))))))

        def items(year: int) -> dict[str, int]:
            report = build_report(store, Period.year(year), ("profile",), compare=False)
            return {r.key[0]: r.figures.items for r in report.rows}

        assert items(2020) == {"single_parent": 1, "": 1}
        assert items(2021) == {"single_parent": 1}
        # the records of 2020 go (the scan with them): the tag held before every record left
        store.purge("2021-01-01", "delete")
        assert items(2021) == {"single_parent": 1}
    finally:
        store.close()


def test_an_older_ledger_keeps_its_profiles_as_always(tmp_path: Path) -> None:
    """Schema step 11 on a database made before it: the imported tags stay, holding always."""
    import sqlite3

    from ledger.store.migrations import MIGRATIONS

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT, "
               "applied_at TEXT)")  # fmt: skip
    for step in MIGRATIONS[:10]:
        for sql in step.steps("sqlite"):
            db.execute(sql)
        db.execute("INSERT INTO schema_version VALUES (?, ?, '')", (step.version, step.description))
    db.execute("INSERT INTO profiles (beneficiary, tag) VALUES ('B0010000001', 'retired')")
    db.commit()
    db.close()
    store = open_store(str(path))
    try:
        assert store.schema_version() == MIGRATIONS[-1].version
        rows = store.fetch("SELECT beneficiary, tag, since, until FROM profiles")
        assert rows == [{"beneficiary": "B0010000001", "tag": "retired", "since": "", "until": ""}]
    finally:
        store.close()
