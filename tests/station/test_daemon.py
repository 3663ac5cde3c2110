"""``station run`` as systemd runs it: a real process on simulated devices, stopped by SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from drivers.sim.scale import ScaleSimulator
from drivers.sim.scanner import ScannerSimulator
from station.config import Config
from station.daemon import Daemon
from station.sim import example_config
from station.status_file import read_status
from station.store import Store, StoreError, journal_station
from tests.support.helpers import beneficiary, start_daemon


def test_station_run_records_scans_and_stops_cleanly(config_file: Path, tmp_path: Path) -> None:
    with ScaleSimulator() as scale, ScannerSimulator() as scanner:
        scale_url = scale.start_pty(tmp_path / "scale")
        scanner_url = scanner.start_pty(tmp_path / "scanner")
        text = config_file.read_text()
        text = text.replace('"/dev/pesee-scale"', f'"{scale_url}"')
        text = text.replace('"/dev/pesee-scanner"', f'"{scanner_url}"')
        config_file.write_text(text)
        proc = start_daemon(config_file)
        status_path = tmp_path / "run" / "status.json"
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                status = read_status(status_path) or {}
                # the scanner's port open AND configured: pyserial flushes the input after
                # open(), so a code sent when the pty first has a reader may be lost
                if status.get("scale", {}).get("ok") and status.get("scanner_connected"):
                    break
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.05)
            scanner.scan(beneficiary(5))
            db = tmp_path / "data" / "station.db"
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not (db.exists() and _count(db) >= 1):
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        with Store(db, "ressourcerie-nord-1") as store:
            rows = list(store.records())
            assert [r["kind"] for r in rows] == ["visit_open"]
            assert store.verify().ok


def _count(db: Path) -> int:
    with Store(db, "ressourcerie-nord-1") as store:
        return store.count()


def test_station_run_with_bad_config_exits_78(config_file: Path) -> None:
    config_file.write_text(config_file.read_text().replace("[scale]", "[scales]"))
    done = subprocess.run(
        [sys.executable, "-m", "station", "--lang", "en", "--config", str(config_file), "run"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 78
    assert "scales: unknown key" in done.stderr


def _config(tmp_path: Path, station: str) -> Config:
    return example_config(
        {
            "station": {
                "id": station,
                "data_dir": str(tmp_path / "data"),
                "runtime_dir": str(tmp_path / "run"),
                "language": "en",
            }
        }
    )


def test_an_empty_journal_of_the_example_id_is_rebound_at_start(tmp_path: Path) -> None:
    """install.sh started the service on the example config before README step 4 set the
    id: the journal it made is empty, so the configured id takes it over."""
    example = _config(tmp_path, "ressourcerie-nord-1")
    Daemon(example, pin_factory=MockFactory())._shutdown()
    assert journal_station(example.store_path) == "ressourcerie-nord-1"
    daemon = Daemon(_config(tmp_path, "epicerie-sud-2"), pin_factory=MockFactory())
    try:
        assert daemon.store.station == "epicerie-sud-2"
    finally:
        daemon._shutdown()
    assert journal_station(example.store_path) == "epicerie-sud-2"


def test_a_journal_with_records_of_another_id_is_refused_with_the_fix(tmp_path: Path) -> None:
    config = _config(tmp_path, "epicerie-sud-2")
    with Store(config.store_path, "ressourcerie-nord-1") as store:
        store.append("weighing", net_mg=1000)
    with pytest.raises(StoreError) as refused:
        Daemon(config, pin_factory=MockFactory())
    message = str(refused.value)
    assert "belongs to station 'ressourcerie-nord-1', not 'epicerie-sud-2'" in message
    assert 'put back [station] id = "ressourcerie-nord-1"' in message
    assert "to start a new one" in message
    assert journal_station(config.store_path) == "ressourcerie-nord-1"
