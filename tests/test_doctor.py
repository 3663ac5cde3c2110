"""``station doctor`` on simulated devices: what answers, what does not, and the exit status."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from drivers.sim.scale import ScaleSimulator
from drivers.sim.scanner import ScannerSimulator
from station.sim import SimulatedCounter
from station.store import Store
from sync.broker import Broker


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
        assert "✔ scale:" in out and "2500000 mg kg, stable" in out
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
        example = Path(__file__).resolve().parents[1] / "station" / "station.example.toml"
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
