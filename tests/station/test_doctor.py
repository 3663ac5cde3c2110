"""``station doctor`` on simulated devices: what answers, what does not, and the exit status."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest

from drivers.sim.scale import ScaleSimulator
from drivers.sim.scanner import ScannerSimulator
from station.calibration import CalibrationState, Correction, save_state
from station.sim import SimulatedCounter
from station.store import Store
from tests.support.broker import Broker


def _doctor(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "station", "--lang", "en", "--config", str(config), "doctor"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _config(config_file: Path, scale_url: str, scanner_url: str, port: int) -> Path:
    text = config_file.read_text()
    text = text.replace('"/dev/pesee-scale"', f'"{scale_url}"')
    text = text.replace('"/dev/pesee-scanner"', f'"{scanner_url}"')
    text = text.replace("port = 1883", f"port = {port}")
    config_file.write_text(text)
    return config_file


@pytest.mark.broker
def test_doctor_all_good_then_a_scale_unplugged(tmp_path: Path, config_file: Path) -> None:
    with (
        ScaleSimulator() as scale,
        ScannerSimulator() as scanner,
        Broker(tmp_path / "broker", allow_anonymous=True) as broker,
    ):
        config = _config(
            config_file,
            scale.start_pty(tmp_path / "scale"),
            scanner.start_pty(tmp_path / "scanner"),
            broker.port,
        )
        scale.place("2.500", settle_s=0)
        with Store(tmp_path / "data" / "station.db", "ressourcerie-nord-1") as store:
            store.append("weighing", net_mg=1)
        done = _doctor(config)
        assert done.returncode == 0, done.stdout + done.stderr
        out = done.stdout
        assert "✔ scale:" in out and "2.500 kg, stable" in out
        assert "✔ journal: 1 records, chain intact, 1 not yet synced" in out
        assert f"✔ broker: 127.0.0.1:{broker.port} accepts connections" in out
        assert "! daemon: not running" in out
        scale.unplug()
        broker.stop()
        done = _doctor(config)
        assert done.returncode == 1
        assert "✘ scale:" in done.stdout
        assert "✘ broker:" in done.stdout
        assert "Traceback" not in done.stderr


def test_doctor_asks_a_running_daemon_instead_of_the_port(tmp_path: Path) -> None:
    with SimulatedCounter(tmp_path, {"station": {"language": "en"}}) as counter:
        config = tmp_path / "station.toml"
        example = Path(__file__).resolve().parents[2] / "station" / "station.example.toml"
        text = example.read_text()
        text = text.replace('"/var/lib/pesee"', f'"{tmp_path / "data"}"')
        text = text.replace('"/run/pesee"', f'"{tmp_path / "run"}"')
        config.write_text(text)
        status = counter.config.status_path
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the status file follows within a few seconds
            if status.exists() and json.loads(status.read_text())["scale"]["ok"]:
                break
            time.sleep(0.1)
        done = _doctor(config)
        assert "daemon: running (pid" in done.stdout
        assert "✔ scale: daemon says:" in done.stdout


# -- one test per failure the doctor claims to detect ---------------------------------------------
# Each starts from a healthy station (scale and scanner simulators, clock flagged synchronised,
# an intact journal, no sync) and breaks exactly one thing.


@pytest.fixture
def healthy(tmp_path: Path, config_file: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    with ScaleSimulator() as scale, ScannerSimulator() as scanner:
        config = _config(
            config_file,
            scale.start_pty(tmp_path / "scale"),
            scanner.start_pty(tmp_path / "scanner"),
            1883,
        )
        config.write_text(config.read_text().replace("enabled = true", "enabled = false"))
        scale.place("1.000", settle_s=0)
        with Store(tmp_path / "data" / "station.db", "ressourcerie-nord-1") as store:
            store.append("weighing", net_mg=1)
        flag = tmp_path / "timesync-flag"
        flag.touch()
        yield config, {"PESEE_TIMESYNC_FLAG": str(flag)}


def _run(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "station", "--lang", "en", "--config", str(config), "doctor"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert "Traceback" not in done.stderr
    return done


def _line(out: str, name: str) -> str:
    lines = [ln for ln in out.splitlines() if ln[2:].startswith(name + ":")]
    assert len(lines) == 1, out
    return lines[0]


def test_doctor_healthy_station_passes(healthy: tuple[Path, dict[str, str]]) -> None:
    config, env = healthy
    done = _run(config, env)
    assert done.returncode == 0, done.stdout
    for name in ("config", "scale", "scanner", "journal", "clock", "disk"):
        assert _line(done.stdout, name).startswith("✔"), done.stdout


def test_doctor_config_invalid(healthy: tuple[Path, dict[str, str]]) -> None:
    config, env = healthy
    config.write_text(config.read_text().replace("[scale]", "[scales]"))
    done = _run(config, env)
    assert done.returncode == 1
    assert done.stdout.startswith(f"✘ config: {config}: scales: unknown key")


def test_doctor_scale_not_answering(healthy: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    config, env = healthy
    master, slave = os.openpty()  # a port that exists, where nothing ever answers
    port = os.ttyname(slave)
    try:
        config.write_text(config.read_text().replace(f'"{tmp_path / "scale"}"', f'"{port}"'))
        done = _run(config, env)
    finally:
        os.close(master)
        os.close(slave)
    assert done.returncode == 1
    line = _line(done.stdout, "scale")
    assert line == f"✘ scale: {port} (mt-sics): no answer within 2 s"


def test_doctor_scanner_absent(healthy: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    config, env = healthy
    (tmp_path / "scanner").unlink()  # the udev link is gone: unplugged
    done = _run(config, env)
    assert done.returncode == 1
    assert _line(done.stdout, "scanner") == (
        f"✘ scanner: {tmp_path / 'scanner'} does not exist (unplugged? udev rule?)"
    )


def test_doctor_journal_chain_broken(healthy: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    config, env = healthy
    raw = sqlite3.connect(tmp_path / "data" / "station.db")
    raw.execute("UPDATE records SET net_mg = 2 WHERE seq = 1")
    raw.commit()
    raw.close()
    done = _run(config, env)
    assert done.returncode == 1
    assert _line(done.stdout, "journal") == (
        "✘ journal: seq 1: content altered (hash does not match)"
    )


def test_doctor_journal_file_corrupt(healthy: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    config, env = healthy
    db = tmp_path / "data" / "station.db"
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
    db.write_bytes(b"this is not a database" * 200)
    done = _run(config, env)
    assert done.returncode == 1
    assert _line(done.stdout, "journal").startswith(f"✘ journal: {db}: file is not a database")


def test_doctor_clock_not_synchronised(
    healthy: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    config, env = healthy
    (tmp_path / "timesync-flag").unlink()
    done = _run(config, env)
    assert done.returncode == 0  # a warning: records are flagged, the ledger repairs times
    assert _line(done.stdout, "clock") == (
        "! clock: not synchronised: records are flagged, the ledger repairs their times later"
    )


def test_doctor_disk_space_low(healthy: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    config, env = healthy
    free_mb = shutil.disk_usage(tmp_path / "data").free // (1024 * 1024)
    limit = free_mb + 1024  # the card is "full" for this station
    config.write_text(config.read_text().replace("min_free_mb = 50", f"min_free_mb = {limit}"))
    done = _run(config, env)
    assert done.returncode == 1
    line = _line(done.stdout, "disk")
    assert line.startswith("✘ disk:") and line.endswith(f"MB free (refused below {limit} MB)")


def test_doctor_calibration_due(healthy: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    config, env = healthy
    config.write_text(
        config.read_text().replace('capacity = "15 kg"', 'capacity = "15 kg"\ne = "5 g"')
    )
    done = _run(config, env)
    assert done.returncode == 0, done.stdout
    assert _line(done.stdout, "calibration") == (
        "! calibration: never verified on this station: run station calibrate"
    )
    old = (datetime.now(UTC) - timedelta(days=400)).isoformat(timespec="seconds")
    save_state(tmp_path / "data", CalibrationState(verified_at=old, verified_step="check"))
    done = _run(config, env)
    line = _line(done.stdout, "calibration")
    assert line.startswith(f"! calibration: last verified {old[:10]} (check), due ")
    assert line.endswith("OVERDUE")


def test_doctor_status_and_panel_show_a_failed_check(
    healthy: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """Issue 17 item 5: a failed `calibrate check` is a doctor failure and a status line, and
    the calibration is due (the daemon's start-up signal on the panel follows `overdue`)."""
    config, env = healthy
    now = datetime.now(UTC).isoformat(timespec="seconds")
    state = CalibrationState(verified_at=now, verified_step="span", failed_id="f1", failed_at=now)
    save_state(tmp_path / "data", state)
    assert state.overdue(365)  # what the daemon signals at start-up (CALIBRATION_DUE)
    done = _run(config, env)
    assert done.returncode == 1, done.stdout
    assert _line(done.stdout, "calibration") == (
        f"✘ calibration: the last check FAILED on {now[:10]}: the scale is out of its limits; "
        "adjust it (station calibrate span) and check it again"
    )
    status = subprocess.run(
        [sys.executable, "-m", "station", "--lang", "en", "--config", str(config), "status"],
        capture_output=True, text=True, timeout=60, env={**os.environ, **env},
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert "calibration: the last check FAILED" in status.stdout
    as_json = subprocess.run(
        [sys.executable, "-m", "station", "--config", str(config), "status", "--json"],
        capture_output=True, text=True, timeout=60, env={**os.environ, **env},
    )  # fmt: skip
    calibration = json.loads(as_json.stdout)["calibration"]
    assert calibration["last_check_failed"] is True and calibration["overdue"] is True


def test_doctor_flags_a_gain_made_on_another_scale(
    healthy: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """The simulated MT-SICS scale answers I4 with its serial: a station-side gain made on
    another scale does not fit it."""
    config, env = healthy
    now = datetime.now(UTC).isoformat(timespec="seconds")
    save_state(
        tmp_path / "data",
        CalibrationState(
            in_force_id="g1",
            correction=Correction(0, Fraction(50, 51)),
            in_force_scale="mt-sics:999",
            verified_at=now,
            verified_step="span",
        ),
    )
    done = _run(config, env)
    assert done.returncode == 1, done.stdout
    line = _line(done.stdout, "calibration")
    assert line.startswith("✘ calibration: the station-side gain in force (0.98039) was set on")
    assert "scale mt-sics:999, but this is mt-sics:1126493049" in line
