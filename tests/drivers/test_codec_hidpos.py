"""hid-pos: the HID POS Scale Data Report decoded from the usage tables, the report framer, the
hidraw:// reader, and the worker reading a simulated HID scale through a named pipe.

Reference values: USB-IF *HID Point of Sale Usage Tables* 1.02, Scales page 0x8D — status
selectors 0x71…0x78 (report byte 1 = 1…8), weight unit selectors 0x51…0x5C (byte 2 = 1…12),
Data Scaling 0x41 (byte 3, a signed power of ten); report layout as erjiang/usbscale reads it
(id 3, status, unit, scaling, weight little-endian). ``03 04 0B FF 31 00`` is the Dymo M10
report quoted by the weighty crate (4.9 oz, stable).
"""

from __future__ import annotations

import queue
import time
from decimal import Decimal
from pathlib import Path

import pytest

from drivers.base import FrameError, Reading, ScaleError, ScaleRefused
from drivers.scale import PROTOCOLS, Command, get_protocol
from drivers.scale.hidpos import (
    PROTOCOL,
    STATUS,
    UNITS,
    ReportFramer,
    answers,
    decode,
    encode_report,
    port_url,
)
from drivers.scale.worker import ScaleWorker
from drivers.serialio import SerialTransport
from drivers.sim.hidpos import HidrawPipe
from drivers.sim.scale import ScaleSimulator

DYMO_4_9_OZ = bytes.fromhex("03040BFF3100")


def reading(frame: bytes) -> Reading:
    reply = decode(frame)
    assert isinstance(reply, Reading)
    return reply


def test_registered_streaming_without_commands() -> None:
    assert get_protocol("hid-pos") is PROTOCOL and PROTOCOLS["hid-pos"] is PROTOCOL
    assert PROTOCOL.streaming
    for command in Command:
        assert PROTOCOL.request(command) is None
        with pytest.raises(ScaleError, match="not supported"):
            PROTOCOL.encode(command)
    assert answers(Command.READ, reading(DYMO_4_9_OZ))
    assert not answers(Command.TARE, reading(DYMO_4_9_OZ))


def test_the_dymo_report_quoted_by_weighty() -> None:
    got = reading(DYMO_4_9_OZ)
    # 49 × 10^-1 oz × 28 349.523125 mg = 138 912.663… mg
    assert (got.net_mg, got.unit, got.stable, got.in_range) == (138_913, "oz", True, True)
    assert got.raw == DYMO_4_9_OZ and got.gross_mg is None and got.net is None


# -- every status of the usage tables (Scale Status selectors 0x71…0x78) ------------------------


@pytest.mark.parametrize(
    ("status", "net_mg", "stable", "overload", "underload"),
    [
        (2, 0, True, False, False),  # 0x72 stable at centre of zero
        (3, 1_000_000, False, False, False),  # 0x73 in motion
        (4, 1_000_000, True, False, False),  # 0x74 weight stable
        (5, None, False, False, True),  # 0x75 under zero: no value, as any codec's underload
        (6, None, False, True, False),  # 0x76 over weight limit
    ],
)
def test_weighing_statuses(
    status: int, net_mg: int | None, stable: bool, overload: bool, underload: bool
) -> None:
    value = 0 if status == 2 else 1000
    got = reading(encode_report(value, "g", 0, status))
    assert (got.net_mg, got.stable, got.overload, got.underload) == (
        net_mg,
        stable,
        overload,
        underload,
    )
    assert got.unit == "g"


@pytest.mark.parametrize(
    ("status", "words"),
    [(1, "fault"), (7, "requires calibration"), (8, "requires re-zeroing")],  # 0x71, 0x77, 0x78
)
def test_statuses_without_a_weight_are_refusals(status: int, words: str) -> None:
    with pytest.raises(ScaleRefused, match=words):
        decode(bytes([3, status, 2, 0, 0x10, 0]))


def test_the_status_table_is_the_usage_tables() -> None:
    assert sorted(STATUS) == list(range(1, 9))


# -- every unit of the usage tables (Weight Unit selectors 0x51…0x5C) ---------------------------

EXACT_MG = {  # one unit in mg, exactly (definitions; tael and ton as the module documents)
    1: ("mg", Decimal(1)),
    2: ("g", Decimal(1000)),
    3: ("kg", Decimal(1_000_000)),
    4: ("ct", Decimal(200)),
    5: ("tael", Decimal("37799.36375")),
    6: ("gn", Decimal("64.79891")),
    7: ("dwt", Decimal("1555.17384")),
    8: ("t", Decimal(1_000_000_000)),
    9: ("ton", Decimal("907184740")),
    10: ("ozt", Decimal("31103.4768")),
    11: ("oz", Decimal("28349.523125")),
    12: ("lb", Decimal("453592.37")),
}


@pytest.mark.parametrize("code", sorted(EXACT_MG))
def test_every_unit(code: int) -> None:
    unit, mg = EXACT_MG[code]
    assert UNITS[code][0] == unit
    # 12345 × 10^-3 units, exactly, rounded half-even to the milligram
    got = reading(bytes([3, 4, code, 0xFD]) + (12345).to_bytes(2, "little"))
    assert got.unit == unit
    assert got.net_mg == int((Decimal("12.345") * mg).to_integral_value())


def test_the_unit_table_is_the_usage_tables() -> None:
    assert sorted(UNITS) == list(range(1, 13))
    for code in (0, 13, 0xFF):
        with pytest.raises(FrameError, match="unit"):
            decode(bytes([3, 4, code, 0, 1, 0]))


# -- scaling: a signed power of ten ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("report", "net_mg"),
    [
        ("0304020000FF", 65_280_000),  # 0xFF00 = 65280 g: the weight is little-endian
        ("03040201E803", 10_000_000),  # 1000 × 10^1 g
        ("03040BFE3930", 3_499_749),  # 12345 × 10^-2 oz = 123.45 oz (hundredths)
        ("03040CFEE803", 4_535_924),  # 1000 × 10^-2 lb = 10 lb
        ("030401FD4042", 17),  # 16960 × 10^-3 mg = 16.96 mg -> 17
        ("030401FF0500", 0),  # 5 × 10^-1 mg = 0.5 mg -> 0 (half-even)
        ("030401FF0F00", 2),  # 1.5 mg -> 2 (half-even)
    ],
)
def test_scaling(report: str, net_mg: int) -> None:
    assert reading(bytes.fromhex(report)).net_mg == net_mg


@pytest.mark.parametrize("scaling", [7, -7, 127, -128])
def test_implausible_scaling_is_garbage(scaling: int) -> None:
    with pytest.raises(FrameError, match="scaling"):
        decode(bytes([3, 4, 2, scaling & 0xFF, 1, 0]))


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        bytes([3, 4, 2, 0, 1]),  # short
        bytes([3, 4, 2, 0, 1, 0, 0]),  # long
        bytes([2, 4, 2, 0, 1, 0]),  # the control report's id, not the data report's
        bytes([3, 0, 2, 0, 1, 0]),  # status 0 is no selector
        bytes([3, 9, 2, 0, 1, 0]),  # nor 9
    ],
)
def test_garbage_is_a_frame_error(frame: bytes) -> None:
    with pytest.raises(FrameError):
        decode(frame)


def test_encode_report_round_trips_and_refuses_what_does_not_fit() -> None:
    for code, (unit, _mg) in UNITS.items():
        frame = encode_report(321, unit, -1)
        assert frame[2] == code and reading(frame).unit == unit
    with pytest.raises(ValueError, match="65535"):
        encode_report(70_000)
    with pytest.raises(ValueError, match="unit"):
        encode_report(1, "stone")


# -- framing --------------------------------------------------------------------------------------


def test_the_framer_resynchronises_on_the_report_start() -> None:
    framer = ReportFramer()
    a, b = encode_report(1250, "g"), encode_report(7, "kg", 0, 3)
    stream = b"\xff\x00\x03\x99" + a + b"\x03" + b + a[:4]
    assert framer.feed(stream) == [a, b]
    assert framer.pending == a[:4]
    assert framer.dropped == 5  # ff 00, then 03 99 (99 is no status), then the lone 03
    assert framer.feed(a[4:]) == [a]
    framer.feed(a[:3])
    framer.reset()
    assert framer.pending == b"" and framer.feed(b) == [b]


def test_one_byte_at_a_time() -> None:
    framer = ReportFramer()
    reports = [encode_report(n, "g") for n in (0, 1, 513, 65535)]
    out: list[bytes] = []
    for byte in b"".join(reports):
        out += framer.feed(bytes([byte]))
    assert out == reports


# -- the hidraw:// reader ------------------------------------------------------------------------


def test_a_path_is_read_through_hidraw() -> None:
    assert port_url("/dev/hidraw0") == "hidraw:///dev/hidraw0"
    assert port_url("/dev/pesee-scale") == "hidraw:///dev/pesee-scale"
    assert port_url("socket://127.0.0.1:7001") == "socket://127.0.0.1:7001"  # a URL is kept
    assert get_protocol("mt-sics").port_url("/dev/ttyUSB0") == "/dev/ttyUSB0"


def test_the_reader_serves_whole_reports_from_a_pipe(tmp_path: Path) -> None:
    """A pipe is no tty, as hidraw is not: pyserial's Serial refuses it, hidraw:// reads it."""
    with HidrawPipe(tmp_path / "hidraw0", rate_hz=50) as pipe:
        pipe.scale.place("1.250", settle_s=0)
        port = SerialTransport(port_url(pipe.url), timeout=0.05)
        port.open()
        try:
            framer = ReportFramer()
            frames: list[bytes] = []
            deadline = time.monotonic() + 10
            while len(frames) < 3 and time.monotonic() < deadline:
                frames += framer.feed(port.read(1))  # one byte at a time: nothing is lost
            assert len(frames) >= 3 and framer.dropped == 0
            assert {reading(f).net_mg for f in frames} == {1_250_000}
            with pytest.raises(OSError, match="read-only"):
                port.write(b"\x02\x02")
        finally:
            port.close()


def test_the_worker_reads_a_hid_scale_through_a_pipe_and_across_an_unplug(tmp_path: Path) -> None:
    readings: queue.Queue[Reading] = queue.Queue()
    states: queue.Queue[bool] = queue.Queue()
    sim = ScaleSimulator("hid-pos", seed=3)
    with HidrawPipe(tmp_path / "hidraw-scale", sim, rate_hz=40) as pipe:
        worker = ScaleWorker(
            pipe.url,
            PROTOCOL,
            on_reading=lambda r, t: readings.put(r),
            on_state=lambda ok, detail: states.put(ok),
            reply_timeout=0.3,
        )
        worker.start()
        try:
            assert states.get(timeout=10) is True
            assert worker.link.url == f"hidraw://{pipe.url}"

            def next_weight(mg: int) -> Reading:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    got = readings.get(timeout=10)
                    if got.stable and got.net_mg == mg:
                        return got
                raise AssertionError(f"no stable {mg} mg")

            sim.place("2.345", settle_s=0)
            assert next_weight(2_345_000).unit == "kg"
            sim.set_overload()
            while not readings.get(timeout=10).overload:
                pass
            sim.set_overload(False)
            pipe.unplug()
            assert states.get(timeout=10) is False
            sim.place("0.750", settle_s=0)
            pipe.replug()
            assert states.get(timeout=20) is True
            next_weight(750_000)
            assert worker.garbage_frames <= 2  # at most a first fragment after each open
        finally:
            worker.stop()
        assert not worker.alive
