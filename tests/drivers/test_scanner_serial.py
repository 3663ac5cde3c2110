"""Serial scanner against the scanner simulator, over a pty and over TCP."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.scanner.serial_scanner import SerialScanner, check_code
from drivers.serialio import Backoff
from drivers.sim.scanner import ScannerSimulator


class Recorder:
    def __init__(self) -> None:
        self.codes: list[str] = []
        self.errors: list[str] = []
        self.states: list[bool] = []
        self.threads: set[str] = set()
        self._cond = threading.Condition()

    def _add(self, bucket: list[object], item: object) -> None:
        with self._cond:
            self.threads.add(threading.current_thread().name)
            bucket.append(item)
            self._cond.notify_all()

    def code(self, code: str) -> None:
        self._add(self.codes, code)  # type: ignore[arg-type]

    def error(self, message: str) -> None:
        self._add(self.errors, message)  # type: ignore[arg-type]

    def state(self, connected: bool, detail: str) -> None:
        self._add(self.states, connected)  # type: ignore[arg-type]

    def wait(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        with self._cond:
            assert self._cond.wait_for(predicate, timeout), "timed out"


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture(params=["pty", "tcp"])
def sim(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ScannerSimulator]:
    with ScannerSimulator() as simulator:
        if request.param == "pty":
            simulator.start_pty(tmp_path / "scanner")  # the udev-like link survives replug
        else:
            simulator.start_tcp()
        yield simulator


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def scanner(sim: ScannerSimulator, rec: Recorder) -> Iterator[SerialScanner]:
    reader = SerialScanner(
        sim.url,
        rec.code,
        on_state=rec.state,
        on_error=rec.error,
        idle_timeout=0.1,
        backoff=Backoff(0.01, 0.1),
    )
    with reader:
        rec.wait(lambda: rec.states == [True])
        assert sim.wait_reader()
        yield reader
    assert not reader.running


@pytest.mark.parametrize("terminator", [b"\r\n", b"\r", b"\n"], ids=["crlf", "cr", "lf"])
def test_codes_with_each_terminator(
    sim: ScannerSimulator, scanner: SerialScanner, rec: Recorder, terminator: bytes
) -> None:
    sim.scan("3760123456789", terminator)
    sim.scan("BEN-0042", terminator)
    sim.scan("  cat textile \t", terminator)
    rec.wait(lambda: len(rec.codes) == 3)
    assert rec.codes == ["3760123456789", "BEN-0042", "cat textile"]
    assert rec.errors == []
    assert rec.threads == {"scanner"}


def test_mixed_terminators_in_one_burst(
    sim: ScannerSimulator, scanner: SerialScanner, rec: Recorder
) -> None:
    sim.send_raw(b"A1\rB2\nC3\r\n\r\nD4\n\r")
    rec.wait(lambda: len(rec.codes) == 4)
    assert rec.codes == ["A1", "B2", "C3", "D4"]


def test_garbage_and_non_ascii_rejected(
    sim: ScannerSimulator, scanner: SerialScanner, rec: Recorder
) -> None:
    sim.send_raw(b"\x01\x02\x03\r\n")
    sim.send_raw("Café-12".encode() + b"\r\n")
    sim.send_raw(b"\xff\xfe\x00\r")
    sim.send_raw(b"01\x1d17\r\n")  # a GS1 group separator is a control character too
    sim.send_raw(b"   \r\n")  # blank: noise, neither code nor error
    sim.scan("GOOD")
    rec.wait(lambda: rec.codes == ["GOOD"])
    assert len(rec.errors) == 4
    assert scanner.rejected == 4


def test_overlong_line_rejected_whole(
    sim: ScannerSimulator, scanner: SerialScanner, rec: Recorder
) -> None:
    for _ in range(4):
        sim.send_raw(b"Z" * 200)  # 800 bytes without a terminator, in one burst
    sim.send_raw(b"\r\n")
    sim.scan("AFTER")
    rec.wait(lambda: rec.codes == ["AFTER"])
    assert len(rec.errors) == 1 and "longer" in rec.errors[0]


def test_partial_code_discarded_after_idle_timeout(
    sim: ScannerSimulator, scanner: SerialScanner, rec: Recorder
) -> None:
    sim.send_raw(b"PART")
    wait_until(lambda: scanner.discarded == 1)
    sim.scan("NEXT")
    rec.wait(lambda: bool(rec.codes))
    assert rec.codes == ["NEXT"]
    assert rec.errors == []


def test_callback_raising_does_not_stop_reader(sim: ScannerSimulator, rec: Recorder) -> None:
    def on_code(code: str) -> None:
        rec.code(code)
        raise RuntimeError("station bug")

    with SerialScanner(sim.url, on_code, on_state=rec.state, backoff=Backoff(0.01, 0.1)):
        rec.wait(lambda: rec.states == [True])
        assert sim.wait_reader()
        sim.scan("ONE")
        sim.scan("TWO")
        rec.wait(lambda: len(rec.codes) == 2)
    assert rec.codes == ["ONE", "TWO"]


def test_unplug_then_replug_reconnects(
    sim: ScannerSimulator, scanner: SerialScanner, rec: Recorder
) -> None:
    sim.scan("BEFORE")
    rec.wait(lambda: rec.codes == ["BEFORE"])
    sim.send_raw(b"HALF")  # cut by the unplug: must not be glued to the next code
    sim.unplug()
    rec.wait(lambda: rec.states == [True, False])
    assert not sim.has_reader()
    sim.replug()
    rec.wait(lambda: rec.states == [True, False, True])
    assert sim.wait_reader()
    sim.scan("AFTER")
    rec.wait(lambda: len(rec.codes) == 2)
    assert rec.codes == ["BEFORE", "AFTER"]


def test_stop_is_bounded_while_port_absent(tmp_path: Path, rec: Recorder) -> None:
    reader = SerialScanner(str(tmp_path / "nothing"), rec.code, on_state=rec.state)
    reader.start()
    rec.wait(lambda: rec.states == [False])
    reader.stop()
    assert not reader.running
    assert rec.states == [False]  # retries are not reported again


# -- the simulator itself -------------------------------------------------------------------------


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_simulator_leaks_no_fds_or_threads(tmp_path: Path) -> None:
    threads_before = threading.active_count()
    fds_before = _open_fds()
    for _ in range(3):
        with ScannerSimulator() as pty_sim:
            pty_sim.start_pty(tmp_path / "scanner")
            pty_sim.unplug()
            pty_sim.replug()
            pty_sim.scan("X")
        with ScannerSimulator() as tcp_sim:
            tcp_sim.start_tcp()
            tcp_sim.unplug()
            tcp_sim.replug()
            tcp_sim.scan("X")
    assert not (tmp_path / "scanner").exists()
    assert _open_fds() <= fds_before
    assert threading.active_count() == threads_before


def test_simulator_unplugged_scan_is_lost_not_blocking(tmp_path: Path) -> None:
    with ScannerSimulator() as simulator:
        simulator.start_pty()
        assert not simulator.has_reader()
        # Nobody reads: the pty fills up and further bytes are dropped instead of blocking.
        for _ in range(200):
            simulator.send_raw(b"0123456789" * 100)
        simulator.unplug()
        assert simulator.scan("LOST") == 0


@given(st.binary(max_size=64))
def test_check_code_accepts_only_printable_ascii(line: bytes) -> None:
    try:
        code = check_code(line)
    except ValueError:
        stripped = line.strip()
        assert not stripped or any(not 0x20 <= b <= 0x7E for b in stripped)
    else:
        assert code and code == code.strip()
        assert all(0x20 <= ord(c) <= 0x7E for c in code)


def _first_line(proc: subprocess.Popen[str], timeout: float = 10.0) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "simulator printed nothing"
    return proc.stdout.readline().strip()


@pytest.mark.parametrize("mode", ["pty", "tcp"])
def test_simulator_command_line(tmp_path: Path, rec: Recorder, mode: str) -> None:
    args = ["--tcp", "0"] if mode == "tcp" else ["--link", str(tmp_path / "scanner")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "drivers.sim.scanner", *args, "--interval", "0", "CODE-1", "CODE-2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = _first_line(proc)
        if mode == "tcp":
            assert url.startswith("socket://127.0.0.1:")
        else:
            assert url == str(tmp_path / "scanner")
        with SerialScanner(url, rec.code, on_state=rec.state):
            rec.wait(lambda: len(rec.codes) == 2)
        assert rec.codes == ["CODE-1", "CODE-2"]
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    assert not (tmp_path / "scanner").exists()
