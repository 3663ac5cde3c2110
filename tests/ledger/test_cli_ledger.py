"""The ``ledger`` command on a real store through click's runner: conflicts after an erasure,
the same mass in the CSV and the terminal, one meaning of ``--to``, and the read-only commands
that start without the broker's password."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger.cli import cli
from ledger.store import open_store
from sync.wire import Batch, decode_batch, encode, record_hash
from tests.support.dashboard import ledger_config, serving
from tests.support.ledger_dataset import Journal

PERSON = "B0010000011"
UNSET = "PESEE_TEST_MQTT_PASSWORD_NEVER_SET"  # no environment sets it


def _ingest(url: str, journal: Journal, records: list[dict[str, object]]) -> tuple[object, ...]:
    store = open_store(url)
    try:
        batch = decode_batch(encode(Batch(journal.station, journal.epoch, tuple(records))))
        return store.ingest(batch).conflicts
    finally:
        store.close()


def _fill(url: str) -> None:
    """Three weighings: 1,234,567 mg on 31 January 2026 (the last day of January), 1 kg on
    1 February; 2 kg on 1 January. The first is the person's."""
    journal = Journal("st-a", random.Random(5))
    at = datetime(2026, 1, 31, 18, 0, tzinfo=UTC)
    journal.append("weighing", at, net_mg=1_234_567, category="VET", beneficiary=PERSON, visit="1")
    journal.append("weighing", datetime(2026, 2, 1, 9, tzinfo=UTC), net_mg=1_000_000, visit="2")
    journal.append("weighing", datetime(2026, 1, 1, 9, tzinfo=UTC), net_mg=2_000_000, visit="3")
    _ingest(url, journal, list(journal.records))


def _config(tmp_path: Path, url: str, extra: str = "") -> Path:
    path = tmp_path / "ledger.toml"
    path.write_text(f'[ledger]\ndatabase = "{url}"\nlanguage = "fr"\n{extra}', encoding="utf-8")
    return path


def _cli(
    config: Path, *args: str, lang: str = "en", stdin: str | None = None
) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--lang", lang, "--config", str(config), *args], input=stdin)
    assert "Traceback" not in result.stderr, result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def config(tmp_path: Path) -> Path:
    url = str(tmp_path / "ledger.db")
    _fill(url)
    return _config(tmp_path, url)


# -- issue 12: `ledger conflicts` after `ledger beneficiary erase` --------------------------------
def test_conflicts_after_an_erasure_show_a_dash_for_the_emptied_hashes(tmp_path: Path) -> None:
    url = str(tmp_path / "ledger.db")
    journal = Journal("st-c", random.Random(3))
    day = datetime(2026, 3, 2, 10, tzinfo=UTC)
    first = journal.append("weighing", day, net_mg=500_000, beneficiary=PERSON, visit="v")
    _ingest(url, journal, [first])
    forged = {**first, "net_mg": 1}  # the same seq with other content: a conflict
    forged["hash"] = record_hash(forged)
    assert _ingest(url, journal, [forged])
    config = _config(tmp_path, url)
    code, out, err = _cli(config, "conflicts")
    assert code == 0 and " st-c " in out and "1 conflict(s)" in err
    code, out, _err = _cli(config, "beneficiary", "erase", PERSON, "--yes")
    assert code == 0 and PERSON in out
    code, out, err = _cli(config, "conflicts")  # was: TypeError on existing_hash[:12]
    assert code == 0, err
    assert out.count("\n") == 1 and "(stored –, received –)" in out, out
    assert err == "1 conflict(s)\n"


# -- issue 12: the CSV and the terminal agree on every mass ----------------------------------------
def test_a_mass_reads_the_same_in_the_csv_and_the_terminal(config: Path) -> None:
    january = ["--from", "2026-01-31", "--to", "2026-01-31"]
    code, out, _err = _cli(config, "totals", "--by", "category", *january, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [(r["key"], r["net_mg"], r["kg"]) for r in rows] == [
        ("VET", "1234567", "1.235")
    ]
    code, out, _err = _cli(config, "totals", "--by", "category", *january)
    assert code == 0 and "1.235 kg" in out.splitlines()[1] and "1.234" not in out
    code, out, _err = _cli(config, "totals", "--by", "category", *january, lang="fr")
    assert code == 0 and "1,235 kg" in out.splitlines()[1]
    assert out.split()[:2] == ["catégorie", "articles"]  # headers in the staff's language
    code, out, _err = _cli(
        config, "report", *january, "--by", "category", "--format", "csv", "--no-compare"
    )
    report = {r["category"]: r for r in csv.DictReader(io.StringIO(out))}
    assert code == 0 and report["VET"]["kg"] == "1.235" and report["VET"]["net_mg"] == "1234567"
    code, out, _err = _cli(config, "beneficiary", "show", PERSON, lang="fr")
    assert code == 0 and "1,235 kg" in out


# -- issue 14 item 7: `--to` is the last day included, in totals as in report ----------------------
def test_to_is_the_last_day_included_in_totals_and_report(config: Path) -> None:
    january = ["--from", "2026-01-01", "--to", "2026-01-31"]
    code, out, _err = _cli(config, "totals", "--by", "station", *january, "--format", "json")
    assert code == 0 and json.loads(out) == [
        {"key": "st-a", "items": 2, "net_mg": 3_234_567, "visits": 2, "beneficiaries": 1}
    ]  # 31 January in, 1 February out
    code, out, _err = _cli(config, "report", *january, "--format", "json", "--no-compare")
    total = json.loads(out)["total"]
    assert code == 0 and (total["net_mg"], total["items"]) == (3_234_567, 2)
    code, out, _err = _cli(config, "totals", "--by", "station", "--format", "json")
    assert code == 0 and json.loads(out)[0]["items"] == 3  # no period: every record
    code, _out, err = _cli(config, "totals", "--from", "2026-02-01", "--to", "2026-01-31")
    assert code == 2 and err == (
        "Error: the period ends (2026-01-31) before it starts (2026-02-01)\n"
    )


# -- issue 13: read-only commands start without the MQTT password ----------------------------------
READ_ONLY = [
    ("report", "--year", "2026"),
    ("totals",),
    ("stations",),
    ("quarantine",),
    ("conflicts",),
    ("calibrations",),
    ("beneficiary", "show", PERSON),
    ("config", "check"),
    ("db", "migrate"),
]


@pytest.fixture
def no_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(UNSET, raising=False)
    url = str(tmp_path / "ledger.db")
    _fill(url)
    return _config(tmp_path, url, f'[mqtt]\nusername = "ledger"\npassword = "env:{UNSET}"\n')


@pytest.mark.parametrize("args", READ_ONLY, ids=[" ".join(a) for a in READ_ONLY])
def test_read_only_commands_start_without_the_mqtt_password(
    no_password: Path, args: tuple[str, ...]
) -> None:
    code, _out, err = _cli(no_password, *args)
    assert code == 0, err
    assert "Configuration error" not in err


def test_run_and_publishing_need_the_mqtt_password_in_one_line(
    no_password: Path, tmp_path: Path
) -> None:
    for args in (("run",), ("registry", "import", str(_registry(tmp_path)))):
        code, out, err = _cli(no_password, *args)
        assert (code, out) == (78, ""), err
        assert err.count("\n") == 1 and UNSET in err and "ledger run" in err, err
    # stored without publishing: no broker, no password
    code, out, err = _cli(
        no_password, "registry", "import", str(_registry(tmp_path)), "--no-publish"
    )
    assert code == 0 and "Registry version 1" in out, err


def test_config_check_says_what_an_unset_mqtt_password_stops(no_password: Path) -> None:
    code, out, err = _cli(no_password, "config", "check")
    assert code == 0 and out.startswith("Configuration OK")
    assert UNSET in err and "ledger run" in err


def test_serve_starts_without_the_mqtt_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(UNSET, raising=False)
    url = str(tmp_path / "ledger.db")
    _fill(url)
    config = ledger_config(tmp_path, url)
    config.write_text(config.read_text() + f'[mqtt]\npassword = "env:{UNSET}"\n')
    with serving(config, tmp_path / "serve.log") as (base, _port):
        assert base.startswith("http://127.0.0.1:")


def _registry(tmp_path: Path) -> Path:
    path = tmp_path / "registry.toml"
    path.write_text('[[categories]]\ncode = "CAT-X"\nname = "X"\n', encoding="utf-8")
    return path


def test_the_example_config_reads_without_its_mqtt_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PESEE_LEDGER_MQTT_PASSWORD", raising=False)
    example = Path(__file__).resolve().parents[2] / "ledger" / "ledger.example.toml"
    text = example.read_text(encoding="utf-8").replace(
        "/var/lib/pesee-ledger/ledger.db", str(tmp_path / "ledger.db"), 1
    )
    config = tmp_path / "ledger.toml"
    config.write_text(text, encoding="utf-8")
    code, out, err = _cli(config, "stations")
    assert code == 0 and out.startswith("station"), err
    code, out, err = _cli(config, "run")
    assert (code, out) == (78, "") and "PESEE_LEDGER_MQTT_PASSWORD" in err


def test_a_readers_config_never_connects_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from common.settings import ConfigError
    from ledger.config import parse_ledger_config

    monkeypatch.delenv(UNSET, raising=False)
    text = f"[mqtt]\nhost = \"h\"\npassword = 'env:{UNSET}'   # the broker's\n"
    config = parse_ledger_config(text, mqtt_password=False)
    assert config.unset_mqtt_password == UNSET and config.mqtt.password is None
    with pytest.raises(ConfigError, match=UNSET):
        config.mqtt_settings()
    with pytest.raises(ConfigError, match=UNSET):  # the service's own load stays strict
        parse_ledger_config(text)
    # a layout the reader's check does not know (an inline table): the unset variable stays an error
    inline = f'mqtt = {{ host = "h", password = "env:{UNSET}" }}\n'
    with pytest.raises(ConfigError, match=UNSET):
        parse_ledger_config(inline, mqtt_password=False)
    monkeypatch.setenv(UNSET, "s3cret")
    config = parse_ledger_config(text, mqtt_password=False)
    assert config.unset_mqtt_password is None and config.mqtt_settings().password == "s3cret"


def test_tables_for_people_show_local_time_not_raw_utc(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    try:
        code, out, _err = _cli(config, "beneficiary", "show", PERSON)
    finally:
        monkeypatch.undo()
        time.tzset()
    # 31 January 2026, 18:00 UTC: 19:00 in Paris, to the minute, no "T…Z"
    assert code == 0 and out.startswith("2026-01-31 19:00 st-a"), out
