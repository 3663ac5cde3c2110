"""MT-SICS codec: the reference's example exchanges, every status, errors, units, fuzzing."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.base import MG_PER_UNIT, FrameError, Reading, ScaleError, ScaleRefused
from drivers.scale import Ack, Command, get_protocol
from drivers.scale.mtsics import PROTOCOL, SicsRefused, answers, decode, encode


def exact_mg(value: str, unit: str) -> int:
    """Independent oracle: exact rational arithmetic, banker's rounding (as the codec)."""
    return round(Fraction(value.replace(",", ".")) * Fraction(MG_PER_UNIT[unit.lower()]))


# -- the reference's example exchanges (§1.4) ------------------------------------------------


def test_registry_and_link() -> None:
    assert get_protocol("mt-sics") is PROTOCOL
    assert not PROTOCOL.streaming
    assert (PROTOCOL.link.baudrate, PROTOCOL.link.bytesize, PROTOCOL.link.parity) == (9600, 8, "N")


@pytest.mark.parametrize(
    ("command", "request_bytes"),
    [
        (Command.READ, b"SI\r\n"),
        (Command.READ_STABLE, b"S\r\n"),
        (Command.ZERO, b"Z\r\n"),
        (Command.TARE, b"T\r\n"),
        (Command.CLEAR_TARE, b"TAC\r\n"),
        (Command.RESET, b"@\r\n"),
        (Command.IDENTIFY, b"I4\r\n"),
    ],
)
def test_encode(command: Command, request_bytes: bytes) -> None:
    assert encode(command) == request_bytes


@pytest.mark.parametrize(
    ("frame", "net_mg", "unit", "stable"),
    [
        (b"S S     100.00 g", 100_000, "g", True),
        (b"S D    -0.6800 g", -680, "g", False),
        (b"S S      1.250 kg", 1_250_000, "kg", True),
        (b"S S      1.250 Kg", 1_250_000, "Kg", True),
        (b"S S      1.250 KG", 1_250_000, "KG", True),
        (b"S S   125.0000 mg", 125, "mg", True),
        (b"S D     2.0000 lb", 907_185, "lb", False),  # 907184.74 mg
        (b"S S    16.0000 oz", 453_592, "oz", True),  # 453592.37 mg
        (b"S S      0.000 kg", 0, "kg", True),
        (b"S S     +1.500 kg", 1_500_000, "kg", True),
        (b"S S      1,250 kg", 1_250_000, "kg", True),  # decimal comma
        (b"S S     100.00 g\r\n", 100_000, "g", True),  # terminator still present
        (b"S D 12:07.50 lb:oz", 5_655_730, "lb:oz", False),
        (b"S S -0:08.00 lb:oz", -226_796, "lb:oz", True),
        (b"S S   5.00 ct", 1000, "ct", True),
    ],
)
def test_weight_replies(frame: bytes, net_mg: int, unit: str, stable: bool) -> None:
    reading = decode(frame)
    assert isinstance(reading, Reading)
    assert reading == Reading(net_mg=net_mg, unit=unit, stable=stable, raw=frame)
    assert reading.in_range


def test_lb_oz_is_exact() -> None:
    reading = decode(b"S D 12:07.50 lb:oz")
    assert isinstance(reading, Reading)
    exact = 12 * Fraction("453592.37") + Fraction("7.50") * Fraction("28349.523125")
    assert reading.net_mg == round(exact)


def test_overload_and_underload() -> None:
    assert decode(b"S +") == Reading(None, "", False, overload=True, raw=b"S +")
    under = decode(b"S -\r\n")
    assert under == Reading(None, "", False, underload=True, raw=b"S -\r\n")
    assert isinstance(under, Reading) and not under.in_range


@pytest.mark.parametrize(
    ("frame", "ack"),
    [
        (b"Z A", Ack("Z", "A", raw=b"Z A")),
        (b"ZI S", Ack("ZI", "S", raw=b"ZI S")),
        (b"ZI D", Ack("ZI", "D", raw=b"ZI D")),
        (b"TAC A", Ack("TAC", "A", raw=b"TAC A")),
        (b'I4 A "1126493049"', Ack("I4", "A", ("1126493049",), raw=b'I4 A "1126493049"')),
        (
            b'I2 A "XS204 Excellence 220.0090 g"',
            Ack(
                "I2",
                "A",
                ("XS204 Excellence 220.0090 g",),
                raw=b'I2 A "XS204 Excellence 220.0090 g"',
            ),
        ),
        (b'I0 B 0 "I0"', Ack("I0", "B", ("0", "I0"), raw=b'I0 B 0 "I0"')),
        (b"T S      12.50 g", Ack("T", "S", ("12.50", "g"), 12_500, b"T S      12.50 g")),
        (b"TA A      12.50 g", Ack("TA", "A", ("12.50", "g"), 12_500, b"TA A      12.50 g")),
        (b"TI D      0.250 kg", Ack("TI", "D", ("0.250", "kg"), 250_000, b"TI D      0.250 kg")),
        (b"TA A", Ack("TA", "A", raw=b"TA A")),  # tare preset acknowledged
        (b"C3 B", Ack("C3", "B", raw=b"C3 B")),
    ],
)
def test_acks(frame: bytes, ack: Ack) -> None:
    assert decode(frame) == ack


@pytest.mark.parametrize(
    ("frame", "command", "status", "words"),
    [
        (b"S I", "S", "I", "busy or no stable weight"),
        (b"S L", "S", "L", "logical"),
        (b"ES", "ES", "ES", "syntax"),
        (b"ET", "ET", "ET", "transmission"),
        (b"EL\r\n", "EL", "EL", "logical"),
        (b"Z I", "Z", "I", "zero not possible now"),
        (b"Z +", "Z", "+", "above zero range"),
        (b"Z -", "Z", "-", "below zero range"),
        (b"ZI I", "ZI", "I", "zero not possible"),
        (b"T I", "T", "I", "tare not possible now"),
        (b"T +", "T", "+", "above tare range"),
        (b"T -", "T", "-", "below tare range"),
        (b"TA L", "TA", "L", "logical"),
        (b"TAC I", "TAC", "I", "busy"),
        (b"TAC L", "TAC", "L", "logical"),
        (b"I4 I", "I4", "I", "busy"),
        (b"D L", "D", "L", "logical"),
    ],
)
def test_refusals(frame: bytes, command: str, status: str, words: str) -> None:
    with pytest.raises(ScaleRefused) as info:
        decode(frame)
    exc = info.value
    assert isinstance(exc, SicsRefused) and isinstance(exc, ScaleError)
    assert (exc.command, exc.status) == (command, status)
    assert words in str(exc)


def test_s_i_is_told_apart_from_other_refusals() -> None:
    with pytest.raises(ScaleRefused) as info:
        decode(b"S I")
    assert getattr(info.value, "status", None) == "I"
    assert getattr(info.value, "command", None) == "S"


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\r\n",
        b"S",
        b"S S",
        b"S S     100.00",  # no unit
        b"S S     100.00 g extra",
        b"S S     100.00 pcs",  # counts are not mass
        b"S S     100.00 %",
        b"S S     100.00 furlong",
        b"S S 1.250.0 kg",
        b"S S 1,250.5 kg",  # thousands grouping is refused, not guessed
        b"S S 1e3 g",
        b"S S  -- g",
        b"S S ---------- g",
        b"S S nan g",
        b"S S 12345678901234567 kg",  # not a 10-char MT-SICS field
        b"S S 12:16.00 lb:oz",  # 16 oz is a pound
        b"S S 12.07.50 lb:oz",
        b"S S 12:07.50 lb",
        b"S X     100.00 g",
        b"S A",
        b"S + 1",
        b"S I x",
        b"SS S 1 g",
        b"XYZ A",
        b"Z",
        b"Z A extra",
        b"Z Q",
        b'D ""',
        b"ES 1",
        b"T S",
        b"T S 12.50",
        b"TA A 12.50",
        b'I4 A "1126493049',
        b'I4 A x"1"',
        b"I4 A",
        b" S S 1 g",
        b"S\tS 1 g",
        b"S S 1 g\r",
        b"S S 1 g\n",
        b"S S \xb5100 g",
        "S S 100 \u00b5g".encode(),
        b"\x00\x01\x02",
        b"\xff\xfe",
    ],
)
def test_frame_errors(frame: bytes) -> None:
    with pytest.raises(FrameError):
        decode(frame)


@pytest.mark.parametrize(
    ("command", "reply", "expected"),
    [
        (Command.READ, b"S D    -0.6800 g", True),
        (Command.READ_STABLE, b"S S     100.00 g", True),
        (Command.READ_STABLE, b"S +", True),
        (Command.READ, b"Z A", False),
        (Command.ZERO, b"Z A", True),
        (Command.ZERO, b"ZI S", False),
        (Command.ZERO, b"S S     100.00 g", False),
        (Command.TARE, b"T S      12.50 g", True),
        (Command.TARE, b"TA A      12.50 g", False),
        (Command.CLEAR_TARE, b"TAC A", True),
        (Command.CLEAR_TARE, b"TA A", False),
        (Command.RESET, b'I4 A "1126493049"', True),
        (Command.IDENTIFY, b'I4 A "1126493049"', True),
        (Command.IDENTIFY, b'I2 A "XS204 Excellence 220.0090 g"', False),
    ],
)
def test_answers(command: Command, reply: bytes, expected: bool) -> None:
    assert answers(command, decode(reply)) is expected


def test_framer_splits_replies() -> None:
    framer = PROTOCOL.make_framer()
    stream = b'S S     100.00 g\r\nS I\r\nZ A\r\nI4 A "11264'
    frames = framer.feed(stream)
    assert frames == [b"S S     100.00 g", b"S I", b"Z A"]
    assert framer.feed(b'93049"\r\n') == [b'I4 A "1126493049"']


# -- fuzzing ---------------------------------------------------------------------------------

UNITS = ["g", "kg", "mg", "lb", "oz", "G", "Kg", "KG", "LB", "ozt", "ct"]


@st.composite
def weight_lines(draw: st.DrawFn) -> tuple[bytes, int]:
    places = draw(st.integers(0, 5))
    count = draw(st.integers(-(10**8), 10**8))
    unit = draw(st.sampled_from(UNITS))
    status = draw(st.sampled_from("SD"))
    text = f"{Decimal(count).scaleb(-places):f}"
    if draw(st.booleans()):
        text = text.replace(".", ",")
    line = f"S {status} {text:>10} {unit}".encode("ascii")
    return line, exact_mg(text, unit)


@given(weight_lines())
def test_fuzz_valid_weights_are_exact(case: tuple[bytes, int]) -> None:
    line, expected = case
    reading = decode(line)
    assert isinstance(reading, Reading)
    assert reading.net_mg == expected
    # and the same through the framer, with the terminator
    frames = PROTOCOL.make_framer().feed(line + b"\r\n")
    assert [decode(f) for f in frames] == [
        Reading(expected, reading.unit, reading.stable, raw=line)
    ]


@given(
    st.sampled_from(
        [
            b"S S     100.00 g",
            b"S D    -0.6800 g",
            b"S D 12:07.50 lb:oz",
            b'I4 A "1126493049"',
            b'I2 A "XS204 Excellence 220.0090 g"',
            b"T S      12.50 g",
            b"TA A      12.50 g",
            b"TAC A",
            b"S +",
        ]
    ),
    st.data(),
)
def test_fuzz_truncated_frames(line: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(line)))
    part = line[:cut]
    try:
        reply = decode(part)
    except ScaleError:
        pass
    else:
        assert reply.raw == part
    # Without its terminator a truncated line never leaves the framer: that is what keeps
    # "S S     100.0" from being read as 100.0 g.
    framer = PROTOCOL.make_framer()
    assert framer.feed(part) == []
    assert framer.feed(b"\r\n") == ([part] if part else [])


@given(st.binary(max_size=200))
def test_fuzz_stream_through_framer(data: bytes) -> None:
    for frame in PROTOCOL.make_framer().feed(data):
        with contextlib.suppress(ScaleError):
            decode(frame)


@given(st.text(alphabet='SDIAZTCL+-0123456789.,:" gkmlbozE4@', max_size=30))
def test_fuzz_reply_like_text(text: str) -> None:
    # random bytes rarely look like replies; text made of reply characters reaches deeper
    data = text.encode("ascii")
    try:
        reply = decode(data)
    except ScaleError:
        return
    assert reply.raw == data


def test_exchanges_from_the_at_balance_manual() -> None:
    """MT-SICS summary of the AT balance manual (manualshelf.com/manual/mettler-toledo/
    at-balances/2-operating-instructions-english/page-87.html): ``S`` gives the stable net
    weight ``S S     100.00 g``; ``S I`` busy or no stability in time; ``S +`` / ``S -`` over /
    under range. The reply says net weight, without a net/gross marker: ``net`` is None."""
    stable = decode(b"S S     100.00 g\r\n")
    assert stable == Reading(100_000, "g", True, raw=b"S S     100.00 g\r\n")
    assert isinstance(stable, Reading) and stable.net is None
    with pytest.raises(SicsRefused) as busy:
        decode(b"S I\r\n")
    assert busy.value.status == "I"
    over, under = decode(b"S +\r\n"), decode(b"S -\r\n")
    assert isinstance(over, Reading) and over.overload and over.net_mg is None
    assert isinstance(under, Reading) and under.underload and under.net_mg is None
    assert encode(Command.READ_STABLE) == b"S\r\n"
