"""Dini Argeo codec: standard, REXT and AF strings, OK/ERR replies, statuses, fuzzing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.base import FrameError, Reading, ScaleError, ScaleRefused
from drivers.scale import Ack, Command
from drivers.scale.dini import PROTOCOL, PROTOCOL_EXT, answers, decode, encode, encode_ext
from tests.support.codec_oracle import LIKELY, assert_faithful, decoded, exact_mg, flip


def test_protocol_shape() -> None:
    assert PROTOCOL.name == "dini-argeo"
    assert PROTOCOL_EXT.name == "dini-argeo-ext"
    for protocol in (PROTOCOL, PROTOCOL_EXT):
        assert not protocol.streaming
        link = protocol.link
        assert (link.baudrate, link.bytesize, link.parity, link.stopbits) == (9600, 8, "N", 1)
        assert protocol.decode is decode


@pytest.mark.parametrize(
    ("command", "request_bytes", "ext_bytes"),
    [
        (Command.READ, b"READ\r\n", b"REXT\r\n"),
        (Command.TARE, b"TARE\r\n", b"TARE\r\n"),
        (Command.ZERO, b"ZERO\r\n", b"ZERO\r\n"),
        (Command.CLEAR_TARE, b"CLEAR\r\n", b"CLEAR\r\n"),
    ],
)
def test_encode(command: Command, request_bytes: bytes, ext_bytes: bytes) -> None:
    assert encode(command) == request_bytes
    assert encode_ext(command) == ext_bytes


@pytest.mark.parametrize("command", [Command.READ_STABLE, Command.RESET, Command.IDENTIFY])
def test_unsupported_commands(command: Command) -> None:
    for enc in (encode, encode_ext):
        with pytest.raises(ScaleError, match="not supported by this protocol"):
            enc(command)


STANDARD = [
    # (frame, net_mg, unit, stable, gross_mg)
    (b"ST,GS,     0.0,kg", 0, "kg", True, 0),  # the reference's example
    (b"ST,GS,     0.0,kg\r\n", 0, "kg", True, 0),
    (b"US,GS,   1.250,kg", 1_250_000, "kg", False, 1_250_000),
    (b"ST,NT,   -12.5,kg", -12_500_000, "kg", True, None),
    (b"ST,NT,-   12.5,Kg", -12_500_000, "Kg", True, None),  # sign in the first column
    (b"ST,NT,+0012.50,kg", 12_500_000, "kg", True, None),
    (b"ST,GS,   250.0, g", 250_000, "g", True, 250_000),
    (b"ST,GS,  1.2500, t", 1_250_000_000, "t", True, 1_250_000_000),
    (b"ST,GS,   2.000,lb", 907_185, "lb", True, 907_185),  # 907184.74 mg
    (b"01ST,GS,   1.000,kg", 1_000_000, "kg", True, 1_000_000),  # RS-485 address
]


@pytest.mark.parametrize(("frame", "net_mg", "unit", "stable", "gross_mg"), STANDARD)
def test_standard_string(
    frame: bytes, net_mg: int, unit: str, stable: bool, gross_mg: int | None
) -> None:
    marked = gross_mg is None  # GS or NT: the reading says which
    assert decode(frame) == Reading(net_mg, unit, stable, gross_mg=gross_mg, raw=frame, net=marked)


@pytest.mark.parametrize(
    ("frame", "overload", "underload"),
    [
        (b"OL,GS,--------,kg", True, False),
        (b"UL,GS,--------,kg", False, True),
        (b"OL,NT,  9999.9,kg", True, False),
        (b"00UL,GS,        ,kg", False, True),
    ],
)
def test_out_of_range(frame: bytes, overload: bool, underload: bool) -> None:
    reading = decode(frame)
    assert reading == Reading(
        None, "kg", False, overload=overload, underload=underload, raw=frame,
        net=b",NT," in frame,
    )  # fmt: skip
    assert isinstance(reading, Reading) and not reading.in_range


def test_rext_extended_string() -> None:
    frame = b"1,ST,    10.500,       2.000,         0,         0,kg"
    assert decode(frame) == Reading(
        10_500_000, "kg", True, gross_mg=12_500_000, tare_mg=2_000_000, raw=frame, net=True
    )
    preset = b"011,US,    -0.250,PT     0.500,         0,         0,Kg"  # address 01, scale 1
    reading = decode(preset)
    assert reading == Reading(
        -250_000, "Kg", False, gross_mg=250_000, tare_mg=500_000, raw=preset, net=True
    )
    over = b"1,OL,          ,            ,         0,         0,kg"
    assert decode(over) == Reading(None, "kg", False, overload=True, raw=over)


def test_af_string() -> None:
    frame = b"ST,1,    12.500kg,PT     2.000kg"
    assert decode(frame) == Reading(
        10_500_000, "kg", True, gross_mg=12_500_000, tare_mg=2_000_000, raw=frame, net=True
    )
    frame = b"00US,2,     1.000kg,       0.000kg"
    assert decode(frame) == Reading(
        1_000_000, "kg", False, gross_mg=1_000_000, tare_mg=0, raw=frame, net=False
    )
    under = b"UL,1,----------kg,  ----------kg"
    assert decode(under) == Reading(None, "kg", False, underload=True, raw=under)


def test_ok_and_errors() -> None:
    assert decode(b"OK") == Ack("OK", "A", raw=b"OK")
    assert decode(b"01OK\r\n") == Ack("OK", "A", raw=b"01OK\r\n")
    for code, words in [
        ("01", "format"),
        ("02", "parameter"),
        ("03", "not allowed"),
        ("04", "unrecognised"),
        ("07", "error"),
    ]:
        with pytest.raises(ScaleRefused, match=words):
            decode(f"ERR{code}".encode())


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        (b"TL,GS,     1.0,kg", "not level"),
        (b"ER,GS,     1.0,kg", "in error"),
        (b"1,ER,    10.500,       2.000,         0,         0,kg", "in error"),
    ],
)
def test_status_refusals(frame: bytes, words: str) -> None:
    with pytest.raises(ScaleRefused, match=words):
        decode(frame)


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"OK x",
        b"ERR",
        b"ERR1",
        b"ST,VL,     1.0,kg",  # microvolts are not a mass
        b"ST,RZ,  123456,kg",  # ADC points neither
        b"ST,XX,     1.0,kg",
        b"SS,GS,     1.0,kg",
        b"T,GS,     1.0,kg",  # the tail of a cut frame
        b"ST,GS,    1.0,kg",  # 7-character weight: a byte was lost
        b"ST,GS,     1.0,k",
        b"ST,GS,     1.0,oz",
        b"ST,GS,     1.0,KGS",
        b"ST,GS,     1.0",
        b"ST,GS,     1.0,kg,",
        b"ST,GS,  -  1.0,kg",  # a sign inside the padding
        b"ST,GS, 1,000.0,kg",
        b"ST,NT,  12,500,kg",  # a decimal comma cannot be told from the field separator
        b"ST,GS,     1e3,kg",
        b"ST,GS,--------,kg",  # a value is required when stable
        b"ST,1,    12.500kg,XX     2.000kg",  # tare flag must be PT or blanks
        b"ST,1,    12.500kg,PT     2.000lb",  # units disagree
        b"ST,1,   12.500kg,PT     2.000kg",
        b"1,ST,    10.500,      2.000,         0,        0,kg",
        b"1,ST,    10.500,XX    2.000,         0,         0,kg",
        b"1,XX,    10.500,      2.000,         0,         0,kg",
        b"12,ST,    10.500,      2.000,         0,         0,kg",
        b"ST,GS,     1.0,kg\xff",
        b"ST,GS,\t    1.0,kg",
    ],
)
def test_frame_errors(frame: bytes) -> None:
    with pytest.raises(FrameError):
        decode(frame)


@pytest.mark.parametrize(
    ("command", "reply", "expected"),
    [
        (Command.READ, b"ST,GS,     0.0,kg", True),
        (Command.READ, b"OL,GS,--------,kg", True),
        (Command.READ, b"OK", False),
        (Command.TARE, b"OK", True),
        (Command.ZERO, b"OK", True),
        (Command.CLEAR_TARE, b"OK", True),
        (Command.TARE, b"ST,NT,     0.0,kg", False),
        (Command.IDENTIFY, b"OK", False),
    ],
)
def test_answers(command: Command, reply: bytes, expected: bool) -> None:
    assert answers(command, decode(reply)) is expected


def test_framer() -> None:
    framer = PROTOCOL.make_framer()
    assert framer.feed(b"ST,GS,     0.0,kg\r\nOK\r\nUS,NT,  ") == [b"ST,GS,     0.0,kg", b"OK"]
    assert framer.feed(b" 1.250,kg\r\n") == [b"US,NT,   1.250,kg"]


# -- fuzzing ---------------------------------------------------------------------------------


def _field(text: str, width: int, negative: bool, sign_first: bool) -> str:
    if negative and sign_first:
        return "-" + text.rjust(width - 1)
    return (("-" if negative else "") + text).rjust(width)


@st.composite
def strings(draw: st.DrawFn) -> tuple[bytes, Reading, frozenset[int]]:
    """A standard, REXT or AF string, its reading, and the positions that may legitimately
    change the net (the weight fields and units)."""
    places = draw(st.integers(0, 3))
    unit = draw(st.sampled_from(["kg", "Kg", " g", " t", "lb"]))
    status = draw(st.sampled_from(["ST", "US"]))
    address = draw(st.sampled_from(["", "01"]))
    layout = draw(st.sampled_from(["standard", "rext", "af"]))
    width = 8 if layout == "standard" else 10
    limit = 10 ** (width - 3 - places)

    def value() -> tuple[str, int]:
        magnitude = draw(st.integers(0, limit))
        negative = magnitude != 0 and draw(st.booleans())
        text = f"{Decimal(magnitude).scaleb(-places):f}"
        field = _field(text, width, negative, draw(st.booleans()))
        return field, exact_mg(("-" if negative else "") + text, unit.strip())

    stable = status == "ST"
    clean = unit.strip()
    if layout == "standard":
        kind = draw(st.sampled_from(["GS", "NT"]))
        field, mg = value()
        head = f"{address}{status},{kind},"
        line = f"{head}{field},{unit}"
        gross = mg if kind == "GS" else None
        expected = Reading(mg, clean, stable, gross_mg=gross, net=kind == "NT")
        sensitive = range(len(head), len(line))
    elif layout == "rext":
        net_field, net = value()
        tare_field, tare = value()
        flag = draw(st.sampled_from(["PT", "  "]))
        head = f"{address}1,{status},"
        line = f"{head}{net_field},{flag}{tare_field},{'0':>10},{'0':>10},{unit}"
        expected = Reading(net, clean, stable, gross_mg=net + tare, tare_mg=tare, net=tare != 0)
        sensitive = range(len(head), len(line))
    else:
        gross_field, gross = value()
        tare_field, tare = value()
        flag = draw(st.sampled_from(["PT", "  "]))
        head = f"{address}{status},1,"
        line = f"{head}{gross_field}{unit},{flag}{tare_field}{unit}"
        expected = Reading(gross - tare, clean, stable, gross_mg=gross, tare_mg=tare, net=tare != 0)
        sensitive = range(len(head), len(line))
    frame = line.encode("ascii")
    reading = Reading(
        expected.net_mg,
        expected.unit,
        expected.stable,
        gross_mg=expected.gross_mg,
        tare_mg=expected.tare_mg,
        raw=frame,
        net=expected.net,
    )
    return frame, reading, frozenset(sensitive)


@given(strings())
def test_fuzz_valid_strings_are_exact(case: tuple[bytes, Reading, frozenset[int]]) -> None:
    frame, expected, _ = case
    assert decode(frame) == expected
    frames = PROTOCOL.make_framer().feed(frame + b"\r\n" + frame + b"\r\n")
    assert [decode(f) for f in frames] == [expected, expected]


@given(strings(), st.data())
def test_fuzz_single_byte_changes(
    case: tuple[bytes, Reading, frozenset[int]], data: st.DataObject
) -> None:
    frame, expected, sensitive = case
    where = data.draw(st.integers(0, len(frame) - 1))
    changed = flip(frame, where, data.draw(st.sampled_from(LIKELY) | st.integers(0, 255)))
    reply = decoded(decode, changed)
    assert_faithful(reply, changed)
    if where not in sensitive and isinstance(reply, Reading) and reply.net_mg is not None:
        # status, kind, address and commas: the weight does not move
        assert (reply.net_mg, reply.unit) == (expected.net_mg, expected.unit)


@given(strings(), st.data())
def test_fuzz_truncated_strings(
    case: tuple[bytes, Reading, frozenset[int]], data: st.DataObject
) -> None:
    frame, expected, _ = case
    cut = data.draw(st.integers(0, len(frame) - 1))
    framer = PROTOCOL.make_framer()
    assert framer.feed(frame[:cut]) == []
    head, tail = frame[:cut], frame[cut + 1 :]
    reply = decoded(decode, head)
    assert_faithful(reply, head)
    # fixed widths and the unit last: a string cut short never decodes to a weight
    assert not (isinstance(reply, Reading) and reply.net_mg is not None)
    reply = decoded(decode, tail)
    assert_faithful(reply, tail)
    if isinstance(reply, Reading) and reply.net_mg is not None:
        # only the RS-485 address may go: the status leads every string
        assert (reply.net_mg, reply.unit) == (expected.net_mg, expected.unit)


@given(st.text(alphabet=" ,-+0123456789.STUGNOLRKEPgklbt", max_size=50))
def test_fuzz_string_like_text(text: str) -> None:
    data = text.encode("ascii")
    reply = decoded(decode, data)
    assert_faithful(reply, data)
    if reply is not None:
        assert reply.raw == data


def test_unstable_net_string_from_the_manual() -> None:
    """Standard string ``HH,KK,PPPPPPPP,UM``: ``US`` unstable, ``NT`` net (DGT4X manual p. 52,
    easymanua.ls/dini-argeo/dgt4x/manual/39685?p=52; 3590E E-AF03 §5.4). The net is kept as
    net even while the pan moves, and without the tare (the standard string has none)."""
    reading = decode(b"US,NT,   1.250,kg\r\n")
    assert isinstance(reading, Reading)
    assert (reading.stable, reading.net, reading.net_mg) == (False, True, 1_250_000)
    assert reading.gross_mg is None and reading.tare_mg is None
    gross = decode(b"ST,GS,     0.0,kg\r\n")  # the manual's own example
    assert isinstance(gross, Reading) and gross.net is False and gross.net_mg == 0
