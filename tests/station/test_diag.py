"""Technician diagnostics on simulators: scanner test (pty), panel test (MockFactory), sync."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from drivers.sim.scanner import ScannerSimulator
from ledger.service import LedgerService
from station.cli import cli
from station.pinhash import hash_pin
from tests.support.broker import Broker
from tests.support.helpers import beneficiary, start_daemon, until

STATION = "ressourcerie-nord-1"


def _station(config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "station", "--lang", "en", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


# -- station scanner test -----------------------------------------------------------------------


def test_scanner_test_classifies_each_code(config_file: Path, tmp_path: Path) -> None:
    codes = [
        beneficiary(4),
        beneficiary(4)[:-1] + str((int(beneficiary(4)[-1]) + 1) % 10),  # wrong check digit
        "CAT-VET",
        "BAC-1",
        "OP-0001",
        "S-014",
        "FIN",
        "TARE",
        "ECH-10",
        "HELLO",
    ]
    with ScannerSimulator() as sim:
        url = sim.start_pty(tmp_path / "scanner")
        text = config_file.read_text().replace('"/dev/pesee-scanner"', f'"{url}"')
        config_file.write_text(text)
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "station", "--lang", "en", "--config", str(config_file)),
                *("scanner", "test", "--json", "--count", str(len(codes)), "--timeout", "30"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert sim.wait_reader(20)
            for code in codes:
                sim.scan(code)
                time.sleep(0.05)  # one line each, as a person scans
            sim.send_raw(b"\x01\x02bad\r\n")  # not a code at all: said, never classified
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["event"] == "state" and lines[0]["ok"] is True
    seen = {ln["kind"]: ln for ln in lines if ln["event"] == "code"}
    assert [ln["kind"] for ln in lines if ln["event"] == "code"] == [
        "beneficiary",
        "misread",
        "category",
        "container",
        "operator",
        "referrer",
        "end_visit",
        "tare",
        "sample",
        "unknown",
    ]
    ben = seen["beneficiary"]
    assert ben["code"] == "•" * (len(codes[0]) - 4) + codes[0][-4:]  # never the whole code
    assert (ben["check_digit"], ben["referrer"], ben["referrer_name"]) == ("ok", "001", "CCAS")
    assert seen["misread"]["check_digit"] == "wrong"
    assert "check digit" in seen["misread"]["reason"]
    assert seen["category"]["text"] == "category CAT-VET “Vêtements”"
    assert seen["container"]["tare_mg"] == 450_000
    assert seen["operator"]["name"] == "Marie"
    assert seen["referrer"]["referrer"] == "014"
    assert seen["sample"]["pieces"] == 10
    assert "no pattern matches" in seen["unknown"]["reason"]


def test_scanner_test_shows_weight_labels(config_file: Path, tmp_path: Path) -> None:
    # a certified scale's EAN-13 label: its weight shown; a wrong check digit said, never a crash
    good, bad = "2112345012506", "2112345012507"  # 21 12345 01250 g, check digit 6
    with ScannerSimulator() as sim:
        url = sim.start_pty(tmp_path / "scanner")
        text = config_file.read_text().replace('"/dev/pesee-scanner"', f'"{url}"')
        config_file.write_text(
            text + '\n[[codes.weight_labels]]\nname = "etiqueteuse"\nprefix = "21"\n'
        )
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "station", "--lang", "en", "--config", str(config_file)),
                *("scanner", "test", "--json", "--count", "2", "--timeout", "30"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert sim.wait_reader(20)
            for code in (good, bad):
                sim.scan(code)
                time.sleep(0.05)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, err
    codes = [json.loads(ln) for ln in out.splitlines() if json.loads(ln)["event"] == "code"]
    assert [c["kind"] for c in codes] == ["weight_label", "bad_label"]
    assert "check digit" in codes[1]["reason"]
    assert codes[0]["weight_mg"] == 1_250_000
    assert "1.250 kg" in codes[0]["text"]


def test_scanner_test_text_and_unplugged_scanner(config_file: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-scanner"
    text = config_file.read_text().replace('"/dev/pesee-scanner"', f'"{missing}"')
    config_file.write_text(text)
    done = _station(config_file, "scanner", "test", "--timeout", "1")
    assert done.returncode == 74, done.stdout + done.stderr
    assert "scanner not available" in done.stdout
    assert done.stderr.startswith(f"Cannot open the scanner {missing}")
    assert "Traceback" not in done.stderr


# -- station panel test -------------------------------------------------------------------------


@pytest.fixture
def mock_pins() -> Iterator[MockFactory]:
    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = previous


def _rising_edges(pin: Any) -> int:
    states = [s.state for s in list(pin.states)]
    return sum(1 for a, b in itertools.pairwise(states) if not a and b)


def _operator(factory: MockFactory, hold_s: float, stop: threading.Event) -> None:
    """A person at the panel: presses when green lights up, holds when amber does."""
    button, green, amber, buzzer = (factory.pin(n) for n in (17, 22, 23, 24))

    def wait(cond: Callable[[], bool]) -> bool:
        while not cond():
            if stop.wait(0.005):
                return False
        return True

    # the LED and buzzer steps come first: the press cue is green lit after the buzzer beeped
    if not wait(lambda: _rising_edges(buzzer) >= 1 and not buzzer.state and green.state):
        return
    button.drive_low()
    time.sleep(0.1)
    button.drive_high()
    if not wait(lambda: amber.state):
        return
    button.drive_low()
    wait(lambda: not amber.state)  # the test turns the cue off once the hold was seen
    time.sleep(0.05)
    button.drive_high()
    del hold_s


def test_panel_test_drives_every_output_and_sees_press_and_hold(
    config_file: Path, mock_pins: MockFactory
) -> None:
    config_file.write_text(config_file.read_text().replace("hold_time = 2.0", "hold_time = 0.5"))
    stop = threading.Event()
    person = threading.Thread(target=_operator, args=(mock_pins, 0.5, stop), daemon=True)
    person.start()
    try:
        result = CliRunner().invoke(
            cli,
            [
                *("--lang", "en", "--config", str(config_file)),
                *("panel", "test", "--yes", "--timeout", "15", "--json"),
            ],
        )
    finally:
        stop.set()
        person.join(5)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True
    assert [s["step"] for s in report["steps"]] == [
        "green LED",
        "red LED",
        "amber LED",
        "buzzer",
        "press",
        "hold",
    ]
    assert all(s["ok"] for s in report["steps"]), report
    # the pins really moved: each LED lit (green twice: its step and the press cue)
    edges = {n: _rising_edges(mock_pins.pin(p)) for n, p in [("g", 22), ("r", 27), ("a", 23)]}
    assert edges == {"g": 2, "r": 1, "a": 2}
    assert _rising_edges(mock_pins.pin(24)) == 1
    assert not any(mock_pins.pin(p).state for p in (22, 27, 23, 24))  # all off at the end


def test_panel_test_fails_without_a_press_and_answers_no(
    config_file: Path, mock_pins: MockFactory
) -> None:
    # nobody at the panel, and the technician answers "n" for the red LED
    result = CliRunner().invoke(
        cli,
        ["--lang", "en", "--config", str(config_file), "panel", "test", "--timeout", "0.3"],
        input="y\nn\ny\ny\n",
    )
    assert result.exit_code == 1, result.output
    assert "✔ green LED: pin GPIO22 switched on and off" in result.output
    assert "✘ red LED: not seen: check its wiring and resistor (pin GPIO27)" in result.output
    assert "✘ press: none within 0 s: check the button's wiring to GND" in result.output
    assert "✘ hold: none within 0 s" in result.output
    assert result.output.rstrip().endswith("Panel test FAILED")


# -- station sync status / now ------------------------------------------------------------------


def _sync_json(config: Path) -> dict[str, Any]:
    done = _station(config, "sync", "status", "--json")
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_sync_now_without_daemon(config_file: Path) -> None:
    done = _station(config_file, "sync", "now")
    assert done.returncode == 69
    assert done.stderr.startswith("The station daemon is not running")


def test_sync_now_drains_the_backlog_once_the_broker_is_back(
    config_file: Path, tmp_path: Path, broker: Broker, ledger: LedgerService
) -> None:
    text = config_file.read_text().replace("port = 1883", f"port = {broker.port}")
    text = text.replace("resend_after = 15", "resend_after = 2")
    text += f'\n[[technicians]]\nname = "Alice"\npin = "{hash_pin("4821", iterations=1000)}"\n'
    config_file.write_text(text)
    daemon = start_daemon(config_file, stdout=subprocess.DEVNULL)
    status = tmp_path / "run" / "status.json"
    try:
        assert until(
            lambda: (
                status.exists()
                and json.loads(status.read_text()).get("sync", {}).get("connected") is True
            ),
            timeout=20,
        ), "the daemon never reported a connected link"
        broker.stop()
        assert until(lambda: not json.loads(status.read_text())["sync"]["connected"], timeout=20)
        entry = ["manual-entry", "--pin", "4821", "--category", "CAT-VET", "--json"]
        for weight in ("1kg", "2kg", "3kg"):
            done = _station(
                config_file, *entry, "--weight", weight, "--beneficiary", beneficiary(9)
            )
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["via"] == "daemon"  # the loop wrote them
        report = _sync_json(config_file)
        assert report["journal"]["last_seq"] == 3
        assert report["journal"]["backlog"] == 3
        live = report["daemon"]
        assert live["connected"] is False and live["last_error"]
        human = _station(config_file, "sync", "status")
        assert "daemon: running (pid" in human.stdout and "not connected" in human.stdout
        broker.restart()
        done = _station(config_file, "sync", "now", "--wait", "45", "--json", timeout=90)
        assert done.returncode == 0, done.stdout + done.stderr
        state = json.loads(done.stdout)
        assert (state["connected"], state["backlog"], state["acked_through"]) == (True, 0, 3)
        assert until(lambda: _sync_json(config_file)["journal"]["synced_through"] == 3, timeout=20)
        rows = list(ledger.store.records(STATION))
        assert [(r["seq"], r["source"], r["operator"]) for r in rows] == [
            (1, "manual", "Alice"),
            (2, "manual", "Alice"),
            (3, "manual", "Alice"),
        ]
        verify = _station(config_file, "db", "verify")
        assert verify.returncode == 0 and "Journal OK: 3 records" in verify.stdout
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            _out, err = daemon.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            daemon.kill()
            _out, err = daemon.communicate()
    assert daemon.returncode == 0, err
    assert not (tmp_path / "run" / "control.sock").exists()  # removed at a clean stop
