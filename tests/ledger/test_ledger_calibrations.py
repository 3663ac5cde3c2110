"""Calibration history at the ledger: the stations' calibration records, listed by
``ledger calibrations`` (technician, step, verdict, scale), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ledger.store import open_store
from station.store import Store
from sync.wire import Batch, decode_batch, encode


def _journal(path: Path) -> tuple[str, list[dict[str, object]]]:
    with Store(path, "st-1") as store:
        store.append("weighing", net_mg=1000)
        for step, verdict, who in (("span", "pass", "Alice"), ("check", "fail", "Bob")):
            store.append(
                "calibration",
                reason=step,
                operator=who,
                scale_id="mt-sics:1126493049",
                data={"step": step, "verdict": verdict, "technician": who},
            )
        return store.epoch, list(store.records())


def test_ledger_lists_the_calibration_history(tmp_path: Path, ledger_url: str) -> None:
    epoch, rows = _journal(tmp_path / "s.db")
    ledger = open_store(ledger_url)
    ledger.ingest(decode_batch(encode(Batch("st-1", epoch, tuple(rows)))))
    ledger.close()
    config = tmp_path / "ledger.toml"
    config.write_text(f'[ledger]\ndatabase = "{ledger_url}"\n')

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ledger", "--lang", "en", "--config", str(config), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = cli("calibrations")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and "2 calibration record(s)" in done.stderr
    assert lines[0].split()[2:] == ["st-1", "span", "pass", "Alice", "mt-sics:1126493049"]
    assert lines[1].split()[2:] == ["st-1", "check", "fail", "Bob", "mt-sics:1126493049"]
    as_json = [json.loads(x) for x in cli("calibrations", "--json").stdout.splitlines()]
    assert [(r["reason"], r["data"]["verdict"]) for r in as_json] == [
        ("span", "pass"),
        ("check", "fail"),
    ]
    assert cli("calibrations", "--station", "st-9").stdout == ""
