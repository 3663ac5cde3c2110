"""The scale simulator, talked to as the station would: pyserial over its pty or TCP port."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import serial

from drivers.base import FrameError, Reading, ScaleError, ScaleRefused
from drivers.scale import Ack, Reply
from drivers.scale.mtsics import decode as sics_decode
from drivers.scale.toledo_continuous import StxFramer
from drivers.scale.toledo_continuous import decode as toledo_decode
from drivers.sim.scale import ScaleSimulator
from drivers.sim.scale_cli import main, parse_script

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]


def open_port(url: str, timeout: float = 5.0) -> Any:
    return serial.serial_for_url(url, timeout=timeout)


def read_line(port: Any) -> bytes:
    line: bytes = port.read_until(b"\r\n")
    assert line.endswith(b"\r\n"), f"no complete reply, got {line!r}"
    return line[:-2]


def ask_raw(port: Any, command: bytes) -> bytes:
    port.write(command + b"\r\n")
    return read_line(port)


def ask(port: Any, command: bytes) -> Reply:
    return sics_decode(ask_raw(port, command))


def net(port: Any, command: bytes = b"SI") -> tuple[int | None, bool]:
    reading = ask(port, command)
    assert isinstance(reading, Reading)
    return reading.net_mg, reading.stable


def tcp_url(sim: ScaleSimulator) -> str:
    host, number = sim.start_tcp()
    assert sim.url == f"socket://{host}:{number}"
    return sim.url


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def sim() -> Iterator[ScaleSimulator]:
    with ScaleSimulator(seed=7, stable_timeout_s=0.3) as simulator:
        yield simulator


@pytest.fixture(params=["pty", "tcp"])
def port(request: pytest.FixtureRequest, sim: ScaleSimulator, tmp_path: Path) -> Iterator[Any]:
    if request.param == "pty":
        url = sim.start_pty(tmp_path / "scale0")
    else:
        host, number = sim.start_tcp()
        url = f"socket://{host}:{number}"
    handle = open_port(url)
    try:
        yield handle
    finally:
        handle.close()


# -- MT-SICS -------------------------------------------------------------------------------


def test_basic_commands(sim: ScaleSimulator, port: Any) -> None:
    assert ask_raw(port, b"SI") == b"S S      0.000 kg"
    assert ask_raw(port, b"S") == b"S S      0.000 kg"
    sim.place("1.250", settle_s=0)
    assert ask_raw(port, b"S") == b"S S      1.250 kg"
    assert ask(port, b"I4") == Ack("I4", "A", ("1126493049",), raw=b'I4 A "1126493049"')
    ident = ask(port, b"I2")
    assert isinstance(ident, Ack) and ident.params == ("Pesee-Sim 15kg 15.000 kg",)
    with pytest.raises(ScaleRefused, match="syntax"):
        ask(port, b"XYZ")
    with pytest.raises(ScaleRefused):
        ask(port, b"s")  # MT-SICS commands are upper case


def test_zero_tare_reset(sim: ScaleSimulator, port: Any) -> None:
    sim.place("0.500", settle_s=0)
    assert isinstance(ask(port, b"Z"), Ack)
    assert net(port) == (0, True)
    sim.place("1.700", settle_s=0)
    assert net(port) == (1_200_000, True)
    tare = ask(port, b"T")
    assert isinstance(tare, Ack) and (tare.command, tare.mass_mg) == ("T", 1_200_000)
    assert net(port) == (0, True)
    assert ask_raw(port, b"TA") == b"TA A      1.200 kg"
    sim.place("2.000", settle_s=0)
    assert net(port) == (300_000, True)
    assert ask(port, b"TAC") == Ack("TAC", "A", raw=b"TAC A")
    assert net(port) == (1_500_000, True)
    ask(port, b"T")
    reset = ask(port, b"@")
    assert isinstance(reset, Ack) and (reset.command, reset.params) == ("I4", ("1126493049",))
    assert net(port) == (1_500_000, True)  # @ clears the tare, keeps the zero
    sim.remove(settle_s=0)
    assert net(port) == (-500_000, True)  # zeroed under a load, then emptied: negative
    assert ask(port, b"ZI") == Ack("ZI", "S", raw=b"ZI S")
    assert net(port) == (0, True)


def test_tare_preset_and_refusals(sim: ScaleSimulator, port: Any) -> None:
    assert ask_raw(port, b"TA 0.250 kg") == b"TA A      0.250 kg"
    assert net(port) == (-250_000, True)
    tare = ask(port, b"T")  # empty pan: the tare becomes 0
    assert isinstance(tare, Ack) and tare.mass_mg == 0
    sim.place("0.500", settle_s=0)
    ask(port, b"Z")
    sim.remove(settle_s=0)
    with pytest.raises(ScaleRefused, match="below tare range"):
        ask(port, b"T")  # below zero: no negative tare
    with pytest.raises(ScaleRefused, match="logical"):
        ask(port, b"TA 1.0 parsecs")


def test_motion_refusals_and_settling(sim: ScaleSimulator, port: Any) -> None:
    sim.place("2.000", settle_s=math.inf)  # moving until told otherwise
    value, stable = net(port)
    assert not stable and value is not None and abs(value - 2_000_000) <= 3_000
    for command, status in ((b"S", "I"), (b"Z", "I"), (b"T", "I")):
        with pytest.raises(ScaleRefused) as info:
            ask(port, command)
        assert getattr(info.value, "status", None) == status
    sim.place("2.000", settle_s=0.2)
    # SI shows the weight moving, then stable at the target
    assert wait_for(lambda: net(port) == (2_000_000, True))


def test_s_waits_for_stability(port: Any) -> None:
    with ScaleSimulator(stable_timeout_s=30) as patient:
        url = patient.start_pty()
        with open_port(url, timeout=30) as handle:
            patient.place("0.750", settle_s=0.3)
            assert net(handle, b"S") == (750_000, True)


def test_si_moving_values_approach_the_target(sim: ScaleSimulator, port: Any) -> None:
    sim.place("5.000", settle_s=60)
    values = [net(port)[0] for _ in range(5)]
    assert all(v is not None and -10_000 <= v <= 5_010_000 for v in values)
    assert all(not net(port)[1] for _ in range(3))


def test_overload_underload(sim: ScaleSimulator, port: Any) -> None:
    sim.set_overload()
    reading = ask(port, b"S")
    assert isinstance(reading, Reading) and reading.overload and reading.net_mg is None
    with pytest.raises(ScaleRefused, match="above zero range"):
        ask(port, b"Z")
    sim.set_overload(False)
    sim.set_underload()
    reading = ask(port, b"SI")
    assert isinstance(reading, Reading) and reading.underload
    sim.set_underload(False)
    sim.place(sim.capacity_mg + 10 * sim.division_mg, settle_s=0)  # past Max + 9 e
    reading = ask(port, b"SI")
    assert isinstance(reading, Reading) and reading.overload
    sim.place(sim.capacity_mg, settle_s=0)
    assert net(port) == (15_000_000, True)


def test_zero_range(tmp_path: Path) -> None:
    with ScaleSimulator(zero_range_mg=300_000) as small, open_port(small.start_pty()) as handle:
        small.place("0.500", settle_s=0)
        with pytest.raises(ScaleRefused, match="above zero range"):
            ask(handle, b"Z")
        small.place("0.200", settle_s=0)
        assert isinstance(ask(handle, b"Z"), Ack)


def test_garbage_on_the_line(sim: ScaleSimulator, port: Any) -> None:
    from drivers.scale.mtsics import PROTOCOL

    assert net(port) == (0, True)  # the TCP client is accepted: what follows reaches it
    sim.garbage(b"\x00\xffS S  1.2\x15\r\n")
    port.write(b"SI\r\n")
    framer = PROTOCOL.make_framer()
    frames: list[bytes] = []
    while len(frames) < 2:
        chunk = port.read(1)
        assert chunk, "timed out"
        frames += framer.feed(chunk)
    with pytest.raises(FrameError):
        sics_decode(frames[0])
    assert sics_decode(frames[1]) == Reading(0, "kg", True, raw=frames[1])


def test_non_ascii_command_is_a_transmission_error(sim: ScaleSimulator, port: Any) -> None:
    with pytest.raises(ScaleRefused, match="transmission"):
        ask(port, b"S\xff")


def test_script(sim: ScaleSimulator, port: Any) -> None:
    sim.script([("1.000", 0, 0.05), ("250 g", 0.05, 0.05), (3_000_000, 0, 0)])
    assert sim.wait_script(timeout=10)
    assert net(port) == (3_000_000, True)
    sim.script([("1.000", 0, math.inf)])
    assert not sim.wait_script(timeout=0.05)
    sim.script([])  # replaces (cancels) the endless one
    assert sim.wait_script(timeout=10)


def test_paced_output_is_intact(tmp_path: Path) -> None:
    with ScaleSimulator(baud=115_200) as paced, open_port(paced.start_pty()) as handle:
        paced.place("9.876", settle_s=0)
        for _ in range(3):
            assert ask_raw(handle, b"SI") == b"S S      9.876 kg"


# -- unplug / replug -------------------------------------------------------------------------


def test_pty_unplug_replug(sim: ScaleSimulator, tmp_path: Path) -> None:
    link = tmp_path / "scale0"
    assert sim.start_pty(link) == str(link)
    first = sim.device
    assert first is not None and os.path.realpath(link) == first
    handle = open_port(str(link), timeout=1)
    try:
        assert net(handle) == (0, True)
        sim.unplug()
        assert not sim.plugged
        assert not os.path.lexists(link)
        with pytest.raises(serial.SerialException):
            handle.write(b"SI\r\n")
            handle.read(1)
        with pytest.raises(serial.SerialException):
            open_port(str(link))
    finally:
        handle.close()
    sim.place("0.420", settle_s=0)
    assert sim.replug() == str(link)
    assert os.path.islink(link) and sim.plugged
    with open_port(str(link)) as again:
        assert net(again) == (420_000, True)


def test_tcp_unplug_replug(sim: ScaleSimulator) -> None:
    host, number = sim.start_tcp()
    url = f"socket://{host}:{number}"
    with open_port(url) as handle:
        assert net(handle) == (0, True)
        sim.unplug()
        with pytest.raises(serial.SerialException):
            handle.read(1)
    with pytest.raises(serial.SerialException):
        open_port(url)
    assert sim.replug() == url
    with open_port(url) as again:
        assert net(again) == (0, True)


def test_tcp_serves_clients_one_after_another(sim: ScaleSimulator) -> None:
    host, number = sim.start_tcp()
    for _ in range(3):
        with open_port(f"socket://{host}:{number}") as handle:
            assert ask(handle, b"I4").raw == b'I4 A "1126493049"'


def test_existing_link_is_replaced_and_only_ours_removed(tmp_path: Path) -> None:
    link = tmp_path / "scale0"
    os.symlink("/nonexistent", link)
    sim = ScaleSimulator()
    try:
        sim.start_pty(link)
        assert os.path.realpath(link) == sim.device
    finally:
        sim.stop()
    assert not os.path.lexists(link)


def test_stop_leaves_no_threads_or_fds(tmp_path: Path) -> None:
    threads = set(threading.enumerate())
    fds = len(os.listdir("/proc/self/fd"))
    for protocol in ("mt-sics", "toledo-continuous"):
        for kind in ("pty", "tcp"):
            sim = ScaleSimulator(protocol, rate_hz=50)
            url = sim.start_pty(tmp_path / "s") if kind == "pty" else tcp_url(sim)
            with open_port(url) as handle:
                handle.write(b"SI\r\n")
                assert handle.read(1)
            sim.unplug()
            sim.replug()
            sim.script([("1.000", 0.1, math.inf)])
            sim.stop()
            sim.stop()  # idempotent
    assert wait_for(lambda: set(threading.enumerate()) <= threads)
    assert len(os.listdir("/proc/self/fd")) <= fds
    assert not os.path.lexists(tmp_path / "s")


def test_misuse() -> None:
    with pytest.raises(ValueError):
        ScaleSimulator("no-such-protocol")
    with pytest.raises(ValueError):
        ScaleSimulator(unit="lb")
    with pytest.raises(ValueError):
        ScaleSimulator(unit="kg", decimals=7)
    sim = ScaleSimulator()
    with pytest.raises(TypeError):
        sim.place(True)
    with pytest.raises(ValueError):
        sim.place("heavy")
    with pytest.raises(RuntimeError):
        sim.replug()
    sim.start_tcp()
    with pytest.raises(RuntimeError):
        sim.start_pty()
    sim.stop()
    with pytest.raises(RuntimeError):
        sim.start_tcp()


# -- continuous output -----------------------------------------------------------------------


def collect(handle: Any, framer: StxFramer, count: int) -> list[Reading]:
    readings: list[Reading] = []
    while len(readings) < count:
        chunk = handle.read(64)
        assert chunk, "no frames"
        for frame in framer.feed(chunk):
            reading = toledo_decode(frame)
            assert isinstance(reading, Reading)
            readings.append(reading)
    return readings


@pytest.mark.parametrize("kind", ["pty", "tcp"])
def test_continuous_stream(kind: str) -> None:
    with ScaleSimulator("toledo-continuous", rate_hz=50) as sim:
        sim.place("3.000", settle_s=0)
        url = sim.start_pty() if kind == "pty" else tcp_url(sim)
        with open_port(url) as handle:
            framer = StxFramer(checksum=True)
            assert wait_for(lambda: collect(handle, framer, 1)[-1].net_mg == 3_000_000)
            assert sim.tare() == ("A", 3_000_000)
            sim.place("4.250", settle_s=0)
            readings = collect(handle, framer, 1)
            assert wait_for(lambda: collect(handle, framer, 1)[-1].net_mg == 1_250_000)
            last = collect(handle, framer, 1)[-1]
            assert (last.gross_mg, last.tare_mg, last.stable) == (4_250_000, 3_000_000, True)
            sim.place("4.250", settle_s=math.inf)
            assert wait_for(lambda: not collect(handle, framer, 1)[-1].stable)
            sim.set_overload()
            assert wait_for(lambda: collect(handle, framer, 1)[-1].overload)
            assert readings  # frames kept coming throughout
            assert framer.dropped <= 17  # at most the fragment read first


def test_continuous_without_checksum_and_garbage() -> None:
    with ScaleSimulator("toledo-continuous", rate_hz=50, checksum=False) as sim:
        sim.place("0.125", settle_s=0)
        with open_port(sim.start_pty()) as handle:
            framer = StxFramer(checksum=None)
            sim.garbage(b"\x02\x02noise\r")
            readings = collect(handle, framer, 5)
            assert readings[-1].net_mg == 125_000
            assert framer.checksum is False
            assert all(len(r.raw) == 17 for r in readings)


def test_continuous_ignores_commands() -> None:
    sim = ScaleSimulator("toledo-continuous", rate_hz=50)
    with sim, open_port(sim.start_pty()) as handle:
        handle.write(b"SI\r\nZ\r\n")
        assert len(collect(handle, StxFramer(), 3)) >= 3


# -- command line ----------------------------------------------------------------------------


def test_parse_script() -> None:
    assert parse_script("1.250:0.5:5, 0:0.3:2") == [("1.250", 0.5, 5.0), ("0", 0.3, 2.0)]
    with pytest.raises(Exception, match="mass:settle_s:hold_s"):
        parse_script("1.250:0.5")


def test_main_rejects_link_with_tcp(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--tcp", "0", "--link", "/tmp/x"])


def run_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "drivers.sim.scale_cli", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_cli(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode


def test_cli_pty(tmp_path: Path) -> None:
    link = tmp_path / "scale-cli"
    proc = run_cli("--link", str(link), "--weight", "1.250")
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first == str(link)
        with open_port(first) as handle:
            assert net(handle) == (1_250_000, True)
    finally:
        code = stop_cli(proc)
    assert code == 0
    assert not os.path.lexists(link)


def test_cli_tcp_script() -> None:
    proc = run_cli("--tcp", "0", "--script", "0.300:0:60")
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("socket://127.0.0.1:")
        with open_port(url) as handle:
            assert wait_for(lambda: net(handle) == (300_000, True))
    finally:
        code = stop_cli(proc)
    assert code == 0


def test_errors_are_scale_errors() -> None:
    assert issubclass(FrameError, ScaleError) and issubclass(ScaleRefused, ScaleError)
