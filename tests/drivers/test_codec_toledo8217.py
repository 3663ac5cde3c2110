"""Toledo 8217 codec: the reference's frames, both status-byte layouts, the STX framer, fuzzing."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.base import FrameError, Reading, ScaleError, ScaleRefused
from drivers.scale import Ack, Command, get_protocol
from drivers.scale.toledo8217 import (
    PROTOCOL,
    StxCrFramer,
    answers,
    decode,
    encode,
    status_byte,
)


def kg_mg(text: str) -> int:
    """Independent oracle: exact rational kg -> mg, banker's rounding."""
    return round(Fraction(text) * 1_000_000)


def values(reply: object) -> tuple[object, ...]:
    assert isinstance(reply, Reading)
    return (
        reply.net_mg,
        reply.gross_mg,
        reply.unit,
        reply.stable,
        reply.overload,
        reply.underload,
    )


def test_registry_and_link() -> None:
    assert get_protocol("toledo-8217") is PROTOCOL
    assert not PROTOCOL.streaming
    link = PROTOCOL.link
    assert (link.baudrate, link.bytesize, link.parity, link.stopbits) == (9600, 7, "E", 1)


@pytest.mark.parametrize(
    ("command", "request_bytes"),
    [
        (Command.READ, b"W"),
        (Command.ZERO, b"ZW"),
        (Command.TARE, b"TW"),
        (Command.CLEAR_TARE, b"CW"),
    ],
)
def test_encode(command: Command, request_bytes: bytes) -> None:
    assert encode(command) == request_bytes


@pytest.mark.parametrize("command", [Command.READ_STABLE, Command.RESET, Command.IDENTIFY])
def test_unsupported_commands(command: Command) -> None:
    with pytest.raises(ScaleError, match="not supported by this protocol"):
        encode(command)


# (frame, net, gross, stable, overload, underload): the reference's §2.2 examples first
READINGS = [
    (b"\x0201.250\r", 1_250_000, 1_250_000, True, False, False),
    (b"\x0201.250N\r", 1_250_000, None, True, False, False),
    (b"\x02?A\r", None, None, False, False, False),  # DIVA layout: bit 6 set
    (b"\x02?B\r", None, None, True, True, False),
    (b"\x02?D\r", None, None, True, False, True),
    # emupos layout (bit 6 clear) and a fixture's 0x60 base: bits 6-7 are don't care
    (b"\x02?\x01\r", None, None, False, False, False),
    (b"\x02?a\r", None, None, False, False, False),
    (b"\x02?\x24\r", None, None, True, False, True),  # under zero + net
    (b"\x02?\x23\r", None, None, False, True, False),  # motion + over + net
    (b"\x02?\x02\r", None, None, True, True, False),  # a status byte that is STX
    (b"\x02?\x0d\r", None, None, False, False, True),  # … or CR (motion, under, outside zero)
    (b"\x0200.000\r", 0, 0, True, False, False),
    (b"\x0215.000\r", 15_000_000, 15_000_000, True, False, False),
    (b"\x02 1.25\r", 1_250_000, 1_250_000, True, False, False),  # Odoo's regex allows spaces
    (b"\x02123.456N\r", 123_456_000, None, True, False, False),
    (b"\x020.0005\r", 500, 500, True, False, False),
    (b"\x0212\r", 12_000_000, 12_000_000, True, False, False),  # no decimal point
]


@pytest.mark.parametrize(("frame", "net", "gross", "stable", "over", "under"), READINGS)
def test_frames(
    frame: bytes, net: int | None, gross: int | None, stable: bool, over: bool, under: bool
) -> None:
    reading = decode(frame)
    assert values(reading) == (net, gross, "kg", stable, over, under)
    assert isinstance(reading, Reading) and reading.raw == frame
    assert reading.tare_mg is None and reading.pieces is None
    assert reading.in_range is (net is not None)


def test_parity_bit_is_ignored() -> None:
    for frame, *_ in READINGS:
        parity = bytes(b | 0x80 if bin(b).count("1") % 2 else b for b in frame)
        assert values(decode(parity)) == values(decode(frame))


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        (b"\x02?@\r", "no reason"),  # DIVA: nothing set
        (b"\x02?P\r", "no reason"),  # emupos "bad command" while at centre of zero
        (b"\x02?`\r", "no reason"),  # net only
        (b"\x02?H\r", "zero-capture"),
    ],
)
def test_status_without_weight_is_refused(frame: bytes, words: str) -> None:
    with pytest.raises(ScaleRefused, match=words):
        decode(frame)


def test_presence_probe_answer() -> None:
    assert decode(b"\x02E\r") == Ack("E", "A", raw=b"\x02E\r")


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x02",
        b"\x02\r",
        b"\x0201.250",  # truncated: no CR
        b"01.250\r",  # no STX
        b"\x0201.250\r\r",
        b"\x02?\r",
        b"\x02?AB\r",
        b"\x02-1.250\r",  # no sign in this format
        b"\x02+1.250\r",
        b"\x021.2.3\r",
        b"\x021,250\r",
        b"\x02.\r",
        b"\x02abc\r",
        b"\x0201.250NN\r",
        b"\x0201.250G\r",
        b"\x02N\r",
        b"\x0201.250 N\r",
        b"\x02123456789.0\r",  # more digits than any scale shows
        b"\x0201.250\n",
        b"\x03",
    ],
)
def test_frame_errors(frame: bytes) -> None:
    with pytest.raises(FrameError):
        decode(frame)


def test_answers() -> None:
    weight, status = decode(b"\x0201.250\r"), decode(b"\x02?A\r")
    for command in (Command.READ, Command.ZERO, Command.TARE, Command.CLEAR_TARE):
        assert answers(command, weight) and answers(command, status)
    assert not answers(Command.READ, decode(b"\x02E\r"))
    assert not answers(Command.IDENTIFY, weight)


@pytest.mark.parametrize(
    ("flags", "byte"),
    [
        ({}, 0x40),
        ({"motion": True}, ord("A")),
        ({"over": True}, ord("B")),
        ({"under": True}, ord("D")),
        ({"center_zero": True, "net": True}, 0x70),
    ],
)
def test_status_byte(flags: dict[str, bool], byte: int) -> None:
    assert status_byte(**flags) == byte


# -- the framer ------------------------------------------------------------------------------

FRAMES = [f for f, *_ in READINGS] + [b"\x02E\r"]


def test_framer_glued_frames() -> None:
    framer = StxCrFramer()
    assert framer.feed(b"".join(FRAMES)) == FRAMES
    assert framer.dropped == 0


def test_framer_garbage_and_fragments() -> None:
    framer = StxCrFramer()
    stream = b"1.250\r" + FRAMES[0] + b"\x00\xff\r\n" + FRAMES[1] + b"\x0201.2" + FRAMES[2]
    assert framer.feed(stream) == FRAMES[:3]  # a cut frame is dropped at the next STX
    assert framer.dropped > 0
    framer.feed(b"\x0201")
    assert framer.pending == b"\x0201"
    framer.reset()
    assert framer.pending == b""


def test_framer_status_reply_needs_its_cr() -> None:
    # STX ? s followed by anything but CR is not a frame; an STX there starts the next one
    assert StxCrFramer().feed(b"\x02?AX\x0201.250\r") == [b"\x0201.250\r"]
    assert StxCrFramer().feed(b"\x02?A\x0201.250\r") == [b"\x0201.250\r"]


def test_framer_drops_overlong_frames() -> None:
    framer = StxCrFramer()
    assert framer.feed(b"\x02" + b"1" * 40 + b"\r" + FRAMES[0]) == [FRAMES[0]]


def test_framer_split_at_each_position() -> None:
    stream = b"".join(FRAMES)
    for cut in range(len(stream) + 1):
        framer = StxCrFramer()
        assert framer.feed(stream[:cut]) + framer.feed(stream[cut:]) == FRAMES


# -- fuzzing ---------------------------------------------------------------------------------


@st.composite
def weight_frames(draw: st.DrawFn) -> tuple[bytes, int, bool]:
    places = draw(st.integers(0, 4))
    whole = draw(st.integers(0, 999))
    text = f"{whole:02d}"
    if places:
        text += f".{draw(st.integers(0, 10**places - 1)):0{places}d}"
    net = draw(st.booleans())
    frame = b"\x02" + text.encode() + (b"N" if net else b"") + b"\r"
    return frame, kg_mg(text), net


@given(weight_frames())
def test_fuzz_valid_weights_are_exact(case: tuple[bytes, int, bool]) -> None:
    frame, mg, net = case
    reading = decode(frame)
    assert isinstance(reading, Reading) and reading.net_mg == mg
    assert reading.gross_mg == (None if net else mg)
    assert StxCrFramer().feed(b"\x00" + frame + frame) == [frame, frame]


@given(st.sampled_from(FRAMES), st.data())
def test_fuzz_truncated_frames(frame: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(frame) - 1))
    with pytest.raises(FrameError):
        decode(frame[:cut])
    assert StxCrFramer().feed(frame[:cut]) == []  # never leaves the framer without its CR


_DIGITS = re.compile(rb"\x02 *([0-9.]+)(N?)\r")


@given(
    st.sampled_from([f for f in FRAMES if f[1:2] != b"?"] + [b"\x02?A\r", b"\x02?D\r"]),
    st.data(),
)
def test_fuzz_single_byte_flips(frame: bytes, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(frame) - 1))
    mask = data.draw(st.integers(1, 255))
    flipped = bytearray(frame)
    flipped[index] ^= mask
    try:
        reply = decode(bytes(flipped))
    except ScaleError:
        return
    # no checksum in this format: what decodes must say exactly what its bytes say
    masked = bytes(b & 0x7F for b in flipped)
    if isinstance(reply, Ack):
        assert masked == b"\x02E\r"
        return
    assert isinstance(reply, Reading)
    if reply.net_mg is None:
        status = masked[2]
        assert (not reply.stable, reply.overload, reply.underload) == (
            bool(status & 1),
            bool(status & 2),
            bool(status & 4),
        )
        return
    match = _DIGITS.fullmatch(masked)
    assert match is not None
    assert reply.net_mg == kg_mg(match.group(1).decode())
    assert (reply.gross_mg is None) is (match.group(2) == b"N")


def test_net_marker_and_status_net_bit_from_public_drivers() -> None:
    """The weight reply's ``N`` means net (Odoo's IoT driver regex ``\\x02\\s*([0-9.]+)N?\\r``,
    odoo/odoo addons/hw_drivers/iot_handlers/drivers/SerialScaleDriver.py); status bit 5 is
    "net weight" (Viva/DIVA service manual p. 51, and pywebdriver's
    scale_protocols/mettler_toledo_8217.py)."""
    net = decode(b"\x0201.250N\r")
    gross = decode(b"\x0201.250\r")
    assert isinstance(net, Reading) and net.net is True and net.gross_mg is None
    assert isinstance(gross, Reading) and gross.net is False and gross.gross_mg == 1_250_000
    moving_net = decode(b"\x02?" + bytes([status_byte(motion=True, net=True)]) + b"\r")
    assert isinstance(moving_net, Reading) and moving_net.net is True and not moving_net.stable
    moving = decode(b"\x02?A\r")  # "A" = 0x41: motion, gross
    assert isinstance(moving, Reading) and moving.net is False
