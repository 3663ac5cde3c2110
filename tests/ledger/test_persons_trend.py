"""New versus returning persons, visits per person and the trend over years, against an
independent computation on the generated network, SQLite and PostgreSQL; the command line."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger.cli import cli
from ledger.funders.persons import (
    build_persons,
    build_trend,
    persons_csv,
    persons_html,
    persons_table,
    trend_csv,
    trend_table,
)
from ledger.period import Period
from ledger.store import open_store
from tests.support import ledger_dataset
from tests.support.ledger_dataset import Dataset
from tests.support.pg import PostgresServer

Store = Any


def live(ds: Dataset) -> list[tuple[str, dict[str, Any]]]:
    """(time the ledger uses, record) of every live weighing with a beneficiary code."""
    dead = {(r["station"], r["epoch"], r["voids"]) for r in ds.records if r["kind"] == "void"}
    return [
        (ds.effective_at[r["uuid"]], r)
        for r in ds.records
        if r["kind"] == "weighing"
        and r["beneficiary"]
        and (r["station"], r["epoch"], r["seq"]) not in dead
    ]


def expected(
    ds: Dataset, period: Period, stations: set[str] | None = None
) -> tuple[int, int, dict[int, int]]:
    """persons, new persons, {visits: persons} of ``period``, in Python."""
    start, end = period.bounds()
    first: dict[str, str] = {}
    visits: dict[str, set[tuple[str, str]]] = {}
    for at, r in live(ds):
        if stations is not None and r["station"] not in stations:
            continue
        code = r["beneficiary"]
        first[code] = min(first.get(code, at), at)
        if start <= at < end:
            visits.setdefault(code, set()).add((r["station"], r["visit"]))
    new = sum(first[code] >= start for code in visits)
    spread: dict[int, int] = {}
    for seen in visits.values():
        spread[len(seen)] = spread.get(len(seen), 0) + 1
    return len(visits), new, spread


@pytest.fixture(scope="module")
def network() -> Dataset:
    return ledger_dataset.network()


@pytest.fixture(scope="module")
def sqlite_network(tmp_path_factory: pytest.TempPathFactory, network: Dataset) -> Iterator[Store]:
    store = open_store(str(tmp_path_factory.mktemp("persons") / "ledger.db"))
    ledger_dataset.ingest(store, network)
    yield store
    store.close()


@pytest.fixture(scope="module")
def pg_network(pg_server: PostgresServer, network: Dataset) -> Iterator[Store]:
    url = pg_server.create_database()
    store = open_store(url)
    ledger_dataset.ingest(store, network)
    yield store
    store.close()
    pg_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Store:
    return request.getfixturevalue("sqlite_network" if request.param == "sqlite" else "pg_network")


PERIODS = [Period.year(2025), Period.year(2026), Period.quarter(2026, 1), Period.month(2025, 5)]


@pytest.mark.parametrize("period", PERIODS, ids=lambda p: p.label)
def test_new_returning_and_visits_per_person(
    network: Dataset, store: Store, period: Period
) -> None:
    persons, new, spread = expected(network, period)
    report = build_persons(store, period)
    assert (report.persons, report.new, report.visits) == (persons, new, spread)
    assert report.returning == persons - new
    assert report.total_visits == sum(v * n for v, n in spread.items())
    ranked = sorted(v for v, n in spread.items() for _ in range(n))
    middle = len(ranked) // 2
    median = ranked[middle] if len(ranked) % 2 else (ranked[middle - 1] + ranked[middle]) / 2
    assert report.median_visits == median
    assert sum(n for _k, n in report.bands()) == persons


def test_a_station_filter(network: Dataset, store: Store) -> None:
    period = PERIODS[1]
    persons, new, spread = expected(network, period, {"st-1", "st-3"})
    report = build_persons(store, period, stations=["st-1", "st-3"])
    assert (report.persons, report.new, report.visits) == (persons, new, spread)


def test_the_trend_is_the_reports_own_figures_year_by_year(network: Dataset, store: Store) -> None:
    trend = build_trend(store)
    assert [r.year for r in trend.rows] == [2025, 2026]
    firsts: dict[str, str] = {}
    for at, r in live(network):
        firsts[r["beneficiary"]] = min(firsts.get(r["beneficiary"], at), at)
    for row in trend.rows:
        year = Period.year(row.year)
        start, end = year.bounds()
        in_year = [(at, r) for at, r in live(network) if start <= at < end]
        persons, _new, spread = expected(network, year)
        assert row.persons == persons
        assert row.visits == sum(v * n for v, n in spread.items())
        assert row.new == sum(first[:4] == str(row.year) for first in firsts.values())
        # kg of every live weighing, with or without a code
        dead = {
            (r["station"], r["epoch"], r["voids"]) for r in network.records if r["kind"] == "void"
        }
        kg = sum(
            r["net_mg"]
            for r in network.records
            if r["kind"] == "weighing"
            and start <= network.effective_at[r["uuid"]] < end
            and (r["station"], r["epoch"], r["seq"]) not in dead
        )
        assert row.net_mg == kg and len(in_year) <= row.items
    change = trend.changes(1, "persons")
    assert change == (trend.rows[1].persons - trend.rows[0].persons) * 100 / trend.rows[0].persons
    assert trend.changes(0, "persons") is None
    assert [r.year for r in build_trend(store, 2024, 2027).rows] == [2024, 2025, 2026, 2027]


def test_sqlite_and_postgresql_agree(sqlite_network: Store, pg_network: Store) -> None:
    for period in PERIODS:
        assert (
            build_persons(sqlite_network, period).as_dict()
            == build_persons(pg_network, period).as_dict()
        )
    assert build_trend(sqlite_network).as_dict() == build_trend(pg_network).as_dict()


def test_renderings(store: Store) -> None:
    report = build_persons(store, PERIODS[1])
    table = persons_table(report, "en")
    assert f"{report.new:,} new, {report.returning:,} returning" in table
    rows = dict(csv.reader(io.StringIO(persons_csv(report).decode())))
    assert rows["new"] == str(report.new)
    assert "<script" not in persons_html(report, "fr")
    trend = build_trend(store)
    assert "2026" in trend_table(trend, "fr")
    lines = list(csv.DictReader(io.StringIO(trend_csv(trend).decode())))
    assert [int(r["persons"]) for r in lines] == [r.persons for r in trend.rows]
    assert lines[0]["change_persons_pct"] == ""


def test_the_command_line(tmp_path: Path, network: Dataset) -> None:
    store = open_store(str(tmp_path / "ledger.db"))
    ledger_dataset.ingest(store, network)
    store.close()
    config = tmp_path / "ledger.toml"
    config.write_text(
        f'[ledger]\ndatabase = "{tmp_path / "ledger.db"}"\n[groups]\nnord = ["st-1", "st-3"]\n',
        encoding="utf-8",
    )

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["--lang", "en", "--config", str(config), *args])
        return result.exit_code, result.output

    code, out = run("persons", "--year", "2026", "--group", "nord", "--format", "json")
    assert code == 0, out
    persons, new, _spread = expected(network, Period.year(2026), {"st-1", "st-3"})
    assert (json.loads(out)["persons"], json.loads(out)["new"]) == (persons, new)
    code, out = run("trend", "--format", "json")
    assert code == 0 and [y["year"] for y in json.loads(out)["years"]] == [2025, 2026]
    code, out = run("trend", "--first", "2026", "--last", "2025")
    assert code == 2 and "before the first" in out
