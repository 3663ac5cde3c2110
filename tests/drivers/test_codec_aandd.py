"""A&D standard format codec: the reference's lines, counting, OL, AK and EC codes, fuzzing."""

from __future__ import annotations

import contextlib
import re
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.base import MG_PER_UNIT, FrameError, Reading, ScaleError, ScaleRefused
from drivers.scale import Ack, Command, get_protocol
from drivers.scale.aandd import PROTOCOL, AandDRefused, answers, decode, encode


def exact_mg(value: str, unit: str) -> int:
    """Independent oracle: exact rational arithmetic, banker's rounding (as the codec). Blanks
    are dropped: a flipped leading zero (``+ 0012.34``) still says 12.34."""
    text = value.replace(" ", "").replace(",", ".")
    return round(Fraction(text) * Fraction(MG_PER_UNIT[unit.lower()]))


def test_registry_and_link() -> None:
    assert get_protocol("a-and-d") is PROTOCOL
    assert not PROTOCOL.streaming
    link = PROTOCOL.link
    assert (link.baudrate, link.bytesize, link.parity, link.stopbits) == (2400, 7, "E", 1)


@pytest.mark.parametrize(
    ("command", "request_bytes"),
    [
        (Command.READ, b"Q\r\n"),
        (Command.READ_STABLE, b"S\r\n"),
        (Command.ZERO, b"Z\r\n"),
        (Command.TARE, b"T\r\n"),
        (Command.IDENTIFY, b"?SN\r\n"),
    ],
)
def test_encode(command: Command, request_bytes: bytes) -> None:
    assert encode(command) == request_bytes


@pytest.mark.parametrize("command", [Command.CLEAR_TARE, Command.RESET])
def test_unsupported_commands(command: Command) -> None:
    with pytest.raises(ScaleError, match="not supported by this protocol"):
        encode(command)


# (line, net, unit, stable, pieces, overload, underload): the reference's §4.4 examples first
READINGS = [
    (b"ST,+00012.34  g", 12_340, "g", True, None, False, False),
    (b"US,+00012.31  g", 12_310, "g", False, None, False, False),
    (b"OL,+999999.9  g", None, "g", False, None, True, False),
    (b"QT,+00012345 PC", None, "PC", True, 12_345, False, False),
    (b"ST,-00000.20  g", -200, "g", True, None, False, False),
    (b"ST,+00012.34  g\r\n", 12_340, "g", True, None, False, False),  # terminator present
    (b"ST,+0001.250 kg", 1_250_000, "kg", True, None, False, False),
    (b"ST,+00000.00  g", 0, "g", True, None, False, False),
    (b"OL,-999999.9  g", None, "g", False, None, False, True),  # negative out of range
    (b"OL,+9999.999 kg", None, "kg", False, None, True, False),
    (b"US,+00000012 PC", None, "PC", False, 12, False, False),
    (b"ST,+002.7558 lb", exact_mg("2.7558", "lb"), "lb", True, None, False, False),
    (b"ST,+044.0925 oz", exact_mg("44.0925", "oz"), "oz", True, None, False, False),
    (b"ST,+00012,34  g", 12_340, "g", True, None, False, False),  # decimal comma
    (b"ST,+0062.500 ct", 12_500, "ct", True, None, False, False),
    (b"ST,+0001.250 KG", 1_250_000, "KG", True, None, False, False),
    (b"ST,OK,+0001.234 kg", 1_234_000, "kg", True, None, False, False),  # GC comparator
    (b"ST,HI,+0001.234 kg", 1_234_000, "kg", True, None, False, False),
    (b"US,--,+0001.234 kg", 1_234_000, "kg", False, None, False, False),
]


@pytest.mark.parametrize(("line", "net", "unit", "stable", "pieces", "over", "under"), READINGS)
def test_lines(
    line: bytes,
    net: int | None,
    unit: str,
    stable: bool,
    pieces: int | None,
    over: bool,
    under: bool,
) -> None:
    assert decode(line) == Reading(
        net, unit, stable, overload=over, underload=under, pieces=pieces, raw=line
    )


def test_lb_is_exact() -> None:
    reading = decode(b"ST,+002.7558 lb")
    assert isinstance(reading, Reading)
    assert reading.net_mg == round(Fraction("2.7558") * Fraction("453592.37"))


@pytest.mark.parametrize(
    ("line", "ack"),
    [
        (b"\x06", Ack("AK", "A", raw=b"\x06")),
        (b"\x06\r\n", Ack("AK", "A", raw=b"\x06\r\n")),
        (b"SN,T1234567", Ack("SN", "A", ("T1234567",), raw=b"SN,T1234567")),
        (b"TN,  FX-300i", Ack("TN", "A", ("FX-300i",), raw=b"TN,  FX-300i")),
        (b"ID,LAB-0123", Ack("ID", "A", ("LAB-0123",), raw=b"ID,LAB-0123")),
    ],
)
def test_acks(line: bytes, ack: Ack) -> None:
    assert decode(line) == ack


@pytest.mark.parametrize(
    ("line", "code", "words"),
    [
        (b"EC,E00", "E00", "communication error"),
        (b"EC,E01", "E01", "undefined command"),
        (b"EC,E02", "E02", "not ready"),
        (b"EC,E04", "E04", "too many characters"),
        (b"EC,E06", "E06", "format error"),
        (b"EC,E07", "E07", "out of range"),
        (b"EC,E11\r\n", "E11", "unstable"),  # zero refused (§4.4)
        (b"EC,E17", "E17", "out of range"),
        (b"EC,E99", "E99", "error"),
    ],
)
def test_error_codes(line: bytes, code: str, words: str) -> None:
    with pytest.raises(ScaleRefused, match=words) as info:
        decode(line)
    assert isinstance(info.value, AandDRefused) and info.value.code == code


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"\r\n",
        b"ST",
        b"ST,",
        b"ST,+00012.34  ",  # truncated unit
        b"ST,+00012.34 g",  # 14 characters: data and unit are fixed widths
        b"ST,+000012.34  g",
        b"XX,+00012.34  g",
        b"ST;+00012.34  g",
        b"ST,+0001.2.4  g",
        b"ST,+000012,34.5g",
        b"ST,+0001 2.34  g",
        b"ST,+00012.34  %",  # percent is not a mass
        b"ST,+00012.34  N",
        b"ST,+00012.34 DS",
        b"ST,+00012.34 mom",  # momme and tael: not converted
        b"ST,+00012.34 tl",
        b"ST,+00012.34 pcs",
        b"ST,+00012.34 k g",
        b"QT,+00012.34  g",  # QT is counting data
        b"QT,+000123.4 PC",  # pieces are whole
        b"OL,+00012.34  g",  # OL data is all 9s
        b"ST,XX,+0001.234 kg",
        b"EC,E1",
        b"EC,E111",
        b"\x06\x06",
        b"ST,+00012.34\xb5 g",
        b"ST,+00012.34\x00 g",
    ],
)
def test_frame_errors(line: bytes) -> None:
    with pytest.raises(FrameError):
        decode(line)


def test_parity_bit_is_ignored() -> None:
    framer = PROTOCOL.make_framer()
    for line, *_ in READINGS:
        with_crlf = line if line.endswith(b"\r\n") else line + b"\r\n"
        parity = bytes(b | 0x80 if bin(b).count("1") % 2 else b for b in with_crlf)
        assert parity.endswith(b"\x8d\n")  # CR has odd weight: its parity bit is set
        (framed,) = framer.feed(parity)  # split at the LF, the 0x8D still at its end
        original, again = decode(line), decode(framed)
        assert isinstance(original, Reading) and isinstance(again, Reading)
        assert (again.net_mg, again.pieces, again.stable) == (
            original.net_mg,
            original.pieces,
            original.stable,
        )


def test_answers() -> None:
    weight, ak, sn = decode(READINGS[0][0]), decode(b"\x06"), decode(b"SN,T1234567")
    assert answers(Command.READ, weight) and answers(Command.READ_STABLE, weight)
    assert not answers(Command.READ, ak)
    assert answers(Command.ZERO, ak) and answers(Command.TARE, ak)
    assert not answers(Command.ZERO, weight)
    assert answers(Command.IDENTIFY, sn) and not answers(Command.IDENTIFY, ak)
    assert not answers(Command.CLEAR_TARE, ak)


def test_framer_splits_lines_and_double_ak() -> None:
    framer = PROTOCOL.make_framer()
    stream = b"\x06\r\nST,+00012.34  g\r\n\x06\r\n\x06\r\nQT,+00012345 PC\r\nEC,E1"
    assert framer.feed(stream) == [
        b"\x06",
        b"ST,+00012.34  g",
        b"\x06",
        b"\x06",
        b"QT,+00012345 PC",
    ]
    assert framer.feed(b"1\r\n") == [b"EC,E11"]


# -- fuzzing ---------------------------------------------------------------------------------

UNITS = ["g", "kg", "lb", "oz", "ct", "ozt", "GN", "t", "KG"]


@st.composite
def weight_lines(draw: st.DrawFn) -> tuple[bytes, int, str]:
    places = draw(st.integers(0, 5))
    count = draw(st.integers(0, 10 ** (8 - (1 if places else 0)) - 1))
    digits = f"{count:0{8 - (1 if places else 0)}d}"
    text = (
        f"{digits[: len(digits) - places]}.{digits[len(digits) - places :]}" if places else digits
    )
    if draw(st.booleans()):
        text = text.replace(".", ",")
    sign = draw(st.sampled_from("+-"))
    unit = draw(st.sampled_from(UNITS))
    head = draw(st.sampled_from(["ST", "US"]))
    line = f"{head},{sign}{text}{unit:>3}".encode()
    mg = exact_mg(text, unit)
    return line, -mg if sign == "-" else mg, unit


@given(weight_lines())
def test_fuzz_valid_weights_are_exact(case: tuple[bytes, int, str]) -> None:
    line, mg, unit = case
    reading = decode(line)
    assert isinstance(reading, Reading) and (reading.net_mg, reading.unit) == (mg, unit)
    assert [decode(f) for f in PROTOCOL.make_framer().feed(line + b"\r\n")] == [reading]


@given(st.integers(-(10**8) + 1, 10**8 - 1), st.sampled_from(["QT", "US"]))
def test_fuzz_counts(count: int, head: str) -> None:
    line = f"{head},{'-' if count < 0 else '+'}{abs(count):08d} PC".encode()
    reading = decode(line)
    assert isinstance(reading, Reading) and reading.pieces == count and reading.net_mg is None


@given(st.text(alphabet="STUQOLEC,+-0123456789., gkPCb%\x06", max_size=24))
def test_fuzz_line_like_text(text: str) -> None:
    data = text.encode("ascii")
    with contextlib.suppress(ScaleError):
        assert decode(data).raw == data


FRAMES = [line for line, *_ in READINGS if not line.endswith(b"\r\n")]


@given(st.sampled_from(FRAMES), st.data())
def test_fuzz_truncated_lines(line: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(line) - 1))
    with pytest.raises(FrameError):
        decode(line[:cut])
    assert PROTOCOL.make_framer().feed(line[:cut]) == []  # held until its CR LF


_FIELDS = re.compile(r"(ST|US|QT),(?:(?:LO|OK|HI|--),)?(.{9})(.{3})")


@given(st.sampled_from(FRAMES), st.data())
def test_fuzz_single_byte_flips(line: bytes, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(line) - 1))
    mask = data.draw(st.integers(1, 255))
    flipped = bytearray(line)
    flipped[index] ^= mask
    try:
        reply = decode(bytes(flipped))
    except ScaleError:
        return
    # no checksum in this format: what decodes must say exactly what its (7-bit) bytes say
    text = bytes(b & 0x7F for b in flipped).decode("ascii")
    if isinstance(reply, Ack):
        assert text == "\x06" or text[:3] in ("SN,", "ID,", "TN,")
        return
    assert isinstance(reply, Reading)
    if reply.overload or reply.underload:
        assert text.startswith("OL,") and reply.underload is (text[3] == "-")
        return
    match = _FIELDS.fullmatch(text)
    assert match is not None
    head, value, unit = match.group(1), match.group(2).strip(), match.group(3).strip()
    assert reply.stable is (head != "US") and reply.unit == unit
    if unit.upper() == "PC":
        assert reply.pieces == int(value) and reply.net_mg is None
    else:
        assert reply.net_mg == exact_mg(value, unit) and reply.pieces is None


def test_cal_is_the_balances_own_calibration_from_the_manual() -> None:
    """FX-i manual §15-2: CAL is acknowledged (AK, 06h) on receipt and again when done; a
    failure is EC,Exx (E20/E21: the calibration weight too heavy/too light)."""
    assert encode(Command.ADJUST_EXTERNAL) == b"CAL\r\n"
    ak = decode(b"\x06\r\n")
    assert answers(Command.ADJUST_EXTERNAL, ak)
    with pytest.raises(AandDRefused, match="too heavy") as refused:
        decode(b"EC,E20\r\n")
    assert refused.value.code == "E20"


def test_data_lines_from_the_manuals() -> None:
    """A&D standard format (EK-L manual p. 30, 88.208.23.73:8080/en/manual/aandd/ek-l-series/
    3176573?page=30; EK-120i p. 25): header, 9-character data, 3-character unit, CR LF; the
    manual's examples ``ST,+00012.34  g``, ``OL,+999999.9  g`` (over), ``QT,+00012345 PC``."""
    stable = decode(b"ST,+00012.34  g\r\n")
    assert stable == Reading(12_340, "g", True, raw=b"ST,+00012.34  g\r\n")
    assert isinstance(stable, Reading) and stable.net is None  # the format has no G/N
    over = decode(b"OL,+999999.9  g\r\n")
    assert isinstance(over, Reading) and over.overload and over.net_mg is None
    count = decode(b"QT,+00012345 PC\r\n")
    assert isinstance(count, Reading) and count.pieces == 12_345 and count.stable
