"""A USB HID POS scale end to end: the daemon weighing from a simulated HID scale, read as
/dev/hidrawN is (a named pipe: no tty, whole reports) and over a pty, into a record; and
``station scale decode --protocol hid-pos`` on raw and hex reports."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.scale.hidpos import (
    IN_MOTION,
    STABLE,
    UNDER_ZERO,
    ReportFramer,
    decode,
    encode_report,
    port_url,
)
from drivers.serialio import SerialTransport, escape_frame
from drivers.sim.hidpos import HidrawPipe
from drivers.sim.scale_cli import main as sim_main
from station.outcomes import Outcome
from station.sim import SimulatedCounter
from tests.support.counter import weigh, weighings
from tests.support.helpers import beneficiary
from tests.support.scale_cli import station

pytestmark = pytest.mark.timeout(120)

VISITOR = beneficiary(123456)


@pytest.fixture
def hid_counter(tmp_path: Path) -> Iterator[tuple[SimulatedCounter, HidrawPipe]]:
    """The real daemon reading a HID scale through a named pipe (``[scale] url`` a plain path,
    as /dev/hidraw0 or a by-id link would be)."""
    node = tmp_path / "hidraw0"
    c = SimulatedCounter(
        tmp_path / "station",
        {"station": {"language": "en"}, "scale": {"url": str(node)}},
        protocol="hid-pos",
    )
    pipe = HidrawPipe(node, c.scale, rate_hz=20)
    pipe.start()
    try:
        c.start()
        yield c, pipe
    finally:
        c.stop()
        pipe.stop()


def _start_visit(c: SimulatedCounter) -> None:
    c.scan(VISITOR)
    assert c.next_result().outcome is Outcome.VISIT_OPENED
    c.scan("CAT-VET")
    assert c.next_result().outcome is Outcome.CATEGORY_SET


def test_a_hid_scale_weighs_through_the_daemon_into_a_record(
    hid_counter: tuple[SimulatedCounter, HidrawPipe],
) -> None:
    c, pipe = hid_counter
    assert c.station.snapshot.scale_ok
    _start_visit(c)
    result = weigh(c, "1.250", settle_s=0.3)  # in motion first: the press waits for stable
    assert result.outcome is Outcome.RECORDED, result.text
    assert result.text == "Recorded: 1.250 kg Vêtements"
    row = c.store.get(result.seq or 0)
    assert row is not None
    assert (row["source"], row["net_mg"], row["stable"]) == ("scale", 1_250_000, 1)
    assert row["unit"] == "kg"
    assert row["scale_id"] == "hid-pos"  # no identity in HID reports: the protocol's name
    # the record keeps the report as sent: id 3, stable, kg, 10^-3, 1250 little-endian
    assert row["raw"] == escape_frame(bytes([3, 4, 3, 0xFD, 0xE2, 0x04]))
    assert pipe.sent > 0


def test_a_hid_scale_over_weight_or_under_zero_is_refused(
    hid_counter: tuple[SimulatedCounter, HidrawPipe],
) -> None:
    c, _pipe = hid_counter
    _start_visit(c)
    c.scale.set_overload()
    c.press()
    assert c.next_result().outcome is Outcome.OVERLOAD
    c.scale.set_overload(False)
    c.scale.set_underload()
    c.press()
    assert c.next_result().outcome is Outcome.UNDERLOAD
    c.scale.set_underload(False)
    assert weighings(c) == []


def test_a_hid_scale_unplugged_and_back(hid_counter: tuple[SimulatedCounter, HidrawPipe]) -> None:
    c, pipe = hid_counter
    _start_visit(c)
    pipe.unplug()
    deadline = time.monotonic() + 20
    while c.station.snapshot.scale_ok and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not c.station.snapshot.scale_ok
    pipe.replug()
    while not c.station.snapshot.scale_ok and time.monotonic() < deadline + 20:
        time.sleep(0.02)
    assert weigh(c, "0.640").outcome is Outcome.RECORDED
    assert [w["net_mg"] for w in weighings(c)] == [640_000]


def test_a_hid_scale_on_a_pty(tmp_path: Path) -> None:
    """The simulator's pty carries the same reports (pesee-scale-sim --protocol hid-pos)."""
    with SimulatedCounter(tmp_path, {"station": {"language": "en"}}, protocol="hid-pos") as c:
        assert c.station.snapshot.scale_detail.startswith("hidraw://")
        _start_visit(c)
        assert weigh(c, "2.000").outcome is Outcome.RECORDED
        assert [(w["net_mg"], w["unit"]) for w in weighings(c)] == [(2_000_000, "kg")]


def test_decode_raw_reports(tmp_path: Path) -> None:
    capture = tmp_path / "hid.bin"
    capture.write_bytes(
        encode_report(1250, "g", 0, STABLE)
        + encode_report(49, "oz", -1, IN_MOTION)
        + b"\x00"  # noise
        + encode_report(12, "g", 0, UNDER_ZERO)
        + bytes([3, 1, 2, 0, 0, 0])  # fault
        + encode_report(7, "g")[:3]  # cut short
    )
    result = station("decode", "--protocol", "hid-pos", str(capture))
    assert result.exit_code == 1  # the noise and the tail are not decoded
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [(r["weight_mg"], r["unit"], r["stable"], r["decoded"]) for r in rows] == [
        (1_250_000, "g", True, True),
        (138_913, "oz", False, True),
        (None, None, None, False),
        (None, "g", False, True),
        (None, None, None, True),
        (None, None, None, False),
    ]
    assert rows[3]["underload"] and "fault" in rows[4]["error"]
    assert "6 frame(s), 2 not decoded" in result.stderr


def test_decode_hex_reports(tmp_path: Path) -> None:
    text = tmp_path / "hid.txt"
    text.write_text("03:04:0B:FF:31:00\n0x03 0x06 0x03 0x00 0x00 0x00\n", encoding="ascii")
    result = station("decode", "--protocol", "hid-pos", "--format", "hex", str(text))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [(r["weight_mg"], r["overload"]) for r in rows] == [(138_913, False), (None, True)]


def test_pesee_scale_sim_writes_hid_reports_into_a_pipe(tmp_path: Path) -> None:
    node = tmp_path / "hidraw-sim"
    args = ["--protocol", "hid-pos", "--fifo", str(node), "--weight", "1.250", "--rate", "20"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "drivers.sim.scale_cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == str(node)
        port = SerialTransport(port_url(str(node)), timeout=0.1)
        port.open()
        try:
            framer, frames = ReportFramer(), list[bytes]()
            deadline = time.monotonic() + 20
            while len(frames) < 2 and time.monotonic() < deadline:
                frames += framer.feed(port.read(64))
        finally:
            port.close()
        assert frames and {getattr(decode(f), "net_mg", None) for f in frames} == {1_250_000}
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert not node.exists()  # the node goes with the simulator


def test_pesee_scale_sim_fifo_is_for_hid_pos_only(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        sim_main(["--protocol", "mt-sics", "--fifo", str(tmp_path / "x")])
