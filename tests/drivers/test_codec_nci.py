"""NCI / Weigh-Tronix SCP-01 codec: the reference's frames, status bits, the ETX framer, fuzzing."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.base import MG_PER_UNIT, FrameError, Reading, ScaleError, ScaleRefused
from drivers.scale import Ack, Command, get_protocol
from drivers.scale.nci import PROTOCOL, NciFramer, answers, decode, encode, status_bytes


def exact_mg(value: str, unit: str) -> int:
    """Independent oracle: exact rational arithmetic, banker's rounding (as the codec)."""
    value = value.replace(" ", "").replace(",", ".")
    return round(Fraction(value) * Fraction(MG_PER_UNIT[unit.lower()]))


def weight_frame(weight: bytes, status: bytes) -> bytes:
    return b"\n" + weight + b"\r\n" + status + b"\r\x03"


LB_1_25 = exact_mg("1.25", "lb")  # 566990.4625 mg


def test_registry_and_link() -> None:
    assert get_protocol("nci") is PROTOCOL
    assert not PROTOCOL.streaming
    assert (PROTOCOL.link.baudrate, PROTOCOL.link.bytesize, PROTOCOL.link.parity) == (9600, 7, "E")


def test_encode() -> None:
    assert encode(Command.READ) == b"W\r"
    assert encode(Command.ZERO) == b"Z\r"


@pytest.mark.parametrize(
    "command",
    [Command.READ_STABLE, Command.TARE, Command.CLEAR_TARE, Command.RESET, Command.IDENTIFY],
)
def test_unsupported_commands(command: Command) -> None:
    with pytest.raises(ScaleError, match="not supported by this protocol"):
        encode(command)


# (frame, net, gross, unit, stable, overload, underload): the reference's §3.4 examples first
READINGS = [
    (b"\n0001.25LB\r\n00\r\x03", LB_1_25, None, "LB", True, False, False),
    (b"\n0001.25LB\r\n10\r\x03", LB_1_25, None, "LB", False, False, False),
    (b"\n0000.00LB\r\n20\r\x03", 0, None, "LB", True, False, False),  # at zero
    (b"\n0001.25LB\r\n0p4\r\x03", LB_1_25, None, "LB", True, False, False),  # byte 3: net
    (b"\n0001.25LB\r\n0p0\r\x03", LB_1_25, LB_1_25, "LB", True, False, False),  # byte 3: gross
    (b"\n0001.250KG\r\n00\r\x03", 1_250_000, None, "KG", True, False, False),
    (b"\n001250G\r\n00\r\x03", 1_250_000, None, "G", True, False, False),
    (b"\n0020.00OZ\r\n00\r\x03", exact_mg("20", "oz"), None, "OZ", True, False, False),
    (b"\n  1.25 lb\r\n00\r\x03", LB_1_25, None, "lb", True, False, False),  # padding [U]
    (b"\n0001,25LB\r\n00\r\x03", LB_1_25, None, "LB", True, False, False),  # decimal comma
    (b"\n-001.25LB\r\n00\r\x03", -LB_1_25, None, "LB", True, False, False),
    (b"\n0016.00LB\r\n02\r\x03", None, None, "LB", True, True, False),  # over, value shown
    (b"\n-001.25LB\r\n11\r\x03", None, None, "LB", False, False, True),
    (b"\n02\r\x03", None, None, "", True, True, False),  # status only: over capacity (§3.4)
    (b"\n01\r\x03", None, None, "", True, False, True),
]


@pytest.mark.parametrize(("raw", "net", "gross", "unit", "stable", "over", "under"), READINGS)
def test_frames(
    raw: bytes,
    net: int | None,
    gross: int | None,
    unit: str,
    stable: bool,
    over: bool,
    under: bool,
) -> None:
    status = raw.rsplit(b"\n", 1)[-1][:-2]
    marked = None if len(status) < 3 else bool(status[2] & 0x04)  # byte 3, when sent
    assert decode(raw) == Reading(
        net, unit, stable, gross_mg=gross, overload=over, underload=under, raw=raw, net=marked
    )


@pytest.mark.parametrize(
    ("raw", "status", "flags"),
    [
        (b"\n00\r\x03", "00", ()),
        (b"\n10\r\x03", "10", ("motion",)),
        (b"\n20\r\x03", "20", ("zero",)),
        (b"\n3p4\r\x03", "3p4", ("motion", "zero", "net")),
        (b"\n0p0\r\x03", "0p0", ("gross",)),
    ],
)
def test_status_only_replies(raw: bytes, status: str, flags: tuple[str, ...]) -> None:
    assert decode(raw) == Ack("S", status, flags, raw=raw)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"\n?\r\x03", "did not understand"),
        (b"\n40\r\x03", "RAM error"),
        (b"\n80\r\x03", "EEPROM error"),
        (b"\n04\r\x03", "ROM error"),
        (b"\n08\r\x03", "faulty calibration"),
        (b"\n0p8\r\x03", "initial-zero"),
        (weight_frame(b"0001.25LB", b"40"), "RAM error"),
    ],
)
def test_refusals(raw: bytes, words: str) -> None:
    with pytest.raises(ScaleRefused, match=words):
        decode(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\n\r\x03",
        b"\n0001.25LB\r\n00\r",  # truncated: no ETX
        b"\n0001.25LB\r\n00\x03",
        b"0001.25LB\r\n00\r\x03",  # no LF
        b"\n0001.25LB\r\n0\r\x03",  # one status byte
        b"\n0001.25LB\r\n000\r\x03",  # byte 3 not announced
        b"\n0001.25LB\r\n0p\r\x03",  # byte 3 announced, missing
        b"\n0001.25LB\r\n@0\r\x03",  # byte 1 bit 6 is always 0
        b"\n0001.25LB\r\n 0\r\x03",  # bits 4 and 5 are always 1
        b"\n0001.25LB\r\n0pppp\r\x03",
        b"\n0001.25\r\n00\r\x03",  # no unit
        b"\nLB\r\n00\r\x03",
        b"\n0001.25PCS\r\n00\r\x03",  # not a mass
        b"\n0001.25XY\r\n00\r\x03",
        b"\n00.01.25LB\r\n00\r\x03",
        b"\n1,250.5LB\r\n00\r\x03",
        b"\n12 34LB\r\n00\r\x03",
        b"\n\r\n00\r\x03",  # empty weight line
        b"\n0001.25LB\r\n0001.25LB\r\n00\r\x03",
        b"\n00\x011.25LB\r\n00\r\x03",
    ],
)
def test_frame_errors(raw: bytes) -> None:
    with pytest.raises(FrameError):
        decode(raw)


def test_parity_bit_is_ignored() -> None:
    for raw, *_ in READINGS:
        parity = bytes(b | 0x80 if bin(b).count("1") % 2 else b for b in raw)
        assert decode(parity) == dataclasses.replace(decode(raw), raw=parity)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, b"00"),
        ({"motion": True}, b"10"),
        ({"at_zero": True}, b"20"),
        ({"over": True}, b"02"),
        ({"under": True}, b"01"),
        ({"net": True}, b"0p4"),
        ({"net": False}, b"0p0"),
    ],
)
def test_status_bytes(kwargs: dict[str, bool], expected: bytes) -> None:
    assert status_bytes(**kwargs) == expected


def test_answers() -> None:
    weight, status, over = decode(READINGS[0][0]), decode(b"\n20\r\x03"), decode(b"\n02\r\x03")
    assert answers(Command.READ, weight) and answers(Command.READ, over)
    assert not answers(Command.READ, status)
    assert answers(Command.ZERO, status) and answers(Command.ZERO, over)
    assert not answers(Command.ZERO, weight)
    assert not answers(Command.TARE, status)


# -- the framer ------------------------------------------------------------------------------

FRAMES = [raw for raw, *_ in READINGS] + [b"\n?\r\x03", b"\n20\r\x03"]


def test_framer_glued_frames() -> None:
    framer = NciFramer()
    assert framer.feed(b"".join(FRAMES)) == FRAMES
    assert framer.dropped == 0


@pytest.mark.parametrize(
    "fragment",
    [
        b"25LB\r\n00\r\x03",  # the tail of a frame (port opened mid-frame)
        b"\n0001.2",  # a frame cut short
        b"\n0001.25LB\r",  # … after its weight line
        b"\n0001.25LB\r\n",
        b"\n0001.25LB\r\n0",
        b"\x00\xff\r\n",
        b"\r\n02\r\x03",  # the status part of a cut frame is not a status-only reply
    ],
)
def test_framer_skips_fragments(fragment: bytes) -> None:
    framer = NciFramer()
    assert framer.feed(fragment + FRAMES[0] + FRAMES[1]) == FRAMES[:2]


def test_framer_drops_overlong_garbage() -> None:
    framer = NciFramer()
    assert framer.feed(b"\n" + b"1" * 200 + FRAMES[0]) == [FRAMES[0]]
    assert framer.feed(b"\n" + b"1" * 200) == []
    assert len(framer.pending) <= 49
    framer.reset()
    assert framer.pending == b""


def test_framer_split_at_each_position() -> None:
    stream = b"".join(FRAMES[:5])
    for cut in range(len(stream) + 1):
        framer = NciFramer()
        assert framer.feed(stream[:cut]) + framer.feed(stream[cut:]) == FRAMES[:5]


# -- fuzzing ---------------------------------------------------------------------------------


@st.composite
def weight_frames(draw: st.DrawFn) -> tuple[bytes, int, str]:
    places = draw(st.integers(0, 3))
    count = draw(st.integers(0, 10**6))
    digits = f"{count:0{places + 4}d}"
    text = f"{digits[:-places]}.{digits[-places:]}" if places else digits
    unit = draw(st.sampled_from(["LB", "KG", "G", "OZ", "lb", "kg"]))
    status = status_bytes(
        motion=draw(st.booleans()),
        at_zero=count == 0,
        net=draw(st.sampled_from([None, True, False])),
    )
    return weight_frame(f"{text}{unit}".encode(), status), exact_mg(text, unit), unit


@given(weight_frames())
def test_fuzz_valid_weights_are_exact(case: tuple[bytes, int, str]) -> None:
    raw, mg, unit = case
    reading = decode(raw)
    assert isinstance(reading, Reading) and (reading.net_mg, reading.unit) == (mg, unit)
    assert NciFramer().feed(b"\r\x03" + raw + raw) == [raw, raw]


@given(st.text(alphabet="\n\r\x030123456789.,pLBKGOZ -+?@", max_size=30))
def test_fuzz_frame_like_text(text: str) -> None:
    data = text.encode("ascii")
    with contextlib.suppress(ScaleError):
        assert decode(data).raw == data


@given(st.sampled_from(FRAMES), st.data())
def test_fuzz_truncated_frames(raw: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(FrameError):
        decode(raw[:cut])
    assert NciFramer().feed(raw[:cut]) == []


_WEIGHT = re.compile(rb"\n([^\r\n]*)\r\n([0-?p-\x7f]{2,4})\r\x03")


@given(st.sampled_from(FRAMES), st.data())
def test_fuzz_single_byte_flips(raw: bytes, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(raw) - 1))
    mask = data.draw(st.integers(1, 255))
    flipped = bytearray(raw)
    flipped[index] ^= mask
    try:
        reply = decode(bytes(flipped))
    except ScaleError:
        return
    # no checksum in SCP-01: what decodes must say exactly what its (7-bit) bytes say
    masked = bytes(b & 0x7F for b in flipped)
    status = masked[masked.rfind(b"\n") + 1 : -2] if b"\r\n" in masked else masked[1:-2]
    b1, b2 = status[0], status[1]
    if isinstance(reply, Ack):
        assert reply.status == status.decode()
        assert ("motion" in reply.params) is bool(b1 & 1)
        return
    assert isinstance(reply, Reading)
    assert reply.stable is not bool(b1 & 1)
    assert (reply.overload, reply.underload) == (bool(b2 & 2), bool(b2 & 1))
    if reply.net_mg is not None:
        weight = masked[1 : masked.index(b"\r\n")].decode().strip()
        match = re.fullmatch(r"([+-]? *[0-9.,]+) *([A-Za-z]+)", weight)
        assert match is not None
        assert reply.unit == match.group(2)
        assert reply.net_mg == exact_mg(match.group(1), match.group(2))


def test_status_bytes_from_the_scp01_table() -> None:
    """NCI SCP-01 status bytes as tabled in the Ohaus Aviator 7000 service manual p. 49
    (manualshive.com/en/manual/ohaus/aviator-7000-series/4154010?page=49): ASCII with bits 4-5
    set, byte 1 bit 0 motion / bit 1 at zero, byte 2 bit 0 under / bit 1 over, byte 3 bit 2
    net (when byte 2 bit 6 announces it)."""
    assert decode(b"\n0001.25LB\r\n00\r\x03") == Reading(
        566_990, "LB", True, raw=b"\n0001.25LB\r\n00\r\x03"
    )
    moving = decode(b"\n0001.25LB\r\n10\r\x03")
    assert isinstance(moving, Reading) and not moving.stable
    net = decode(b"\n0001.25LB\r\n0p4\r\x03")  # "p" = byte 2 with bit 6: byte 3 follows
    assert isinstance(net, Reading) and net.net is True and net.gross_mg is None
    gross = decode(b"\n0001.25LB\r\n0p0\r\x03")
    assert isinstance(gross, Reading) and gross.net is False and gross.gross_mg == 566_990
    over = decode(b"\n02\r\x03")
    assert isinstance(over, Reading) and over.overload and over.net_mg is None
