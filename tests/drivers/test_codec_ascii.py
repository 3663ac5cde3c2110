"""Configurable ASCII protocol: validation at make time, the default instance, groups, fuzzing."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.base import FrameError, Reading, ScaleError
from drivers.scale import Command
from drivers.scale.ascii import DEFAULT_REGEX, PROTOCOL, make_protocol
from drivers.serialio import LinkSettings
from tests.support.codec_oracle import LIKELY, assert_faithful, decoded, exact_mg, flip

decode = PROTOCOL.decode


def test_default_protocol_shape() -> None:
    assert PROTOCOL.name == "ascii"
    assert PROTOCOL.streaming
    assert PROTOCOL.link == LinkSettings(9600, 8, "N", 1)
    for command in Command:
        with pytest.raises(ScaleError, match="not supported by this protocol"):
            PROTOCOL.encode(command)


@pytest.mark.parametrize(
    ("regex", "unit", "words"),
    [
        (r"(?P<w>\d+) kg", None, "named group 'weight'"),
        (r"(\d+) kg", None, "named group 'weight'"),
        (r"(?P<weight>\d+", None, "invalid regex"),
        (r"(?P<weight>\d+) (?P<unti>kg)", None, "unknown named group(s) unti"),
        (r"(?P<weight>\d+)", None, "no named group 'unit'"),
        (r"(?P<weight>\d+)", "furlong", "unknown unit"),
    ],
)
def test_make_protocol_validates_the_regex(regex: str, unit: str | None, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        make_protocol(None, b"\r\n", regex, unit=unit)


def test_make_protocol_validates_request_and_terminator() -> None:
    with pytest.raises(ValueError, match="terminator"):
        make_protocol(None, b"", DEFAULT_REGEX)
    with pytest.raises(ValueError, match="request"):
        make_protocol(b"", b"\r\n", DEFAULT_REGEX)


@pytest.mark.parametrize(
    ("frame", "net_mg", "unit"),
    [
        (b"1.250 kg", 1_250_000, "kg"),
        (b"  +0012.50 kg", 12_500_000, "kg"),  # leading +, blanks, zero padding
        (b"12,5 g", 12_500, "g"),  # decimal comma
        (b"-  3.2 lb", -1_451_496, "lb"),  # 1451495.584 mg, sign apart from the digits
        (b"-3.2lb", -1_451_496, "lb"),
        (b" 0.500 KG", 500_000, "KG"),
        (b"16 oz", 453_592, "oz"),  # 453592.37 mg
        (b"1 lb", 453_592, "lb"),
        (b"100 mg", 100, "mg"),
        (b"2 t", 2_000_000_000, "t"),
        (b"12:07.50 lb:oz", 5_655_730, "lb:oz"),
        (b"-0:08 lb:oz", -226_796, "lb:oz"),  # 226796.185 mg
        (b"   -0:08 lb:oz", -226_796, "lb:oz"),
        (b"  +1 kg", 1_000_000, "kg"),
        (b"1.250 kg\r\n", 1_250_000, "kg"),
    ],
)
def test_default_weights(frame: bytes, net_mg: int, unit: str) -> None:
    assert decode(frame) == Reading(net_mg, unit, True, raw=frame)


def test_lb_oz_is_exact() -> None:
    reading = decode(b"12:07.50 lb:oz")
    assert isinstance(reading, Reading)
    assert reading.net_mg == exact_mg("12:07.50", "lb:oz")


def test_default_count() -> None:
    assert decode(b"10 pcs") == Reading(None, "pcs", True, pieces=10, raw=b"10 pcs")
    # a counting scale shows a negative count when pieces are taken off after a tare
    assert decode(b"-37 pcs") == Reading(None, "pcs", True, pieces=-37, raw=b"-37 pcs")


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        # a "?" after the unit: in motion (the default took every frame as stable before)
        (b"1.250 kg ?", Reading(1_250_000, "kg", False)),
        (b"  -0.500 kg?", Reading(-500_000, "kg", False)),
        (b"10 pcs ?", Reading(None, "pcs", False, pieces=10)),
        (b"1.250 kg   ", Reading(1_250_000, "kg", True)),
        # out of range, as most indicators display it
        (b"OL", Reading(None, "", False, overload=True)),
        (b"  +OL ", Reading(None, "", False, overload=True)),
        (b"UL", Reading(None, "", False, underload=True)),
        (b"-OL", Reading(None, "", False, underload=True)),
    ],
)
def test_default_motion_and_out_of_range(frame: bytes, expected: Reading) -> None:
    assert decode(frame) == Reading(
        expected.net_mg,
        expected.unit,
        expected.stable,
        overload=expected.overload,
        underload=expected.underload,
        pieces=expected.pieces,
        raw=frame,
    )


def test_out_of_range_frame_needs_no_unit() -> None:
    # regression: a frame matching ``over``/``under`` without a unit was refused ("no unit"),
    # although the weight (and so its unit) may be absent from such frames
    protocol = make_protocol(None, b"\n", r"(?P<over>OL)|(?P<weight>\d+) (?P<unit>kg)")
    assert protocol.decode(b"OL") == Reading(None, "", False, overload=True, raw=b"OL")
    assert protocol.decode(b"12 kg") == Reading(12_000_000, "kg", True, raw=b"12 kg")
    with_unit = make_protocol(None, b"\n", r"(?P<under>UL)|(?P<weight>\d+)", unit="kg")
    assert with_unit.decode(b"UL") == Reading(None, "kg", False, underload=True, raw=b"UL")


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"kg",
        b"12.5",  # no unit
        b"12.5 furlong",
        b"12.5 %",
        b"1,234.5 kg",  # thousands grouping is refused, not guessed
        b"1.234,5 kg",
        b"1e3 g",
        b"12:16 lb:oz",  # 16 oz is a pound
        b"12:07 kg",
        b"12.5 lb:oz",
        b"1.5 pcs",
        b"  - 3 pcs",  # a count's sign follows the padding rule too
        b"weight 12.5 kg",  # the whole frame must match
        b"12.5 kg x",
        b"12.5 kg\xff",
        b"12345678901234567 g",
        b"  -  3.2 lb",  # a sign inside the padding
        b"  -  0:08 lb:oz",
        b"?",
        b"1.250 ? kg",
        b"1.250 kg ? ?",
        b"OL kg",  # out-of-range lines carry no unit in the default
        b"OL 1.250 kg",
        b"OLL",
        b"O L",
    ],
)
def test_default_frame_errors(frame: bytes) -> None:
    with pytest.raises(FrameError):
        decode(frame)


# An A&D/Kern-TM-like polled configuration: header, gross/net marker, sign, value, unit.
POLLED = make_protocol(
    b"Q\r\n",
    b"\r\n",
    r"(?P<stable>ST|US|QT),(?P<net>GS|NT),(?P<sign>[+-])(?P<weight>[\d.]+) *(?P<unit>[a-zA-Z]+)",
    name="my-scale",
    stable_when="ST",
    link=LinkSettings(2400, 7, "E", 1),
)


def test_polled_protocol_shape() -> None:
    assert POLLED.name == "my-scale"
    assert not POLLED.streaming
    assert POLLED.link == LinkSettings(2400, 7, "E", 1)
    assert POLLED.encode(Command.READ) == b"Q\r\n"
    for command in (Command.READ_STABLE, Command.TARE, Command.ZERO, Command.IDENTIFY):
        with pytest.raises(ScaleError, match="not supported by this protocol"):
            POLLED.encode(command)
    assert "polled" in POLLED.description


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (b"ST,NT,+00012.34  g", Reading(12_340, "g", True, net=True)),
        (b"US,NT,-00012.34  g", Reading(-12_340, "g", False, net=True)),
        (b"QT,GS,+001.2500 kg", Reading(1_250_000, "kg", False, gross_mg=1_250_000, net=False)),
        (b"ST,GS,+001.2500 kg", Reading(1_250_000, "kg", True, gross_mg=1_250_000, net=False)),
    ],
)
def test_polled_groups(frame: bytes, expected: Reading) -> None:
    reading = POLLED.decode(frame)
    assert reading == Reading(
        expected.net_mg,
        expected.unit,
        expected.stable,
        gross_mg=expected.gross_mg,
        raw=frame,
        net=expected.net,
    )
    assert POLLED.answers(Command.READ, reading)
    assert not POLLED.answers(Command.TARE, reading)


def test_stable_group_without_stable_when() -> None:
    protocol = make_protocol(None, b"\r\n", r"(?P<weight>\d+) (?P<unit>g)(?P<stable> S)?")
    assert protocol.decode(b"12 g S") == Reading(12_000, "g", True, raw=b"12 g S")
    assert protocol.decode(b"12 g") == Reading(12_000, "g", False, raw=b"12 g")


def test_unit_from_config_pieces_and_markers() -> None:
    protocol = make_protocol(
        b"P",
        b"\r",
        r"\x02(?P<over>OL)?(?P<under>UL)?(?P<weight>\d+(?:\.\d+)?)? *(?P<net>N)?"
        r"(?: (?P<pieces>\d+)PCS)?\x03",
        unit="kg",
    )
    assert protocol.decode(b"\x021.5 N 12PCS\x03") == Reading(
        1_500_000, "kg", True, pieces=12, raw=b"\x021.5 N 12PCS\x03", net=True
    )
    assert protocol.decode(b"\x021.5\x03") == Reading(1_500_000, "kg", True, raw=b"\x021.5\x03")
    assert protocol.decode(b"\x02OL\x03") == Reading(
        None, "kg", False, overload=True, raw=b"\x02OL\x03"
    )
    assert protocol.decode(b"\x02UL\x03") == Reading(
        None, "kg", False, underload=True, raw=b"\x02UL\x03"
    )
    with pytest.raises(FrameError, match="no weight"):
        protocol.decode(b"\x02\x03")
    assert protocol.make_framer().feed(b"\x021.5\x03\r\x022.5\x03\r") == [
        b"\x021.5\x03",
        b"\x022.5\x03",
    ]


def test_unknown_net_marker_is_refused() -> None:
    protocol = make_protocol(None, b"\n", r"(?P<net>\w+) (?P<weight>\d+) (?P<unit>kg)")
    assert protocol.decode(b"NET 1 kg") == Reading(1_000_000, "kg", True, raw=b"NET 1 kg", net=True)
    assert protocol.decode(b"B 1 kg") == Reading(
        1_000_000, "kg", True, gross_mg=1_000_000, raw=b"B 1 kg", net=False
    )
    with pytest.raises(FrameError, match="gross/net marker"):
        protocol.decode(b"TARE 1 kg")


def test_separate_sign_group_and_signed_weight_conflict() -> None:
    protocol = make_protocol(None, b"\n", r"(?P<sign>-)?(?P<weight>[+-]?\d+) (?P<unit>g)")
    assert protocol.decode(b"-5 g") == Reading(-5_000, "g", True, raw=b"-5 g")
    with pytest.raises(FrameError, match="two signs"):
        protocol.decode(b"--5 g")


def test_framer_any_terminator_byte() -> None:
    framer = PROTOCOL.make_framer()
    assert framer.feed(b"1.250 kg\r\n2.5 g\n3 lb\r4") == [b"1.250 kg", b"2.5 g", b"3 lb"]


# -- fuzzing ---------------------------------------------------------------------------------


@st.composite
def lines(draw: st.DrawFn) -> tuple[bytes, Reading, frozenset[int]]:
    places = draw(st.integers(0, 4))
    magnitude = draw(st.integers(0, 10**9))
    negative = magnitude != 0 and draw(st.booleans())
    unit = draw(st.sampled_from(["g", "kg", "mg", "lb", "oz", "G", "Kg", "KG", "LB", "t"]))
    text = f"{Decimal(magnitude).scaleb(-places):f}"
    if draw(st.booleans()):
        text = text.replace(".", ",")
    blanks = " " * draw(st.integers(0, 4))
    sign = "-" if negative else draw(st.sampled_from(["", "+"]))
    # a polarity column (sign first, blanks after) or a sign touching the digits
    pad, gap = (blanks, "") if draw(st.booleans()) else ("", blanks)
    head = pad + sign + gap
    line = f"{head}{text} {unit}"
    frame = line.encode("ascii")
    start = len(head)
    sensitive = frozenset({0, len(pad), start - 1, *range(start, len(frame))})
    mg = exact_mg(("-" if negative else "") + text, unit)
    return frame, Reading(mg, unit, True, raw=frame), sensitive


@given(lines())
def test_fuzz_valid_lines_are_exact(case: tuple[bytes, Reading, frozenset[int]]) -> None:
    frame, expected, _ = case
    assert decode(frame) == expected
    frames = PROTOCOL.make_framer().feed(frame + b"\r\n" + frame + b"\n")
    assert [decode(f) for f in frames] == [expected, expected]


@given(lines(), st.data())
def test_fuzz_single_byte_changes(
    case: tuple[bytes, Reading, frozenset[int]], data: st.DataObject
) -> None:
    frame, expected, sensitive = case
    where = data.draw(st.integers(0, len(frame) - 1))
    changed = flip(frame, where, data.draw(st.sampled_from(LIKELY) | st.integers(0, 255)))
    reply = decoded(decode, changed)
    assert_faithful(reply, changed)
    if where not in sensitive and isinstance(reply, Reading) and reply.net_mg is not None:
        assert (reply.net_mg, reply.unit) == (expected.net_mg, expected.unit)


@given(lines(), st.data())
def test_fuzz_truncated_lines(
    case: tuple[bytes, Reading, frozenset[int]], data: st.DataObject
) -> None:
    frame, expected, _ = case
    cut = data.draw(st.integers(0, len(frame)))
    head = frame[:cut]
    assert PROTOCOL.make_framer().feed(head) == []
    reply = decoded(decode, head)
    assert_faithful(reply, head)
    if isinstance(reply, Reading) and reply.net_mg is not None:
        # the unit follows the digits: a prefix with a unit has every digit
        assert (reply.net_mg, reply.unit) == (expected.net_mg, expected.unit)


@given(st.text(alphabet=" +-0123456789.,:kgmlbozpcsGKLBT", max_size=24))
def test_fuzz_line_like_text(text: str) -> None:
    data = text.encode("ascii")
    reply = decoded(decode, data)
    assert_faithful(reply, data)
    if reply is not None:
        assert reply.raw == data
