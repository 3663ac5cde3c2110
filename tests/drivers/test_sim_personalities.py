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

from drivers.base import Reading
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

REPO = Path(__file__).resolve().parents[2]
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


# -- every personality against its own codec ---------------------------------------------------


@pytest.mark.parametrize("name", [name for name in PERSONALITIES if name in PROTOCOLS])
def test_every_personality_speaks_its_codec(name: str, make: Any) -> None:
    """What a personality sends for one read decodes, with its protocol's codec, to what the
    weight model shows: stable, moving, negative, tared, counting, over and under range."""
    sim = make(name)
    kind = type(sim.personality)
    codec = PROTOCOLS[name]

    def read() -> Reading:
        frames = codec.make_framer().feed(sim.personality.sample(sim))
        readings = [r for r in map(codec.decode, frames) if isinstance(r, Reading)]
        assert len(readings) == 1, frames
        return readings[0]

    sim.place("1.250", settle_s=0)
    reading = read()
    assert (reading.net_mg, reading.stable, reading.in_range) == (1_250_000, True, True)
    assert reading.gross_mg in (None, 1_250_000) and reading.pieces is None
    sim.place("1.250", settle_s=float("inf"))
    reading = read()
    assert not reading.stable
    assert reading.net_mg is None or abs(reading.net_mg - 1_250_000) <= 3 * sim.division_mg
    sim.place("0.500", settle_s=0)
    assert sim.zero() == "A"
    sim.remove(settle_s=0)
    reading = read()
    if kind.shows_negative:
        assert (reading.net_mg, reading.stable) == (-500_000, True)
    else:
        assert reading.underload and reading.net_mg is None
    assert sim.zero() == "A"
    sim.place("1.700", settle_s=0)
    assert sim.tare()[0] == "A"
    sim.place("2.500", settle_s=0)
    reading = read()
    assert (reading.net_mg, reading.stable) == (800_000, True)
    assert reading.gross_mg in (None, 2_500_000) and reading.tare_mg in (None, 1_700_000)
    sim.clear_tare()
    sim.place("1.250", settle_s=0)
    sim.set_piece_weight(10_000)
    reading = read()
    if kind.counts:
        assert (reading.pieces, reading.stable) == (125, True)
        assert reading.unit_weight_mg in (None, 10_000)
    else:
        assert (reading.net_mg, reading.pieces) == (1_250_000, None)
    sim.set_piece_weight(None)
    sim.set_overload()
    reading = read()
    assert reading.overload and not reading.underload and reading.net_mg is None
    sim.set_overload(False)
    sim.set_underload()
    reading = read()
    assert reading.net_mg is None and reading.underload is kind.tells_underload


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


# -- Ohaus -----------------------------------------------------------------------------------


def test_ohaus_replies(make: Any) -> None:
    sim = make("ohaus")
    sim.place("1.250", settle_s=0)
    assert ask(sim, b"IP\r\n") == b"     1.250 kg   B/G\r\n"  # Ranger Compact P layout
    assert ask(sim, b"P\r\n") == ask(sim, b"SP\r\n") == b"     1.250 kg   B/G\r\n"
    assert sim.personality.print_block(sim) == b"     1.250 kg   B/G\r\n"
    assert ask(sim, b"T\r\n") is None  # Z, T, xT act silently
    assert sim.snapshot().tare_mg == 1_250_000
    sim.place("2.000", settle_s=0)
    assert ask(sim, b"IP\r\n") == b"     0.750 kg   NET\r\n"
    assert ask(sim, b"0T\r\n") is None  # 0T clears the tare
    assert ask(sim, b"IP\r\n") == b"     2.000 kg   B/G\r\n"
    assert ask(sim, b"500T\r\n") is None  # a preset tare, in grams
    assert sim.snapshot().tare_mg == 500_000
    sim.clear_tare()
    sim.place("0.500", settle_s=0)
    assert ask(sim, b"Z\r\n") is None
    sim.remove(settle_s=0)
    assert ask(sim, b"IP\r\n") == b"-    0.500 kg   B/G\r\n"  # polarity column
    assert sim.zero() == "A"
    sim.place("1.000", settle_s=float("inf"))
    assert ask(sim, b"IP\r\n").endswith(b" kg ? B/G\r\n")  # type: ignore[union-attr]
    assert ask(sim, b"SP\r\n").endswith(b"? B/G\r\n")  # type: ignore[union-attr]  # gave up
    assert ask(sim, b"T\r\n") is None and sim.snapshot().tare_mg == 0  # refused in motion
    sim.place("1.250", settle_s=0)
    sim.set_piece_weight(10_000)
    assert ask(sim, b"IP\r\n") == b"       125 PCS  \r\n"  # Ranger Count: the count
    sim.set_piece_weight(None)
    sim.set_overload()
    assert ask(sim, b"IP\r\n") == b"      -OL- kg   B/G\r\n"
    sim.set_overload(False)
    sim.set_underload()
    assert ask(sim, b"IP\r\n") == b"      -UL- kg   B/G\r\n"
    assert ask(sim, b"XX\r\n") == b"ES\r\n"  # as the Courier 5000
    assert ask(sim, b"I\xffP\r\n") == b"ES\r\n"


def test_ohaus_in_grams(make: Any) -> None:
    sim = make("ohaus", unit="g", decimals=1)
    sim.place("250.5 g", settle_s=0)
    assert ask(sim, b"IP\r\n") == b"     250.5 g    B/G\r\n"
    with pytest.raises(ValueError, match="at most 6 digits"):
        ScaleSimulator("ohaus", unit="kg", decimals=6)


# -- Adam ------------------------------------------------------------------------------------


def test_adam_print_blocks(make: Any) -> None:
    sim = make("adam")
    sim.place("1.250", settle_s=0)
    assert ask(sim, b"P\r\n") == b"ST,GS      1.250 kg \r\n\r\n\r\n"
    sim.set_piece_weight(12_500)
    counting = b"ST,GS      1.250 kg \r\nUnit Wt. 12.5 g\r\nPCS 100 pcs\r\n\r\n\r\n"
    assert ask(sim, b"P\r\n") == counting
    assert sim.personality.print_block(sim) == counting  # the PRINT key
    sim.set_piece_weight(10_000)
    assert b"\r\nUnit Wt. 10 g\r\nPCS 125 pcs\r\n" in ask(sim, b"P\r\n")  # type: ignore[operator]
    sim.set_piece_weight(None)
    assert ask(sim, b"T\r\n") is None  # T and Z act silently
    assert ask(sim, b"P\r\n") == b"ST,NT      0.000 kg \r\n\r\n\r\n"
    assert ask(sim, b"T0.200\r\n") is None  # a preset tare, in the display unit
    assert sim.snapshot().tare_mg == 200_000
    assert ask(sim, b"Tx\r\n") == b"ER Tx\r\n"
    sim.clear_tare()
    sim.place("0.500", settle_s=0)
    assert ask(sim, b"Z\r\n") is None
    sim.remove(settle_s=0)
    assert ask(sim, b"P\r\n") == b"ST,GS-     0.500 kg \r\n\r\n\r\n"  # polarity column
    sim.place("1.000", settle_s=float("inf"))
    assert ask(sim, b"P\r\n")[:6] == b"US,GS "  # type: ignore[index]
    assert ask(sim, b"T\r\n") == b"ER T\r\n"  # impossible now: echoed as an error
    assert ask(sim, b"Z\r\n") == b"ER Z\r\n"
    sim.place("1.000", settle_s=0)
    sim.set_overload()
    assert ask(sim, b"P\r\n") == b"ST,GS^^^^^^^^^^^ kg \r\n\r\n\r\n"
    assert ask(sim, b"T\r\n") == b"ER T\r\n"
    sim.set_overload(False)
    sim.set_underload()
    assert ask(sim, b"P\r\n") == b"ST,GS----------- kg \r\n\r\n\r\n"
    assert ask(sim, b"MR\r\n") == b"ER MR\r\n"


# -- Dini Argeo ------------------------------------------------------------------------------


def test_dini_replies(make: Any) -> None:
    sim = make("dini-argeo")
    assert ask(sim, b"READ\r\n") == b"ST,GS,   0.000,kg\r\n"
    sim.place("1.250", settle_s=0)
    assert ask(sim, b"READ\r\n") == b"ST,GS,   1.250,kg\r\n"
    ext = b"1,ST,     1.250,       0.000,         0,         0,kg\r\n"
    assert ask(sim, b"REXT\r\n") == ext
    assert ask(sim, b"TARE\r\n") == b"OK\r\n"
    assert ask(sim, b"READ\r\n") == b"ST,NT,   0.000,kg\r\n"
    sim.place("2.000", settle_s=0)
    ext = b"1,ST,     0.750,       1.250,         0,         0,kg\r\n"
    assert ask(sim, b"REXT\r\n") == ext
    assert ask(sim, b"CLEAR\r\n") == b"OK\r\n"
    assert ask(sim, b"T\r\n") == b"OK\r\n"  # the short forms too
    assert ask(sim, b"C\r\n") == b"OK\r\n"
    assert sim.snapshot().tare_mg == 0
    sim.place("0.500", settle_s=0)
    assert ask(sim, b"ZERO\r\n") == b"OK\r\n"
    sim.remove(settle_s=0)
    assert ask(sim, b"READ\r\n") == b"ST,GS,  -0.500,kg\r\n"
    sim.place("1.000", settle_s=float("inf"))
    assert ask(sim, b"READ\r\n")[:9] == b"US,GS,   "  # type: ignore[index]
    assert ask(sim, b"TARE\r\n") == b"ERR03\r\n"  # not allowed in the present state
    assert ask(sim, b"Z\r\n") == b"ERR03\r\n"
    sim.place("1.000", settle_s=0)
    sim.set_overload()
    assert ask(sim, b"READ\r\n") == b"OL,GS,--------,kg\r\n"
    over = b"1,OL,          ,            ,         0,         0,kg\r\n"
    assert ask(sim, b"REXT\r\n") == over
    sim.set_overload(False)
    sim.set_underload()
    assert ask(sim, b"READ\r\n") == b"UL,GS,--------,kg\r\n"
    assert sim.personality.print_block(sim) == b"UL,GS,--------,kg\r\n"
    assert ask(sim, b"STAT\r\n") == b"ERR04\r\n"


def test_dini_in_grams_and_extended(make: Any) -> None:
    sim = make("dini-argeo", unit="g", decimals=1)
    sim.place("250.5 g", settle_s=0)
    assert ask(sim, b"READ\r\n") == b"ST,GS,   250.5, g\r\n"
    ext = make("dini-argeo-ext")
    ext.place("0.600", settle_s=0)
    assert ext.personality.sample(ext) == ask(ext, b"REXT\r\n")
    assert ask(ext, b"READ\r\n") == b"ST,GS,   0.600,kg\r\n"  # the same indicator


# -- Kern ------------------------------------------------------------------------------------


def test_kern_frames(make: Any) -> None:
    sim = make("kern")
    sim.place("1.250", settle_s=0)
    assert ask(sim, b"w") == ask(sim, b"s") == b"       1.250 kg \r\n"  # 18 bytes
    assert sim.personality.print_block(sim) == b"       1.250 kg \r\n"
    assert ask(sim, b"t") is None  # tare sends nothing
    assert ask(sim, b"w") == b"       0.000 kg \r\n"
    sim.clear_tare()
    sim.place("0.500", settle_s=0)
    sim.zero()  # no zero command: the key
    sim.remove(settle_s=0)
    assert ask(sim, b"w") == b" -     0.500 kg \r\n"  # the sign column
    assert sim.zero() == "A"
    sim.place("1.000", settle_s=float("inf"))
    moving = ask(sim, b"w")
    assert moving is not None and moving.endswith(b"    \r\n") and len(moving) == 18  # no unit
    sim.place("1.250", settle_s=0)
    sim.set_piece_weight(10_000)
    assert ask(sim, b"w") == b"         125 pcs\r\n"
    sim.set_piece_weight(None)
    sim.set_overload()
    assert ask(sim, b"w") == b"      =Overload=\r\n"
    sim.set_overload(False)
    sim.set_underload()
    assert ask(sim, b"w") == b"     =Underload=\r\n"
    assert ask(sim, b"x") is None  # other letters: ignored
    assert sim.personality.request_framer().feed(b"tw\r\n") == [b"t", b"w"]


def test_kern_tm_replies(make: Any) -> None:
    sim = make("kern-tm")
    sim.place("1.250", settle_s=0)
    assert ask(sim, b"W") == ask(sim, b"S") == b"ST,GS,+0001.250  kg\r\n"  # KXS-TM layout
    assert ask(sim, b"P") == b"ST,GS,+0001.250  kg\r\n"
    assert ask(sim, b"T") is None  # T and Z send nothing
    assert ask(sim, b"W") == b"ST,NT,+0000.000  kg\r\n"
    sim.clear_tare()
    sim.place("0.500", settle_s=0)
    assert ask(sim, b"Z") is None
    sim.remove(settle_s=0)
    assert ask(sim, b"W") == b"ST,GS,-0000.500  kg\r\n"
    assert sim.zero() == "A"
    sim.place("1.000", settle_s=float("inf"))
    assert ask(sim, b"W")[:7] == b"US,GS,+"  # type: ignore[index]
    sim.place("1.250", settle_s=0)
    sim.set_piece_weight(10_000)
    assert ask(sim, b"W") == b"ST,GS,+00000125  pcs\r\n"
    assert ask(sim, b"P") == b"125PCS\r\n"  # KFB-TM's counting print
    sim.set_piece_weight(None)
    sim.set_overload()
    assert ask(sim, b"W") == b"OL,GS,+            \r\n"
    sim.set_overload(False)
    sim.set_underload()
    assert ask(sim, b"W") == b"OL,GS,-            \r\n"
    assert ask(sim, b"X") is None


def test_kern_kcp_is_mt_sics(make: Any) -> None:
    sim = make("kern-kcp")
    sim.place("1.250", settle_s=0)
    assert sim.personality.sample(sim) == b"S S      1.250 kg\r\n"
    assert ask(sim, b"I4\r\n") == b'I4 A "1126493049"\r\n'
    assert ask(sim, b"Z\r\n") == b"Z A\r\n"


# -- configurable ASCII (default protocol) -----------------------------------------------------


def test_ascii_stream(make: Any) -> None:
    sim = make("ascii")
    assert sim.frame() == b"0.000 kg\r\n"
    sim.place("1.250", settle_s=0)
    assert sim.frame() == sim.personality.sample(sim) == b"1.250 kg\r\n"  # not padded
    sim.place("1.250", settle_s=float("inf"))
    assert sim.frame().endswith(b" kg ?\r\n")
    sim.place("0.500", settle_s=0)
    sim.zero()
    sim.remove(settle_s=0)
    assert sim.frame() == b"-0.500 kg\r\n"
    sim.zero()
    sim.place("1.250", settle_s=0)
    sim.set_piece_weight(10_000)
    assert sim.frame() == b"125 pcs\r\n"
    sim.set_piece_weight(None)
    sim.set_overload()
    assert sim.frame() == b"OL\r\n"
    sim.set_overload(False)
    sim.set_underload()
    assert sim.frame() == b"UL\r\n"
    assert sim.personality.respond(b"P", sim, NO_LINE) is None  # it only talks
    assert sim.personality.print_block(sim) is None


def test_ascii_in_grams(make: Any) -> None:
    sim = make("ascii", unit="g", decimals=1)
    sim.place("250.5 g", settle_s=0)
    assert sim.frame() == b"250.5 g\r\n"


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
        [sys.executable, "-m", "drivers.sim.scale_cli", *args],
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
