"""Ohaus codec: the reference's print lines and commands, counting, errors, fuzzing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.base import FrameError, Reading, ScaleError, ScaleRefused
from drivers.scale import Ack, Command
from drivers.scale.ohaus import PROTOCOL, answers, decode, encode
from tests.support.codec_oracle import LIKELY, assert_faithful, decoded, exact_mg, flip


def test_protocol_shape() -> None:
    assert PROTOCOL.name == "ohaus"
    assert not PROTOCOL.streaming
    link = PROTOCOL.link
    assert (link.baudrate, link.bytesize, link.parity, link.stopbits) == (9600, 8, "N", 1)
    assert not (link.rtscts or link.xonxoff)


@pytest.mark.parametrize(
    ("command", "request_bytes"),
    [
        (Command.READ, b"IP\r\n"),
        (Command.READ_STABLE, b"SP\r\n"),
        (Command.ZERO, b"Z\r\nIP\r\n"),
        (Command.TARE, b"T\r\nIP\r\n"),
        (Command.CLEAR_TARE, b"0T\r\nIP\r\n"),
    ],
)
def test_encode(command: Command, request_bytes: bytes) -> None:
    assert encode(command) == request_bytes


@pytest.mark.parametrize("command", [Command.RESET, Command.IDENTIFY])
def test_unsupported_commands(command: Command) -> None:
    with pytest.raises(ScaleError, match="not supported by this protocol"):
        encode(command)


# (frame, net_mg, unit, stable, gross_mg, pieces)
WEIGHTS = [
    # Defender 3000 layout (reference §5.2, constructed there)
    (b"    12.34 kg       G  ", 12_340_000, "kg", True, 12_340_000, None),
    (b"    12.31 kg   ?   G  ", 12_310_000, "kg", False, 12_310_000, None),
    (b"-    0.20 kg       NET", -200_000, "kg", True, None, None),
    (b"-    0.20 kg   ?NET", -200_000, "kg", False, None, None),  # mark and legend adjacent
    (b"    12.34 kg       G  \r\n", 12_340_000, "kg", True, 12_340_000, None),
    # Ranger RC: POL SP SP W*7 SP UN UN SP ST SP NNN
    (b"     12.34 kg   NET", 12_340_000, "kg", True, None, None),
    (b"-    12.34 kg ? NET", -12_340_000, "kg", False, None, None),
    (b"      1.50 lb   B/G", 680_389, "lb", True, 680_389, None),  # 680388.555 mg
    # Ranger RC print-key block lines
    (b"G              12.34 kg  ", 12_340_000, "kg", True, 12_340_000, None),
    (b"N             -10.34 kg ?", -10_340_000, "kg", False, None, None),
    # older balances (Ohaus RS232 interface manual; '*' and '_' there are blanks)
    (b"     192.21 g", 192_210, "g", True, None, None),
    (b"       0.01 g ?", 10, "g", False, None, None),
    (b"       0.01 g   00:00:00", 10, "g", True, None, None),
    (b"     176.30 g ? 00:00:15", 176_300, "g", False, None, None),
    (b"        0.00 g     ", 0, "g", True, None, None),
    (b"       12.73 g    ?", 12_730, "g", False, None, None),
    (b"      0.4500 oz    ", 12_757, "oz", True, None, None),  # 12757.285 mg
    (b"      0.5950 oz   ?", 16_868, "oz", False, None, None),  # 16867.966 mg
    (b"        200 g  ", 200_000, "g", True, None, None),
    (b"       0.211 kg ?", 211_000, "kg", False, None, None),
    (b"       0,211 kg ?", 211_000, "kg", False, None, None),  # decimal comma
    (b"+      1.000 kg", 1_000_000, "kg", True, None, None),
    (b"     -12.50 kg", -12_500_000, "kg", True, None, None),  # sign touching the digits
    (b"   12:07.5 lb:oz ?", 5_655_730, "lb:oz", False, None, None),  # lb:oz layout [U]
    # counting mode
    (b"           3 PCS  ?", None, "PCS", False, None, 3),
    (b"           3 PCS   ", None, "PCS", True, None, 3),
    (b"-         37 PCS  ", None, "PCS", True, None, -37),  # pieces taken off after a tare
]


@pytest.mark.parametrize(("frame", "net_mg", "unit", "stable", "gross_mg", "pieces"), WEIGHTS)
def test_print_lines(
    frame: bytes,
    net_mg: int | None,
    unit: str,
    stable: bool,
    gross_mg: int | None,
    pieces: int | None,
) -> None:
    reading = decode(frame)
    # the legend says gross (G, B/G) or net (NET); a line without one does not say
    net_line = b"NET" in frame or frame.startswith(b"N ")  # legend, or the print block's label
    marked = False if gross_mg is not None else (True if net_line else None)
    assert reading == Reading(
        net_mg, unit, stable, gross_mg=gross_mg, pieces=pieces, raw=frame, net=marked
    )


def test_lb_oz_is_exact() -> None:
    reading = decode(b"   12:07.5 lb:oz ?")
    assert isinstance(reading, Reading)
    assert reading.net_mg == exact_mg("12:07.5", "lb:oz")


@pytest.mark.parametrize(
    ("frame", "ack"),
    [
        (b"SCALE: 1", Ack("SCALE", "A", ("1",), raw=b"SCALE: 1")),
        (
            b"T               2.00 kg",
            Ack("T", "A", ("2.00", "kg"), 2_000_000, b"T               2.00 kg"),
        ),
        (
            b"    1.00 kg       T  ",
            Ack("T", "A", ("1.00", "kg"), 1_000_000, b"    1.00 kg       T  "),
        ),
        (
            b"     207.80 g TOTAL",
            Ack("TOTAL", "A", ("207.80", "g"), 207_800, b"     207.80 g TOTAL"),
        ),
    ],
)
def test_acks(frame: bytes, ack: Ack) -> None:
    assert decode(frame) == ack


@pytest.mark.parametrize(
    ("frame", "unit", "overload"),
    [
        # the display's message where the weight goes (a constructed layout, [U])
        (b"      -OL- kg   B/G", "kg", True),
        (b"      -UL- kg ? NET", "kg", False),
        (b"-OL- g   G  \r\n", "g", True),
        (b"   -UL-", "", False),
        (b"   -OL-     G", "", True),  # a legend, no unit
        (b"   -OL- PCS ?", "PCS", True),
    ],
)
def test_out_of_range_lines(frame: bytes, unit: str, overload: bool) -> None:
    marked = True if b"NET" in frame else (False if b"G" in frame else None)
    assert decode(frame) == Reading(
        None, unit, False, overload=overload, underload=not overload, raw=frame, net=marked
    )
    assert answers(Command.READ, decode(frame))


def test_invalid_command_is_refused() -> None:
    with pytest.raises(ScaleRefused, match="did not recognise"):
        decode(b"ES\r\n")


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\r\n",
        b"ES x",
        b"2.34 kg       G",  # the tail of a cut line
        b".34 kg",
        b"  - 12.0 kg",  # a sign inside the padding
        b"   +   1.000 kg",
        b"   12.34",  # no unit
        b"   12.34 KG",  # Ohaus units are lower case
        b"   12.34 G",  # a legend is not a unit
        b"   12.34 ct",
        b"   12.34 %",
        b"   12.34 kg  G NET",
        b"   12.34 kg ? ?",
        b"   12.34 kg   X",
        b"   12.34 kg   00:00:00 00:00:01",
        b"        0.85 oz     WET WT",  # density mode is not a weight
        b"G     12.34 kg  NET",  # label contradicts legend
        b"   -  3 PCS",  # a sign inside the padding
        b"       3.5 PCS",
        b"           3 PCS  T",
        b"    1,234.5 kg",  # thousands grouping is refused, not guessed
        b"    1.234.5 kg",
        b"    1e3 g",
        b"   12:16.0 lb:oz",  # 16 oz is a pound
        b"   12.5 lb:oz",
        b"   12:07.5 kg",
        b"    12345678901234567 g",
        b"    12.34 kg\xff",
        b"    12.34\tkg",
        b"SCALE: ",
        b"   -OL- kg   T",  # a tare line is not the pan
        b"   -OL- kg TOTAL",
        b"   -OL- KG",
        b"   -OL-kg",
        b"   -OL- kg ? ?",
        b"   -OL- 12.3 kg",
        b"   OL kg",
        b"   -XX- kg",
    ],
)
def test_frame_errors(frame: bytes) -> None:
    with pytest.raises(FrameError):
        decode(frame)


@pytest.mark.parametrize(
    ("command", "reply", "expected"),
    [
        (Command.READ, b"    12.34 kg       G  ", True),
        (Command.READ_STABLE, b"           3 PCS   ", True),
        (Command.TARE, b"-    0.20 kg       NET", True),
        (Command.ZERO, b"    0.00 kg       G  ", True),
        (Command.CLEAR_TARE, b"    0.00 kg       G  ", True),
        (Command.READ, b"     207.80 g TOTAL", False),
        (Command.TARE, b"T               2.00 kg", False),
        (Command.READ, b"SCALE: 1", False),
        (Command.IDENTIFY, b"    12.34 kg       G  ", False),
    ],
)
def test_answers(command: Command, reply: bytes, expected: bool) -> None:
    assert answers(command, decode(reply)) is expected


def test_framer_splits_lines() -> None:
    framer = PROTOCOL.make_framer()
    assert framer.feed(b"    12.34 kg       G  \r\nES\r\n-    0.2") == [
        b"    12.34 kg       G  ",
        b"ES",
    ]
    assert framer.feed(b"0 kg       NET\r\n") == [b"-    0.20 kg       NET"]


# -- fuzzing ---------------------------------------------------------------------------------


@st.composite
def print_lines(draw: st.DrawFn) -> tuple[bytes, Reading, frozenset[int]]:
    """A valid line in one of the documented layouts, its reading, and the byte positions
    whose change may legitimately change the weight (digits, sign places, unit)."""
    places = draw(st.integers(0, 4))
    magnitude = draw(st.integers(0, 10**7))
    negative = magnitude != 0 and draw(st.booleans())
    unit = draw(st.sampled_from(["g", "kg", "lb", "oz"]))
    stable = draw(st.booleans())
    text = f"{Decimal(magnitude).scaleb(-places):f}"
    if draw(st.booleans()):
        text = text.replace(".", ",")
    layout = draw(st.sampled_from(["defender", "rc", "old"]))
    mark = " " if stable else "?"
    legend = draw(st.sampled_from(["G", "NET", "B/G", ""] if layout != "old" else [""]))
    if layout == "defender":
        head = ("-" if negative else " ") + " " + " " * max(0, 7 - len(text))
        tail = " " + f"{unit:<5}" + mark + f"{legend:>3}"
    elif layout == "rc":
        head = ("-" if negative else " ") + "  " + " " * max(0, 7 - len(text))
        tail = f" {unit:>2} {mark} {legend:<3}"
    else:
        signed = ("-" if negative else "") + text
        head = " " * max(1, 12 - len(signed)) + ("-" if negative else "")
        tail = f" {unit}" + ("" if stable else " ?")
    line = (head + text + tail).encode("ascii")
    start = len(head)
    end = start + len(text)
    unit_at = line.index(unit.encode(), end)
    sensitive = frozenset(
        {0, start - 1, end, *range(start, end), *range(unit_at - 1, unit_at + len(unit))}
    )
    value = ("-" if negative else "") + text
    mg = exact_mg(value, unit)
    gross = mg if legend in ("G", "B/G") else None
    marked = {"G": False, "B/G": False, "NET": True}.get(legend)
    return line, Reading(mg, unit, stable, gross_mg=gross, raw=line, net=marked), sensitive


@given(print_lines())
def test_fuzz_valid_lines_are_exact(case: tuple[bytes, Reading, frozenset[int]]) -> None:
    line, expected, _ = case
    assert decode(line) == expected
    frames = PROTOCOL.make_framer().feed(line + b"\r\n" + line + b"\r\n")
    assert [decode(f) for f in frames] == [expected, expected]


@given(print_lines(), st.data())
def test_fuzz_single_byte_changes(
    case: tuple[bytes, Reading, frozenset[int]], data: st.DataObject
) -> None:
    line, expected, sensitive = case
    where = data.draw(st.integers(0, len(line) - 1))
    byte = data.draw(st.sampled_from(LIKELY) | st.integers(0, 255))
    changed = flip(line, where, byte)
    reply = decoded(decode, changed)
    assert_faithful(reply, changed)
    if where not in sensitive and isinstance(reply, Reading) and reply.net_mg is not None:
        # a change away from the digits, the sign places and the unit never moves the weight
        assert (reply.net_mg, reply.unit) == (expected.net_mg, expected.unit)


@given(print_lines(), st.data())
def test_fuzz_truncated_lines(
    case: tuple[bytes, Reading, frozenset[int]], data: st.DataObject
) -> None:
    line, expected, _ = case
    cut = data.draw(st.integers(0, len(line)))
    head, tail = line[:cut], line[cut:]
    framer = PROTOCOL.make_framer()
    assert framer.feed(head) == []  # no terminator, no frame: "12.3" never passes for 12.34
    for part in (head, tail):
        reply = decoded(decode, part)
        assert_faithful(reply, part)
        if isinstance(reply, Reading) and reply.net_mg is not None:
            # the digits come whole or not at all; only the polarity column can be cut off
            # (a documented limit of a sign separated from the digits)
            assert abs(reply.net_mg) == abs(expected.net_mg or 0)
            assert reply.unit == expected.unit
            if part is head:
                assert reply.net_mg == expected.net_mg


@given(st.text(alphabet=" -+0123456789.,:?kglbozPCSGNETB/TALES", max_size=30))
def test_fuzz_line_like_text(text: str) -> None:
    data = text.encode("ascii")
    reply = decoded(decode, data)
    assert_faithful(reply, data)
    if reply is not None:
        assert reply.raw == data


def test_print_lines_from_the_defender_manuals() -> None:
    """Defender 3000 §5.2 (EN-35): polarity 1, blank 1, weight 7, blank 1, unit 5, stability
    1, legend 3 (G gross, NET net, T tare). Defender 5000 (EN-51): "-" before the digits, unit
    right-justified in 5, legend G/N/T/PT, a check status; lb:oz as 4 + lb + 7 + oz."""
    net = decode(b"-" + b" " + b"  12.34" + b" " + b"kg   " + b"?" + b"NET" + b"\r\n")
    assert isinstance(net, Reading)
    assert (net.net_mg, net.stable, net.net, net.gross_mg) == (-12_340_000, False, True, None)
    gross = decode(b" " + b" " + b"  12.34" + b" " + b"kg   " + b" " + b"G  " + b"\r\n")
    assert isinstance(gross, Reading) and gross.net is False and gross.gross_mg == 12_340_000
    tare = decode(b"    1.00    kg   T\r\n")
    assert isinstance(tare, Ack) and tare.mass_mg == 1_000_000
    preset = decode(b"    1.00    kg   PT\r\n")
    assert isinstance(preset, Ack) and preset.mass_mg == 1_000_000
    checked = decode(b"     -12.50    kg ? N  Over\r\n")
    assert isinstance(checked, Reading) and checked.net is True and checked.net_mg == -12_500_000
    # lb:oz, 28 characters: Weight1 4, lb, Weight2 7, oz, stability, G/N, message 5
    line = b"  12 lb    7.50 oz ? N      "
    assert len(line) == 28
    pounds = decode(line + b"\r\n")
    assert isinstance(pounds, Reading) and pounds.unit == "lb:oz"
    assert pounds.net_mg == exact_mg("12:07.5", "lb:oz") and pounds.net is True
    assert not pounds.stable
