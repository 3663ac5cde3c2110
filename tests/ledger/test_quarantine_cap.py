"""The quarantine's cap and purge at the store and the CLI (issue 15 item 5), both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from ledger.cli import cli
from ledger.store import open_store
from ledger.store.conflicts import QuarantineCap, station_of_topic
from sync.topics import Topics

TOPICS = Topics()
CAP = QuarantineCap(messages=3, bytes=1_000_000)


def _day(offset: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=offset)).isoformat()


def _cli(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--lang", "en", "--config", str(config), *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_station_of_topic_under_any_prefix() -> None:
    assert station_of_topic(TOPICS.records("st-1")) == "st-1"
    assert station_of_topic("office/x/stations/st-2/status") == "st-2"
    assert station_of_topic("pesee/v1/ledger/status") == ""
    assert station_of_topic("garbage") == ""


def test_the_cap_keeps_the_oldest_and_counts_the_rest(ledger_url: str) -> None:
    store = open_store(ledger_url)
    results = [
        store.quarantine(TOPICS.records("st-1"), b"m%d" % n, "not JSON", CAP) for n in range(5)
    ]
    assert results == [True, True, True, False, False]
    assert store.quarantine(TOPICS.records("st-2"), b"other", "not JSON", CAP)  # its own cap
    assert [r.station for r in store.quarantined()] == ["st-1"] * 3 + ["st-2"]
    (dropped,) = store.quarantine_dropped()
    assert (dropped.station, dropped.messages, dropped.bytes) == ("st-1", 2, 4)
    # the first drop, not the first message quarantined
    assert store.quarantined("st-1")[-1].received_at <= dropped.first_at <= dropped.last_at
    store.close()


def test_purge_by_date_keeps_the_counts_by_station_resets_them(
    tmp_path: Path, ledger_url: str
) -> None:
    store = open_store(ledger_url)
    for n in range(4):
        store.quarantine(TOPICS.records("st-1"), b"m%d" % n, "not JSON", CAP)
    store.quarantine(TOPICS.records("st-2"), b"x", "not JSON", CAP)
    store.close()
    config = tmp_path / "ledger.toml"
    config.write_text(f'[ledger]\ndatabase = "{ledger_url}"\n', encoding="utf-8")

    code, out = _cli(config, "quarantine", "purge", "--before", _day(-1), "--yes")
    assert (code, out.strip()) == (0, "Nothing to remove.")
    code, out = _cli(config, "quarantine", "purge", "--before", _day(1), "--dry-run")
    assert code == 0 and "Would remove: 4 quarantined message(s) (7 B)" in out
    code, out = _cli(config, "quarantine", "purge", "--before", "2026-13-01", "--yes")
    assert code == 2 and "--before" in out  # one line, a usage error

    code, out = _cli(
        config, "quarantine", "purge", "--station", "st-2", "--before", _day(1), "--yes"
    )
    assert code == 0 and "Removed: 1 quarantined message(s)" in out
    store = open_store(ledger_url)
    assert len(store.quarantined()) == 3
    assert [d.station for d in store.quarantine_dropped()] == ["st-1"]  # kept with --before
    store.close()

    code, out = _cli(config, "quarantine")
    assert "station st-1: 1 message(s)" in out and "over its quarantine cap" in out
    code, out = _cli(config, "quarantine", "purge", "--yes")
    assert code == 0 and "Removed: 3 quarantined message(s)" in out
    store = open_store(ledger_url)
    assert store.quarantined() == [] and store.quarantine_dropped() == []
    store.close()
