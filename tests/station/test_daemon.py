"""``station run`` as systemd runs it: a real process on simulated devices, stopped by SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from drivers.sim.scale import ScaleSimulator
from drivers.sim.scanner import ScannerSimulator
from station.store import Store
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
                if status_path.exists() and json.loads(status_path.read_text())["scale"]["ok"]:
                    break
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.05)
            assert scanner.wait_reader(10)
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
