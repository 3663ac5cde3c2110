"""FEAD / ESF+ indicators against an independent computation on a generated network, both
databases; the household import, its refusals, erasure and the command line."""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from playwright.sync_api import BrowserContext

from ledger.cli import cli
from ledger.funders.fead import INDICATORS, build_fead
from ledger.funders.households import parse_compositions, template
from ledger.funders.render import fead_csv, fead_html, fead_json, fead_table
from ledger.period import Period
from ledger.store import open_store
from ledger.store.households import KINDS, Composition
from tests.support import ledger_dataset
from tests.support.ledger_dataset import Dataset
from tests.support.pg import PostgresServer

Store = Any


# -- the households of the generated network: every shape of dates ---------------------------------
def compositions(ds: Dataset, seed: int = 11) -> list[Composition]:
    """Per code: none (1 in 5), one for always, two that follow each other (a birth in
    October 2025), one from March 2026 only, one until June 2025 only."""
    rng = random.Random(seed)
    codes = sorted({r["beneficiary"] for r in ds.records if r["beneficiary"]})
    out = []

    def members(**fixed: int) -> dict[str, int]:
        women, men = rng.randint(0, 2), rng.randint(0, 2)
        if women + men == 0:
            women = 1
        adults = women + men
        size = adults + fixed.get("children_0_15", rng.randint(0, 4)) + rng.randint(0, 1)
        counts = {
            "women": women,
            "men": men,
            "children_0_15": fixed.get("children_0_15", size - adults - 1 if size > adults else 0),
            "seniors": rng.randint(0, adults),
            "disabled": rng.randint(0, 1),
            "migrants": rng.choice([0, 0, size]),
            "homeless": rng.choice([0, 0, 0, size]),
            "single_parents": 1 if adults == 1 and size > 1 else 0,
        }
        counts["children_16_17"] = size - adults - counts["children_0_15"]
        return counts

    def home(code: str, since: str, until: str, counts: dict[str, int]) -> Composition:
        return Composition(code, since, until, *(counts[k] for k in KINDS))

    for n, code in enumerate(codes):
        shape = n % 5
        if shape == 1:
            out.append(home(code, "", "", members()))
        elif shape == 2:
            before = members(children_0_15=1)
            after = dict(before, children_0_15=2)
            out.append(home(code, "", "2025-09-30", before))
            out.append(home(code, "2025-10-01", "", after))
        elif shape == 3:
            out.append(home(code, "2026-03-01", "", members()))
        elif shape == 4:
            out.append(home(code, "", "2025-06-30", members()))
    return out


def expected(ds: Dataset, homes: list[Composition], period: Period) -> dict[str, Any]:
    """What the report must say, from the records as sent and the compositions, in Python."""
    start, end = period.bounds()
    dead = {(r["station"], r["epoch"], r["voids"]) for r in ds.records if r["kind"] == "void"}
    days: dict[str, set[str]] = {}
    for r in ds.records:
        at = ds.effective_at[r["uuid"]]
        if r["kind"] != "weighing" or not start <= at < end or not r["beneficiary"]:
            continue
        if (r["station"], r["epoch"], r["seq"]) in dead:
            continue
        days.setdefault(r["beneficiary"], set()).add(at[:10])
    figures: dict[str, Callable[[Composition], int]] = {
        "persons": lambda c: c.size,
        "women": lambda c: c.women,
        "children_15": lambda c: c.children_0_15,
        "children_17": lambda c: c.children_0_15 + c.children_16_17,
        "seniors": lambda c: c.seniors,
        "disabled": lambda c: c.disabled,
        "migrants": lambda c: c.migrants,
        "homeless": lambda c: c.homeless,
        "single_parents": lambda c: c.single_parents,
    }
    counted = dict.fromkeys(figures, 0)
    known = partly = 0
    for code, seen in days.items():
        in_force = [
            [
                c
                for c in homes
                if c.code == code and (c.since or "") <= d and (not c.until or d <= c.until)
            ]
            for d in sorted(seen)
        ]
        statuses = [found[0] for found in in_force if found]
        if not statuses:
            continue
        known += 1
        partly += len(statuses) < len(seen)
        for name, of in figures.items():
            counted[name] += max(of(c) for c in statuses)
    return {"households": len(days), "known": known, "partly": partly, "counted": counted}


@pytest.fixture(scope="module")
def network() -> Dataset:
    return ledger_dataset.network()


@pytest.fixture(scope="module")
def homes(network: Dataset) -> list[Composition]:
    return compositions(network)


def _load(url: str, ds: Dataset, homes: list[Composition]) -> Store:
    store = open_store(url)
    ledger_dataset.ingest(store, ds)
    store.import_households(homes)
    return store


@pytest.fixture(scope="module")
def sqlite_network(
    tmp_path_factory: pytest.TempPathFactory, network: Dataset, homes: list[Composition]
) -> Iterator[Store]:
    store = _load(str(tmp_path_factory.mktemp("fead") / "ledger.db"), network, homes)
    yield store
    store.close()


@pytest.fixture(scope="module")
def pg_network(
    pg_server: PostgresServer, network: Dataset, homes: list[Composition]
) -> Iterator[Store]:
    url = pg_server.create_database()
    store = _load(url, network, homes)
    yield store
    store.close()
    pg_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Store:
    return request.getfixturevalue("sqlite_network" if request.param == "sqlite" else "pg_network")


PERIODS = [
    Period.year(2025),
    Period.year(2026),
    Period.quarter(2025, 4),  # the birth in October 2025
    Period.parse(start="2025-06-01", end="2026-03-31"),  # every shape of dates at once
]


def test_the_dataset_has_every_kind_of_household(
    network: Dataset, homes: list[Composition]
) -> None:
    want = expected(network, homes, PERIODS[3])
    assert want["households"] > want["known"] > want["partly"] > 0
    assert all(value > 0 for value in want["counted"].values())


@pytest.mark.parametrize("period", PERIODS, ids=lambda p: p.label)
def test_counted_figures_match_an_independent_computation(
    network: Dataset, homes: list[Composition], store: Store, period: Period
) -> None:
    want = expected(network, homes, period)
    report = build_fead(store, period)
    assert (report.households, report.known, report.partly) == (
        want["households"],
        want["known"],
        want["partly"],
    )
    assert report.counted == want["counted"]
    assert report.estimated is None
    unknown = want["households"] - want["known"]
    assert report.unknown == unknown and report.at_least == want["counted"]["persons"] + unknown
    # incomplete and not estimated: no total is made up
    assert all(report.total(i.key) is None for i in INDICATORS)


def test_estimate_only_when_asked_at_the_known_households_average(
    network: Dataset, homes: list[Composition], store: Store
) -> None:
    period = PERIODS[1]
    want = expected(network, homes, period)
    report = build_fead(store, period, estimate=True)
    unknown = want["households"] - want["known"]
    assert report.estimated is not None
    for key, counted in want["counted"].items():
        guess = (Decimal(unknown) * counted / want["known"]).quantize(
            Decimal(1), rounding=ROUND_HALF_UP
        )
        assert report.estimated[key] == int(guess), key
        assert report.total(key) == counted + int(guess)


def test_a_station_filter_and_sqlite_equal_postgresql(
    sqlite_network: Store, pg_network: Store
) -> None:
    for period in PERIODS:
        a = build_fead(sqlite_network, period, stations=["st-1", "st-2"])
        b = build_fead(pg_network, period, stations=["st-1", "st-2"])
        assert a.as_dict() == b.as_dict()
        whole = build_fead(sqlite_network, period)
        assert 0 < a.households < whole.households
    assert build_fead(sqlite_network, PERIODS[0], stations=[]).households == 0


def test_renderings_say_what_is_counted_and_what_is_not(store: Store) -> None:
    report = build_fead(store, PERIODS[1])
    table = fead_table(report, "en")
    assert "have no composition: their members are not counted" in table
    assert "ask for an estimate (--estimate)" in table
    assert "children aged 15 or under" in table and "FEAD 14" in table
    body = json.loads(fead_json(report, "en"))
    assert body["households_unknown"] == report.unknown
    assert [i["total"] for i in body["indicators"]] == [None] * len(INDICATORS)
    rows = list(csv.DictReader(io.StringIO(fead_csv(report).decode())))
    assert {r["key"]: r["counted"] for r in rows}["children_17"] == str(
        report.counted["children_17"]
    )
    assert rows[0]["key"] == "households" and rows[-1]["key"] == "kg"
    page = fead_html(build_fead(store, PERIODS[1], estimate=True), "fr")
    assert "Indicateurs FEAD / FSE+" in page or "FEAD" in page
    assert "<script" not in page
    french = fead_table(report, "fr")
    assert "foyers" in french


# -- import ----------------------------------------------------------------------------------------
def test_a_household_file_is_read_and_checked() -> None:
    text = template() + "B1;;;1;;2\nB2;2026-01-01;2026-06-30;1;1;;1;2\n"
    found = parse_compositions(text)
    assert found[0] == Composition("B1", women=1, children_0_15=2)
    assert found[1].children_16_17 == 1 and found[1].seniors == 2 and found[1].until == "2026-06-30"
    toml = '[[households]]\ncode = "B3"\nsince = 2026-02-01\nmen = 1\nhomeless = 1\n'
    assert parse_compositions(toml, toml=True) == [
        Composition("B3", "2026-02-01", "", men=1, homeless=1)
    ]
    refused = {
        "code;name;women\nB1;Dupont;1\n": "unknown column 'name'",  # never a name
        "code;women\nB1;-1\n": "women must be a whole number",
        "code;women\nB1;0\n": "at least one member",
        "code;women;seniors\nB1;1;2\n": "seniors (2) is more than",
        "code;since;until;women\nB1;2026-02-01;2026-01-01;1\n": "until is before since",
        "code;since;women\nB1;;1\nB1;2026-01-01;1\n": "two compositions hold on the same day",
        "code;since;women\nB1;01/02/2026;1\n": "not a date",
        "women\n1\n": "a code column",
    }
    for text, reason in refused.items():
        with pytest.raises(ValueError, match=re.escape(reason)):
            parse_compositions(text)


def test_import_replaces_a_codes_compositions_and_erasure_keeps_the_counts(
    tmp_path: Path, ledger_url: str
) -> None:
    ds = ledger_dataset.network(persons=12, visits_per_station=6)
    store = open_store(ledger_url)
    try:
        ledger_dataset.ingest(store, ds)
        code = next(r["beneficiary"] for r in ds.records if r["kind"] == "weighing")
        store.import_households([Composition(code, women=1), Composition("B999999", men=1)])
        store.import_households([Composition(code, women=1, children_0_15=3)])
        assert [r["children_0_15"] for r in store.households.of(code)] == [3]
        assert len(store.households.of("B999999")) == 1  # another code: kept
        before = build_fead(store, Period.parse(start="2025-01-01", end="2026-12-31"))
        assert before.known == 1 and before.counted["persons"] == 4
        assert not before.as_dict()["complete"]
        store.erase_beneficiary(code)
        assert store.households.of(code) == []
        after = build_fead(store, Period.parse(start="2025-01-01", end="2026-12-31"))
        assert after.as_dict() == before.as_dict()  # funders' figures do not change
        store.erase_beneficiary("B999999")  # never seen in a record: its household goes
        assert store.fetch("SELECT count(*) AS n FROM households")[0]["n"] == 1
        store.import_households([Composition("B1", men=1)], replace_all=True)
        assert store.fetch("SELECT beneficiary FROM households") == [{"beneficiary": "B1"}]
    finally:
        store.close()


def test_pseudonymised_codes_are_hashed_like_the_records(tmp_path: Path) -> None:
    key = b"k" * 32
    store = open_store(str(tmp_path / "ledger.db"), pseudonym_key=key)
    try:
        store.import_households([Composition("B000123", women=1)])
        stored = store.fetch("SELECT beneficiary FROM households")[0]["beneficiary"]
        assert stored == store.pseudonym("B000123") and stored.startswith("h:")
        assert store.households.of("B000123")[0]["women"] == 1
    finally:
        store.close()


# -- the command line ------------------------------------------------------------------------------
def test_the_command_line(tmp_path: Path, network: Dataset, homes: list[Composition]) -> None:
    store = open_store(str(tmp_path / "ledger.db"))
    ledger_dataset.ingest(store, network)
    store.close()
    config = tmp_path / "ledger.toml"
    config.write_text(
        f'[ledger]\ndatabase = "{tmp_path / "ledger.db"}"\nlanguage = "fr"\n'
        '[groups]\nnord = ["st-1", "st-2"]\n',
        encoding="utf-8",
    )
    file = tmp_path / "foyers.csv"
    file.write_text(template(homes), encoding="utf-8")

    def run(*args: str, lang: str = "en") -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["--lang", lang, "--config", str(config), *args])
        return result.exit_code, result.output

    code, out = run("households", "import", str(file))
    assert code == 0, out
    assert (
        out.strip() == f"{len({h.code for h in homes})} codes, {len(homes)} compositions imported"
    )
    want = expected(network, homes, Period.year(2026))
    code, out = run("fead", "--year", "2026", "--format", "json")
    assert code == 0, out
    assert json.loads(out)["indicators"][0]["counted"] == want["counted"]["persons"]
    code, out = run("fead", "--year", "2026", "--estimate", lang="fr")
    assert code == 0 and "estimé" in out
    code, out = run("fead", "--year", "2026", "--group", "nord", "--format", "csv", "--excel")
    assert code == 0 and out.startswith("\ufeff")
    code, out = run("fead", "--year", "2026", "--group", "sud")
    assert code == 2 and "unknown group 'sud'" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("code;nom;women\nB1;Dupont;1\n", encoding="utf-8")
    code, out = run("households", "import", str(bad))
    assert code == 65 and "unknown column 'nom'" in out and "Traceback" not in out
    code, out = run("households", "show", homes[0].code)
    assert code == 0 and "children_0_15" in out


def test_every_household_known_is_complete_and_an_estimate_adds_nothing(
    tmp_path: Path, ledger_url: str
) -> None:
    ds = ledger_dataset.network(persons=10, visits_per_station=4)
    store = open_store(ledger_url)
    try:
        ledger_dataset.ingest(store, ds)
        codes = sorted({r["beneficiary"] for r in ds.records if r["beneficiary"]})
        store.import_households([Composition(c, men=1, children_16_17=1) for c in codes])
        period = Period.parse(start="2025-01-01", end="2026-12-31")
        report = build_fead(store, period, estimate=True)
        assert report.unknown == 0 and report.estimated == dict.fromkeys(report.counted, 0)
        assert report.total("children_17") == report.households
        assert report.total("children_15") == 0 and report.total("persons") == 2 * report.households
        assert "the figures are complete" in fead_table(report, "en")
        assert "estimated" not in fead_table(report, "en")
    finally:
        store.close()


def test_the_html_pages_show_every_column_on_a_tablet_and_a_desktop(
    tmp_path: Path, sqlite_network: Store, browser: BrowserContext
) -> None:
    """FEAD and eco pages in Chromium at 820 and 1280 px: nothing wider than the window, the
    figures in the cells as the JSON gives them."""
    from ledger.funders.eco import build_eco, parse_mapping
    from ledger.funders.render import eco_html

    mapping = parse_mapping(
        {
            "organisms": [{"code": "ecomaison", "name": "Ecomaison"}],
            "categories": [
                {"organism": "ecomaison", "code": "DEA-ASSISE", "name": "Assises / sièges"},
                {"organism": "ecomaison", "code": "JJ-SOCIETE", "name": "Jeux de société"},
            ],
            "mappings": [
                {"organism": "ecomaison", "category": "FRU", "declares": "DEA-ASSISE"},
                {"organism": "ecomaison", "category": "EPI", "declares": "JJ-SOCIETE"},
            ],
        }
    )
    eco = build_eco(
        sqlite_network, Period.quarter(2026, 1), "ecomaison", mapping=mapping, with_records=True
    )
    fead = build_fead(sqlite_network, Period.year(2026), estimate=True)
    files = {"eco": eco_html(eco, "fr"), "fead": fead_html(fead, "fr")}
    page = browser.new_page()
    overflow = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    for name, text in files.items():
        path = tmp_path / f"{name}.html"
        path.write_text(text, encoding="utf-8")
        for width in (820, 1280):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(path.as_uri())
            assert page.evaluate(overflow) <= 0, (name, width)
    page.goto((tmp_path / "eco.html").as_uri())
    first = page.locator("table").first.locator("tbody tr").first.locator("td")
    assert first.nth(2).inner_text() == eco.lines[0].tonnes.replace(".", ",")
    page.goto((tmp_path / "fead.html").as_uri())
    cells = page.locator("table").first.locator("tbody tr").first.locator("td")
    assert cells.nth(0).inner_text() == "personnes aidées (membres des foyers)"
    assert cells.nth(3).inner_text().replace("\u202f", "") == str(fead.total("persons"))
