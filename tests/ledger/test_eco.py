"""Eco-organism declarations against an independent computation on a generated network, both
databases; the mapping's refusals, rounding once, the records behind a figure, the command line."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger.cli import cli
from ledger.funders.eco import build_eco, parse_mapping, tonnes_text
from ledger.funders.render import eco_csv, eco_html, eco_json, eco_table
from ledger.period import Period
from ledger.store import open_store
from sync.wire import Registry
from tests.support import ledger_dataset
from tests.support.ledger_dataset import Dataset, Journal
from tests.support.pg import PostgresServer

Store = Any
EXAMPLE = Path(__file__).resolve().parents[2] / "ledger" / "eco.example.toml"

# the network's categories (FRU LEG EPI LAI HYG VET) declared as a test office would
ECO = {
    "organisms": [{"code": "ecomaison", "name": "Ecomaison"}, {"code": "refashion"}],
    "categories": [
        {"organism": "ecomaison", "code": "DEA-ASSISE", "name": "Assises", "stream": "DEA"},
        {"organism": "ecomaison", "code": "DEA-COUCHAGE", "name": "Couchages", "stream": "DEA"},
        {"organism": "ecomaison", "code": "JJ-SOCIETE", "name": "Jeux de société", "stream": "JJ"},
        {"organism": "refashion", "code": "TLC-HAB", "name": "Habillement"},
    ],
    "mappings": [
        {"organism": "ecomaison", "category": "FRU", "declares": "DEA-ASSISE"},
        {"organism": "ecomaison", "category": "LEG", "declares": "DEA-ASSISE"},  # two into one
        {"organism": "ecomaison", "category": "EPI", "declares": "JJ-SOCIETE"},
        {"organism": "refashion", "category": "VET", "declares": "TLC-HAB"},
    ],  # LAI and HYG: mapped to nobody; DEA-COUCHAGE: nothing, a zero line
}


def live(ds: Dataset, period: Period) -> list[dict[str, Any]]:
    """The period's live weighings as the stations sent them, by the time the ledger uses."""
    start, end = period.bounds()
    dead = {(r["station"], r["epoch"], r["voids"]) for r in ds.records if r["kind"] == "void"}
    return [
        r
        for r in ds.records
        if r["kind"] == "weighing"
        and start <= ds.effective_at[r["uuid"]] < end
        and (r["station"], r["epoch"], r["seq"]) not in dead
    ]


def by_category(records: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in records:
        out[r["category"] or ""] = out.get(r["category"] or "", 0) + r["net_mg"]
    return out


@pytest.fixture(scope="module")
def network() -> Dataset:
    ds = ledger_dataset.network()
    extra = dict(ds.registry.extra, eco=ECO)
    ds.registry = Registry(
        ds.registry.version,
        ds.registry.categories,
        ds.registry.referrers,
        ds.registry.beneficiary_patterns,
        extra,
    )
    return ds


@pytest.fixture(scope="module")
def sqlite_network(tmp_path_factory: pytest.TempPathFactory, network: Dataset) -> Iterator[Store]:
    store = open_store(str(tmp_path_factory.mktemp("eco") / "ledger.db"))
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


QUARTERS = [Period.quarter(2025, 2), Period.quarter(2026, 1), Period.quarter(2026, 2)]


@pytest.mark.parametrize("period", QUARTERS, ids=lambda p: p.label)
def test_tonnes_per_declaration_category_match_an_independent_computation(
    network: Dataset, store: Store, period: Period
) -> None:
    records = live(network, period)
    mass = by_category(records)
    report = build_eco(store, period, "ecomaison")
    lines = {line.code: line for line in report.lines}
    assert list(lines) == ["DEA-ASSISE", "DEA-COUCHAGE", "JJ-SOCIETE"]  # the form's order
    assert lines["DEA-ASSISE"].net_mg == mass.get("FRU", 0) + mass.get("LEG", 0)
    assert lines["JJ-SOCIETE"].net_mg == mass.get("EPI", 0)
    assert lines["DEA-COUCHAGE"].net_mg == 0 and lines["DEA-COUCHAGE"].tonnes == "0.000"
    assert lines["JJ-SOCIETE"].items == sum(r["category"] == "EPI" for r in records)
    for line in report.lines:  # tonnes: half up, once, on the total
        want = (Decimal(line.net_mg) / 10**9).quantize(Decimal("0.001"), ROUND_HALF_UP)
        assert line.tonnes == f"{want:.3f}"
    # what is not declared is listed: another organism's, and nobody's
    listed = {u.category: (u.organism, u.net_mg) for u in report.unmapped}
    assert listed == {
        "VET": ("refashion", mass["VET"]),
        "LAI": (None, mass["LAI"]),
        "HYG": (None, mass["HYG"]),
    }
    assert report.declared_mg + sum(u.net_mg for u in report.unmapped) == report.total_mg
    assert report.total_mg == sum(r["net_mg"] for r in records)


def test_the_records_behind_each_figure(network: Dataset, store: Store) -> None:
    period = QUARTERS[1]
    report = build_eco(store, period, "ecomaison", with_records=True)
    assert report.records is not None
    records = live(network, period)
    want = {r["uuid"] for r in records if r["category"] in {"FRU", "LEG"}}
    behind = report.records["DEA-ASSISE"]
    assert {r["uuid"] for r in behind} == want
    assert sum(int(r["net_mg"]) for r in behind) == report.lines[0].net_mg
    assert report.records["DEA-COUCHAGE"] == []
    rows = list(csv.DictReader(io.StringIO(eco_csv(report).decode())))
    assert len(rows) == len(want) + sum(r["category"] == "EPI" for r in records)
    assert {r["uuid"] for r in rows if r["code"] == "DEA-ASSISE"} == want


def test_sqlite_and_postgresql_agree_and_a_group_is_its_stations(
    sqlite_network: Store, pg_network: Store
) -> None:
    for period in QUARTERS:
        for organism in ("ecomaison", "refashion"):
            a = build_eco(sqlite_network, period, organism, stations=["st-1"], with_records=True)
            b = build_eco(pg_network, period, organism, stations=["st-1"], with_records=True)
            assert a.as_dict() == b.as_dict()
    whole = build_eco(sqlite_network, QUARTERS[1], "refashion")
    part = build_eco(sqlite_network, QUARTERS[1], "refashion", stations=["st-1"])
    assert 0 < part.total_mg < whole.total_mg


def test_renderings(store: Store) -> None:
    report = build_eco(store, QUARTERS[1], "ecomaison")
    table = eco_table(report, "en")
    assert "Ecomaison: declaration 2026-Q1" in table
    assert "nobody: map it in the registry" in table and "refashion" in table
    body = json.loads(eco_json(report, "en"))
    assert body["lines"][0]["tonnes"] == report.lines[0].tonnes
    assert body["flow"] == "sortie réemploi (don)"
    rows = list(
        csv.reader(io.StringIO(eco_csv(report, excel=True).decode("utf-8-sig")), delimiter=";")
    )
    assert rows[1][4] == report.lines[0].tonnes.replace(".", ",")
    plain = list(csv.DictReader(io.StringIO(eco_csv(report).decode())))
    kinds = {r["kind"] for r in plain}
    assert kinds == {"declared", "total_declared", "other_organism", "unmapped", "total_period"}
    assert {r["code"]: r["organism"] for r in plain if r["kind"] != "declared"}[
        "VET"
    ] == "refashion"
    mg = dict.fromkeys(kinds, 0)
    for r in plain:
        mg[r["kind"]] += int(r["net_mg"])
    parts = mg["total_declared"] + mg["other_organism"] + mg["unmapped"]
    assert parts == mg["total_period"] == report.total_mg
    page = eco_html(report, "fr")
    assert "<script" not in page and "Ecomaison" in page


def test_tonnes_are_rounded_once_on_the_total(tmp_path: Path, ledger_url: str) -> None:
    """Two items of 250 g: 0.00025 t each would round to nothing; together 0.0005 t is 0.001."""
    journal = Journal("st-x", random.Random(3))
    at = datetime(2026, 7, 2, 10, tzinfo=UTC)
    for n in range(2):
        journal.append("weighing", at + timedelta(minutes=n), category="FRU", net_mg=250_000)
    voided = journal.append("weighing", at + timedelta(minutes=5), category="FRU", net_mg=10**9)
    journal.append("void", at + timedelta(minutes=6), voids=voided["seq"])
    ds = Dataset([journal], Registry(1, extra={"eco": ECO}))
    store = open_store(ledger_url)
    try:
        ledger_dataset.ingest(store, ds)
        report = build_eco(store, Period.quarter(2026, 3), "ecomaison")
        assert report.lines[0].net_mg == 500_000 and report.lines[0].tonnes == "0.001"
    finally:
        store.close()
    assert tonnes_text(499_999) == "0.000" and tonnes_text(1_234_500_000) == "1.235"


def test_a_bad_mapping_is_refused_with_a_line() -> None:
    base = {
        "organisms": [{"code": "eco"}],
        "categories": [{"organism": "eco", "code": "A", "name": "a"}],
    }
    refused = {
        "unknown organism 'other'": {
            **base,
            "mappings": [{"organism": "other", "category": "X", "declares": "A"}],
        },
        "has no declaration category 'B'": {
            **base,
            "mappings": [{"organism": "eco", "category": "X", "declares": "B"}],
        },
        "name is required": {**base, "categories": [{"organism": "eco", "code": "A"}]},
        "expected [[eco.mappings]] tables": {**base, "mappings": {"x": 1}},
    }
    for reason, eco in refused.items():
        with pytest.raises(ValueError, match=reason.replace("[", r"\[").replace("]", r"\]")):
            parse_mapping(eco)
    twice = {
        **base,
        "categories": [*base["categories"], {"organism": "eco", "code": "B", "name": "b"}],
        "mappings": [
            {"organism": "eco", "category": "X", "declares": "A"},
            {"organism": "eco", "category": "X", "declares": "B"},
        ],
    }
    with pytest.raises(ValueError, match="already declared as 'A'"):
        parse_mapping(twice)
    assert parse_mapping(None).organisms == {}


def test_the_example_block_through_registry_import_and_the_command_line(tmp_path: Path) -> None:
    journal = Journal("st-r", random.Random(5))
    at = datetime(2026, 8, 3, 9, tzinfo=UTC)
    weights = {
        "CAT-ASSISE": 12_500_000,
        "CAT-VET": 800_000,
        "CAT-TABLE": 30_000_000,
        "CAT-X": 1_000,
    }
    for n, (category, mg) in enumerate(weights.items()):
        journal.append("weighing", at + timedelta(minutes=n), category=category, net_mg=mg)
    store = open_store(str(tmp_path / "ledger.db"))
    ledger_dataset.ingest(store, Dataset([journal], Registry(1)))
    store.close()
    config = tmp_path / "ledger.toml"
    config.write_text(
        f'[ledger]\ndatabase = "{tmp_path / "ledger.db"}"\nlanguage = "fr"\n', encoding="utf-8"
    )

    def run(*args: str, lang: str = "en") -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["--lang", lang, "--config", str(config), *args])
        return result.exit_code, result.output

    code, out = run("registry", "import", str(EXAMPLE), "--no-publish")
    assert code == 0, out
    code, out = run("eco", "--quarter", "2026-Q3", "--organism", "ecomaison", "--format", "json")
    assert code == 0, out
    body = json.loads(out)
    lines = {line["code"]: line for line in body["lines"]}
    assert lines["DEA-ASSISE"]["tonnes"] == "0.013" and lines["DEA-PLAN"]["tonnes"] == "0.030"
    assert len(lines) == 10
    assert {(u["category"], u["organism"]) for u in body["not_declared"]} == {
        ("CAT-VET", "refashion"),
        ("CAT-X", None),
    }
    code, out = run("eco", "--quarter", "2026-T3", "--organism", "refashion", lang="fr")
    assert code == 0 and "Refashion" in out and "Textiles d'habillement" in out
    code, out = run("eco", "--quarter", "2026-Q3", "--organism", "ecologic")
    assert code == 65 and "unknown eco-organism 'ecologic'" in out and "ecomaison" in out
    code, out = run("eco", "--quarter", "2026-Q3", "--organism", "ecomaison", "--records")
    assert code == 0 and "Records behind Assises / sièges" in out
    extra = tmp_path / "divers.csv"
    extra.write_text("kind,code,name\ncategory,CAT-X,Divers\n", encoding="utf-8")
    code, out = run("registry", "import", str(extra), "--no-publish")
    assert code == 0, out
    code, out = run("eco")  # no organism: the mapping in force
    assert code == 0, out
    assert "Ecomaison (ecomaison)" in out and "CAT-ASSISE" in out
    assert out.split("Categories no eco-organism declares")[1].split()[3:5] == ["CAT-X", "Divers"]
    code, out = run("eco", "--format", "json")
    assert code == 0 and json.loads(out)["not_declared"] == ["CAT-X"]
