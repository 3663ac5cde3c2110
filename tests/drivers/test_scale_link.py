"""The one scale link on the simulator: exchange, refusals, silence, streams, garbage, unplug."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from drivers.base import FrameError, PortError, Reading, ScaleError, ScaleRefused, ScaleTimeout
from drivers.scale import Ack, Command, Reply, get_protocol
from drivers.scale.link import ScaleLink, as_reading, decode_frame, supports
from drivers.serialio import escape_frame
from drivers.sim.scale import ScaleSimulator
from drivers.sim.scanner import ScannerSimulator


def test_exchange_returns_the_commands_own_answer(tmp_path: Path) -> None:
    with ScaleSimulator() as sim:
        url = sim.start_pty(tmp_path / "scale")
        sim.place("0.300", settle_s=0)
        with ScaleLink(url, get_protocol("mt-sics")) as link:
            reply = link.exchange(Command.IDENTIFY)
            assert isinstance(reply, Ack) and reply.params == ("1126493049",)
            tare = link.exchange(Command.TARE, 3.0)
            assert isinstance(tare, Ack) and tare.mass_mg == 300_000
            reading = link.reading()
            assert reading.net_mg == 0 and reading.stable


def test_refusal_unplug_and_silence_each_have_their_error(tmp_path: Path) -> None:
    with ScaleSimulator() as sim:
        url = sim.start_pty(tmp_path / "scale")
        sim.place("5.000", settle_s=30)  # the pan keeps moving: the balance refuses to zero
        with ScaleLink(url, get_protocol("mt-sics")) as link:
            with pytest.raises(ScaleRefused):
                link.exchange(Command.ZERO, 3.0)
            sim.unplug()
            with pytest.raises(PortError):
                link.exchange(Command.READ, 0.5)
    with ScannerSimulator() as line:  # a port where nobody answers
        url = line.start_pty(tmp_path / "silent")
        with ScaleLink(url, get_protocol("mt-sics")) as link, pytest.raises(ScaleTimeout):
            link.exchange(Command.READ, 0.2)


def test_a_command_the_protocol_lacks_is_a_scale_error() -> None:
    protocol = get_protocol("toledo-continuous")
    assert not supports(protocol, Command.TARE)
    link = ScaleLink("/dev/null-no-such-port", protocol)
    assert not link.supports(Command.TARE)
    with pytest.raises(ScaleError):
        link.exchange(Command.TARE)


def test_opening_a_missing_port_is_a_port_error(tmp_path: Path) -> None:
    link = ScaleLink(str(tmp_path / "nothing"), get_protocol("mt-sics"))
    with pytest.raises(PortError):
        link.open()
    assert not link.is_open


def test_listen_gives_the_newest_streamed_weight_and_stable_waits(tmp_path: Path) -> None:
    with ScaleSimulator("toledo-continuous", rate_hz=20) as sim:
        url = sim.start_pty(tmp_path / "scale")
        sim.place("12.340", settle_s=0)
        with ScaleLink(url, get_protocol("toledo-continuous")) as link:
            reading = link.reading(stable=True, timeout=5)
            assert reading.net_mg == 12_340_000 and reading.stable
            sim.place("1.000", settle_s=60)  # moving for a minute: no stable weight
            with pytest.raises(ScaleTimeout) as caught:
                link.reading(stable=True, timeout=0.5)
            last = caught.value.args[1]
            assert isinstance(last, Reading) and not last.stable


def test_garbled_frames_are_counted_and_skipped(tmp_path: Path) -> None:
    protocol = get_protocol("mt-sics")
    with ScaleSimulator() as sim:
        url = sim.start_pty(tmp_path / "scale")
        sim.place("0.250", settle_s=0)
        with ScaleLink(url, protocol) as link:
            link.exchange(Command.READ)
            sim.garbage(b"\xff\xfe garbage\r\n")
            reply = link.read_frame(time.monotonic() + 5)
            assert reply is None or isinstance(reply, Reading)  # the garbage never comes out
            assert link.garbage_frames == 1


def test_a_codec_crash_costs_one_frame(tmp_path: Path) -> None:
    """Any exception from a codec (here an IndexError) is a FrameError, counted as garbage."""
    real = get_protocol("toledo-continuous")
    crashes: list[bytes] = []

    def decode(frame: bytes) -> Reply:
        if len(crashes) < 2:  # one for decode_frame below, one on the line
            crashes.append(frame)
            raise IndexError("codec bug")
        return real.decode(frame)

    buggy = replace(real, decode=decode)
    with pytest.raises(FrameError):
        decode_frame(buggy, b"\x02...")
    with ScaleSimulator("toledo-continuous", rate_hz=20) as sim:
        url = sim.start_pty(tmp_path / "scale")
        sim.place("3.000", settle_s=0)
        with ScaleLink(url, buggy) as link:
            assert link.reading(timeout=5).net_mg == 3_000_000
            assert link.garbage_frames >= 1


def test_the_first_streamed_frame_after_opening_is_dropped(tmp_path: Path) -> None:
    """Opened mid-line: "-  3.250 kg" must not come out as +3.250 kg from its tail."""
    from drivers.scale.ascii import make_protocol

    protocol = make_protocol(None, b"\r\n", r"(?P<sign>[+-])?\s*(?P<weight>[0-9.]+) (?P<unit>kg)")
    with ScannerSimulator() as line:
        url = line.start_pty(tmp_path / "scale")
        with ScaleLink(url, protocol) as link:
            assert line.wait_reader(10)
            line.send_raw(b"  3.250 kg\r\n")
            line.send_raw(b"-  3.250 kg\r\n")
            assert link.reading(timeout=5).net_mg == -3_250_000


def test_read_frame_returns_none_at_the_deadline(tmp_path: Path) -> None:
    with ScaleSimulator() as sim:
        url = sim.start_pty(tmp_path / "scale")
        with ScaleLink(url, get_protocol("mt-sics")) as link:
            assert link.read_frame(time.monotonic() + 0.1) is None


def test_as_reading_refuses_an_ack_with_the_escaped_frame() -> None:
    with pytest.raises(ScaleError, match=r"Z A\\x0d\\x0a"):
        as_reading(Ack("Z", "A", raw=b"Z A\r\n"))


def test_escape_frame_is_printable_ascii() -> None:
    assert escape_frame(b"S S  1.2 kg\r\n") == "S S  1.2 kg\\x0d\\x0a"
    assert escape_frame(b"\x02a\\\xff") == "\\x02a\\x5c\\xff"
