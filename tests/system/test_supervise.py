"""Supervision as systemd sees it: READY/STATUS/WATCHDOG/STOPPING on a real notify socket, the
watchdog going quiet when a worker is stuck, SIGHUP with a good and a bad config."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.notify import Watchdog
from drivers.sim.scale import ScaleSimulator
from drivers.sim.scanner import ScannerSimulator
from station.outcomes import Result
from station.sim import SimulatedCounter


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[socket.socket]:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(0.2)
    yield sock
    sock.close()


def _messages(sock: socket.socket, until: float) -> list[str]:
    out = []
    deadline = time.monotonic() + until
    while time.monotonic() < deadline:
        try:
            out.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
    return out


def test_notify_protocol_of_a_running_daemon(
    tmp_path: Path, config_file: Path, notify: socket.socket
) -> None:
    with ScaleSimulator() as scale, ScannerSimulator() as scanner:
        text = config_file.read_text()
        text = text.replace('"/dev/pesee-scale"', f'"{scale.start_pty(tmp_path / "scale")}"')
        text = text.replace('"/dev/pesee-scanner"', f'"{scanner.start_pty(tmp_path / "scanner")}"')
        config_file.write_text(text)
        env = {
            **os.environ,
            "GPIOZERO_PIN_FACTORY": "mock",
            "PESEE_LANG": "en",
            "NOTIFY_SOCKET": str(tmp_path / "notify"),
            "WATCHDOG_USEC": "400000",  # pings every 0.2 s
        }
        env.pop("WATCHDOG_PID", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "station", "--lang", "en", "--config", str(config_file), "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            seen = _messages(notify, 4.0)
            proc.send_signal(signal.SIGTERM)
            seen += _messages(notify, 1.5)
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    ready = [m for m in seen if m.startswith("READY=1")]
    assert ready and "STATUS=" in ready[0]
    pings = [m for m in seen if "WATCHDOG=1" in m]
    assert len(pings) >= 5
    assert "backlog" in pings[-1]  # STATUS line: scale, backlog, last record
    assert any(m.startswith("STOPPING=1") for m in seen)


def test_watchdog_goes_quiet_when_the_loop_is_stuck(
    tmp_path: Path, notify: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    with SimulatedCounter(tmp_path / "c", {"station": {"language": "en"}}) as counter:
        daemon = counter.daemon
        dog = Watchdog(daemon.checks(stale_after=0.5), daemon.summary, 0.1)
        dog.start()
        try:
            assert any("WATCHDOG=1" in m for m in _messages(notify, 1.0))
            # a listener that never returns: the loop thread is stuck, as on a hung fsync
            release = threading.Event()

            def stuck_listener(_result: Result) -> None:
                release.wait(10)

            counter.station.listeners.append(stuck_listener)
            counter.scan("CAT-VET")
            time.sleep(0.8)
            _messages(notify, 0.3)  # drop what was sent before it went stale
            stuck = _messages(notify, 1.0)
            assert stuck and not any("WATCHDOG=1" in m for m in stuck)
            assert any("stuck: loop" in m for m in stuck)
            assert dog.stuck == ["loop"]
            release.set()
            counter.station.listeners.clear()
            assert any("WATCHDOG=1" in m for m in _messages(notify, 1.5))
        finally:
            dog.stop()


def test_sighup_reloads_a_good_config_and_refuses_a_bad_one(
    tmp_path: Path, config_file: Path
) -> None:
    with ScaleSimulator() as scale, ScannerSimulator() as scanner:
        text = config_file.read_text()
        text = text.replace('"/dev/pesee-scale"', f'"{scale.start_pty(tmp_path / "scale")}"')
        text = text.replace('"/dev/pesee-scanner"', f'"{scanner.start_pty(tmp_path / "scanner")}"')
        config_file.write_text(text)
        env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PESEE_LANG": "en"}
        log_path = tmp_path / "station.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "station",
                    "--lang",
                    "en",
                    "--config",
                    str(config_file),
                    "run",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            assert scanner.wait_reader(20)
            config_file.write_text(text.replace('name = "Vêtements"', 'name = "Textile"'))
            proc.send_signal(signal.SIGHUP)
            _wait_for(log_path, "configuration reloaded")
            config_file.write_text(text.replace("[scale]", "[scael]"))
            proc.send_signal(signal.SIGHUP)
            _wait_for(log_path, "configuration refused, keeping the running one")
            assert proc.poll() is None  # still running on the last good config
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "scael: unknown key" in log_path.read_text()


def _wait_for(path: Path, text: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in the log:\n{path.read_text(errors='replace')}")


def test_ledger_notifies_too(tmp_path: Path, notify: socket.socket) -> None:
    from tests.support.broker import Broker

    with Broker(tmp_path / "broker", allow_anonymous=True) as broker:
        config = tmp_path / "ledger.toml"
        config.write_text(
            f'[ledger]\ndatabase = "{tmp_path / "l.db"}"\n'
            f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
        )
        env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "400000"}
        env.pop("WATCHDOG_PID", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "ledger", "--lang", "en", "--config", str(config), "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            seen = _messages(notify, 3.0)
            proc.send_signal(signal.SIGTERM)
            seen += _messages(notify, 1.0)
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert any(m.startswith("READY=1") for m in seen)
    assert sum("WATCHDOG=1" in m for m in seen) >= 3
    assert any(m.startswith("STOPPING=1") for m in seen)
