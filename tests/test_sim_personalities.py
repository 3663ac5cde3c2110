"""Simulator personalities byte by byte: reference frames, commands, counting, print blocks."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import serial

from drivers.scale import PROTOCOLS
from drivers.serialio import LineFramer
from drivers.sim.personalities import (
    PERSONALITIES,
    ByteFramer,
    Personality,
    SimScale,
    decimal_text,
    get_personality,
    places_in,
)
from drivers.sim.scale import ScaleSimulator

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[1]
NO_LINE = threading.Event()  # the cable is never pulled in these direct calls


def ask(sim: ScaleSimulator, request: bytes) -> bytes | None:
    """What the personality answers to the raw ``request`` bytes (no pty involved)."""
    replies = [
        sim.personality.respond(r, sim, NO_LINE)
        for r in sim.personality.request_framer().feed(request)
    ]
    assert len(replies) == 1, replies
    return replies[0]


@pytest.fixture
def make() -> Iterator[Any]:
    sims: list[ScaleSimulator] = []

    def factory(protocol: str, **kw: Any) -> ScaleSimulator:
        sim = ScaleSimulator(protocol, seed=3, stable_timeout_s=0.2, **kw)
        sims.append(sim)
        return sim

    yield factory
    for sim in sims:
        sim.stop()


# -- registry and helpers --------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PERSONALITIES))
def test_registry(name: str) -> None:
    personality = get_personality(name)
    assert personality.name == name
    assert name in PROTOCOLS  # every simulated protocol has a codec to read it
    assert personality.streaming or personality.read_request
    assert get_personality(name) is not personality  # one instance per simulator


def test_unknown_personality() -> None:
    with pytest.raises(ValueError, match="known: mt-sics"):
        get_personality("no-such-protocol")


def test_helpers() -> None:
    assert decimal_text(1_250_000, "kg", 3) == "1.250"
    assert decimal_text(-200, "g", 1) == "-0.2"
    assert decimal_text(1_250_500, "kg", 3) == "1.250"  # half-even
    assert decimal_text(1_251_500, "kg", 3) == "1.252"
    assert places_in("kg", 1000) == 3
    assert places_in("kg", 100) == 4
    assert places_in("g", 1000) == 0
    assert ByteFramer().feed(b"W\r\nZ") == [b"W", b"Z"]


# -- the weight model: counting, centre of zero ----------------------------------------------


def test_counting_model(make: Any) -> None:
    sim = make("mt-sics")
    sim.place("1.250", settle_s=0)
    assert sim.snapshot().pieces is None
    sim.set_piece_weight(10_000)
    state = sim.snapshot()
    assert (state.pieces, state.unit_weight_mg) == (125, 10_000)
    sim.set_piece_weight(2_500_000)  # 1.25 / 2.5 = 0.5 pieces: half to even
    assert sim.snapshot().pieces == 0
    sim.place("3.750", settle_s=0)
    assert sim.snapshot().pieces == 2  # 1.5 -> 2
    sim.set_piece_weight(None)
    assert sim.snapshot().pieces is None
    for bad in (0, -5, True):
        with pytest.raises(ValueError):
            sim.set_piece_weight(bad)


def test_center_zero_and_preset_tare(make: Any) -> None:
    sim = make("mt-sics")
    assert sim.snapshot().center_zero
    sim.place("0.0004", settle_s=0)  # under half a division
    assert sim.snapshot().center_zero
    sim.place("0.001", settle_s=0)
    assert not sim.snapshot().center_zero
    assert sim.preset_tare(250_400) == 250_000  # rounded to the display
    with pytest.raises(ValueError):
        sim.preset_tare(-1)


def test_zero_detail(make: Any) -> None:
    sim = make("mt-sics")
    sim.place("0.500", settle_s=float("inf"))
    status, state = sim.zero_detail()
    assert status == "I" and state.motion
    status, state = sim.zero_detail(immediate=True)
    assert status == "A" and state.motion
    assert sim.snapshot().zero_mg == state.gross_mg


# -- Toledo 8217 -----------------------------------------------------------------------------


def test_toledo8217_replies(make: Any) -> None:
    sim = make("toledo-8217")
    sim.place("1.250", settle_s=0)
    assert ask(sim, b"W") == b"\x0201.250\r"  # the reference's §2.2 example
    assert ask(sim, b"T") is None  # Z, T, C are silent
    assert sim.snapshot().tare_mg == 1_250_000
    sim.place("2.500", settle_s=0)
    assert ask(sim, b"W") == b"\x0201.250N\r"
    assert ask(sim, b"C") is None
    assert ask(sim, b"W") == b"\x0202.500\r"
    sim.place("2.500", settle_s=float("inf"))
    assert ask(sim, b"W") == b"\x02?A\r"  # motion, DIVA layout
    sim.place(sim.capacity_mg + 10 * sim.division_mg, settle_s=0)
    assert ask(sim, b"W") == b"\x02?B\r"
    sim.place(0, settle_s=0)
    sim.set_underload()
    assert ask(sim, b"W") == b"\x02?T\r"  # under zero + centre of zero
    sim.set_underload(False)
    sim.place("0.300", settle_s=0)
    assert ask(sim, b"Z") is None
    sim.remove(settle_s=0)
    assert ask(sim, b"W") == b"\x02?D\r"  # negative: "under zero", no value
    assert ask(sim, b"X") == b"\x02?@\r"  # unknown: a status with no reason bit


def test_toledo8217_presence_probe(make: Any) -> None:
    sim = make("toledo-8217")
    personality = sim.personality
    framer = personality.request_framer()
    replies = [personality.respond(r, sim, NO_LINE) for r in framer.feed(b"Ehello")]
    assert b"".join(r or b"" for r in replies) == b"\x02E\rhello"  # what Odoo expects
    assert personality.respond(b"F", sim, NO_LINE) is None
    assert ask(sim, b"W") == b"\x0200.000\r"
    personality.respond(b"E", sim, NO_LINE)
    personality.reset()  # a replug ends the probe
    assert ask(sim, b"W") == b"\x0200.000\r"


def test_toledo8217_in_grams(make: Any) -> None:
    sim = make("toledo-8217", unit="g", decimals=1)
    sim.place("1250.3", settle_s=0)
    assert ask(sim, b"W") == b"\x0201.2503\r"  # always kg, at the display resolution


# -- SMA ----------------------------------------------------------------------------------------


def test_sma_replies(make: Any) -> None:
    sim = make("sma")
    assert ask(sim, b"\nW\r") == b"\nZ1G       0.000kg_\r"  # centre of zero
    sim.place("1.250", settle_s=0)
    assert ask(sim, b"\nW\r") == b"\n 1G       1.250kg_\r"  # the reference's §3.3 example
    sim.place("1.250", settle_s=float("inf"))
    assert ask(sim, b"\nZ\r") == b"\nE1GM ----------kg_\r"  # zero refused in motion (§3.3)
    assert ask(sim, b"\nT\r") == b"\nT1GM ----------kg_\r"  # tare refused
    sim.place("0.200", settle_s=0)
    assert ask(sim, b"\nT\r") == b"\n 1N       0.000kg_\r"
    assert ask(sim, b"\nM\r") == b"\n 1T       0.200kg_\r"  # tare report
    assert ask(sim, b"\nC\r") == b"\n 1G       0.200kg_\r"
    assert ask(sim, b"\nZ\r") == b"\nZ1G       0.000kg_\r"
    sim.remove(settle_s=0)
    assert ask(sim, b"\nW\r") == b"\nU1G      -0.200kg_\r"  # below zero: U and the value
    sim.set_overload()
    assert ask(sim, b"\nW\r")[:2] == b"\nO"  # type: ignore[index]
    assert ask(sim, b"\nX\r") == b"\n?\r"


# -- NCI -------------------------------------------------------------------------------------


def test_nci_replies(make: Any) -> None:
    sim = make("nci")
    sim.place("1.250", settle_s=0)
    assert ask(sim, b"W\r") == b"\n0001.250KG\r\n00\r\x03"
    assert ask(sim, b"S\r") == b"\n00\r\x03"
    assert ask(sim, b"Z\r") == b"\n20\r\x03"  # zeroed: at zero
    sim.place("2.250", settle_s=0)
    sim.tare()  # the front panel's tare key: status byte 3 says net
    assert ask(sim, b"W\r") == b"\n0000.000KG\r\n0p4\r\x03"  # the reference's net example
    sim.clear_tare()
    sim.place("0.250", settle_s=0)
    assert ask(sim, b"W\r") == b"\n-001.000KG\r\n00\r\x03"
    sim.place("1.300", settle_s=float("inf"))
    assert ask(sim, b"W\r").endswith(b"\r\n10\r\x03")  # type: ignore[union-attr]
    sim.place("1.300", settle_s=0)
    sim.set_overload()
    assert ask(sim, b"W\r") == b"\n02\r\x03"  # status only, as the reference's example
    sim.set_overload(False)
    sim.set_underload()
    assert ask(sim, b"S\r")[-4:] == b"01\r\x03"  # type: ignore[index]
    assert ask(sim, b"U\r") == b"\n?\r\x03"


# -- A&D -------------------------------------------------------------------------------------


def test_aandd_replies(make: Any) -> None:
    sim = make("a-and-d")
    sim.place("1.250", settle_s=0)
    assert ask(sim, b"Q\r\n") == b"ST,+0001.250 kg\r\n"
    assert ask(sim, b"S\r\n") == b"ST,+0001.250 kg\r\n"
    assert ask(sim, b"?SN\r\n") == b"SN,1126493049\r\n"
    assert ask(sim, b"?TN\r\n") == b"TN,Pesee-Sim 15kg\r\n"
    sim.set_piece_weight(10_000)
    assert ask(sim, b"Q\r\n") == b"QT,+00000125 PC\r\n"
    sim.set_piece_weight(None)
    assert ask(sim, b"T\r\n") == b"\x06\r\n"
    assert ask(sim, b"Q\r\n") == b"ST,+0000.000 kg\r\n"
    assert ask(sim, b"PT:0.5 kg\r\n") == b"\x06\r\n"
    assert sim.snapshot().tare_mg == 500_000
    assert ask(sim, b"PT:lots\r\n") == b"EC,E06\r\n"
    assert ask(sim, b"Z\r\n") == b"\x06\r\n"
    assert ask(sim, b"R\r\n") == b"\x06\r\n\x06\r\n"  # acknowledged on receipt and when done
    sim.place("1.250", settle_s=float("inf"))
    assert ask(sim, b"Z\r\n") == b"EC,E11\r\n"  # the reference's §4.4 example
    assert ask(sim, b"T\r\n") == b"EC,E11\r\n"
    assert ask(sim, b"Q\r\n")[:3] == b"US,"  # type: ignore[index]
    assert ask(sim, b"S\r\n")[:3] == b"US,"  # type: ignore[index]  # gave up waiting
    sim.set_overload()
    assert ask(sim, b"Q\r\n") == b"OL,+9999.999 kg\r\n"
    sim.set_overload(False)
    sim.set_underload()
    assert ask(sim, b"Q\r\n") == b"OL,-9999.999 kg\r\n"
    assert ask(sim, b"XYZ\r\n") == b"EC,E01\r\n"
    assert ask(sim, b"Q\xff\r\n") == b"EC,E00\r\n"


def test_aandd_in_grams(make: Any) -> None:
    sim = make("a-and-d", unit="g", decimals=1)
    sim.place("250.5 g", settle_s=0)
    assert ask(sim, b"Q\r\n") == b"ST,+000250.5  g\r\n"


# -- MT-SICS and Toledo continuous (moved out of the simulator) -------------------------------


def test_mtsics_and_continuous_samples(make: Any) -> None:
    sim = make("mt-sics")
    sim.place("1.250", settle_s=0)
    assert sim.personality.sample(sim) == b"S S      1.250 kg\r\n"
    continuous = make("toledo-continuous")
    continuous.place("12.34", settle_s=0)
    assert continuous.personality.sample(continuous) == continuous.frame()
    assert continuous.frame()[:17] == b"\x02-0 012340000000\r"
    with pytest.raises(TypeError, match="does not stream"):
        sim.frame()
    with pytest.raises(ValueError, match="at most 5 decimals"):
        ScaleSimulator("toledo-continuous", unit="kg", decimals=6)


# -- the PRINT key and personalities of one's own -----------------------------------------------


class BlockPersonality(Personality):
    """An Adam-like counting scale: ``P`` or the PRINT key sends a block of lines."""

    name: ClassVar[str] = "block-test"
    read_request: ClassVar[bytes] = b"P\r\n"
    counts: ClassVar[bool] = True

    def respond(self, request: bytes, scale: SimScale, down: threading.Event) -> bytes | None:
        return self.print_block(scale) if request == b"P" else b"ER " + request + b"\r\n"

    def print_block(self, scale: SimScale) -> bytes | None:
        state = scale.snapshot()
        return (
            f"Net Wt. {decimal_text(state.net_mg, 'kg', 3)} kg\r\n"
            f"Unit Wt. {decimal_text(state.unit_weight_mg or 0, 'g', 0)} g\r\n"
            f"PCS {state.pieces} pcs\r\n\r\n"
        ).encode()


def read_lines(port: Any, count: int) -> list[bytes]:
    framer, lines = LineFramer(b"\r\n"), list[bytes]()
    while len(lines) < count:
        chunk = port.read(1)
        assert chunk, "timed out"
        lines += framer.feed(chunk)
    return lines


def test_print_blocks_on_the_line() -> None:
    with ScaleSimulator(BlockPersonality()) as sim:
        assert sim.protocol == "block-test"
        sim.place("1.250", settle_s=0)
        sim.set_piece_weight(10_000)
        with serial.serial_for_url(sim.start_pty(), timeout=5) as port:
            port.write(b"P\r\n")
            block = [b"Net Wt. 1.250 kg", b"Unit Wt. 10 g", b"PCS 125 pcs"]
            assert read_lines(port, 3) == block
            assert sim.press_print()  # the PRINT key: the same block, unasked
            assert read_lines(port, 3) == block
            port.write(b"Q\r\n")
            assert read_lines(port, 1) == [b"ER Q"]


def test_press_print_per_protocol() -> None:
    with (
        ScaleSimulator("a-and-d") as sim,
        serial.serial_for_url(sim.start_pty(), timeout=5) as port,
    ):
        sim.place("0.750", settle_s=0)
        assert sim.press_print()
        assert read_lines(port, 1) == [b"ST,+0000.750 kg"]
    with ScaleSimulator("toledo-continuous") as sim:
        assert not sim.press_print()  # its print request is a status bit, not a block


def test_replug_resets_the_personality(tmp_path: Path) -> None:
    with ScaleSimulator("toledo-8217") as sim:
        url = sim.start_pty(tmp_path / "scale")
        with serial.serial_for_url(url, timeout=5) as port:
            port.write(b"E")
            assert port.read(3) == b"\x02E\r"
        sim.unplug()
        sim.replug()
        with serial.serial_for_url(url, timeout=5) as port:
            port.write(b"W")
            assert port.read_until(b"\r") == b"\x0200.000\r"  # not echoed: the probe ended


def test_cli_counting_scale() -> None:
    args = ["--protocol", "a-and-d", "--weight", "1.250", "--piece-weight", "12500"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "drivers.sim.scale", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        with serial.serial_for_url(proc.stdout.readline().strip(), timeout=5) as port:
            port.write(b"Q\r\n")
            assert port.read_until(b"\r\n") == b"QT,+00000100 PC\r\n"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert proc.returncode == 0
