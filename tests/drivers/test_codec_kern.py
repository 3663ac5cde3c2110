"""Kern codecs: s/w/t frames, TM indicator strings, KCP through the MT-SICS codec, fuzzing."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.base import FrameError, Reading, ScaleError, ScaleRefused
from drivers.scale import Ack, Command, Reply, mtsics
from drivers.scale.kern import (
    PROTOCOL,
    PROTOCOL_KCP,
    PROTOCOL_TM,
    answers,
    decode,
    decode_tm,
    encode,
    encode_tm,
)
from tests.support.codec_oracle import LIKELY, assert_faithful, decoded, exact_mg, flip


def test_protocol_shapes() -> None:
    assert (PROTOCOL.name, PROTOCOL_TM.name, PROTOCOL_KCP.name) == ("kern", "kern-tm", "kern-kcp")
    for protocol in (PROTOCOL, PROTOCOL_TM, PROTOCOL_KCP):
        assert not protocol.streaming
        link = protocol.link
        assert (link.baudrate, link.bytesize, link.parity, link.stopbits) == (9600, 8, "N", 1)
    assert PROTOCOL.decode is decode
    assert PROTOCOL_TM.decode is decode_tm
    # KCP: the MT-SICS bytes, plus the JZ/JG/JS adjustment and no C2
    assert PROTOCOL_KCP.decode(b"S S      1.250 kg") == mtsics.decode(b"S S      1.250 kg")
    for command in Command:
        if command in (Command.ADJUST_ZERO, Command.ADJUST_SPAN, Command.ADJUST_SAVE):
            continue
        if command is Command.ADJUST_EXTERNAL:
            assert PROTOCOL_KCP.request(command) is None
        else:
            assert PROTOCOL_KCP.encode(command) == mtsics.encode(command)


def test_kcp_adjustment_from_the_manual() -> None:
    """KDP manual KDP-BA_IA-e-1710 §10.1: "JZ" with the empty pan, answered "JZ A"; "JG" with
    the adjustment weight on, answered "JG A"; "JS" saves."""
    assert [
        PROTOCOL_KCP.encode(c)
        for c in (Command.ADJUST_ZERO, Command.ADJUST_SPAN, Command.ADJUST_SAVE)
    ] == [b"JZ\r\n", b"JG\r\n", b"JS\r\n"]
    for ident, command in (("JZ", Command.ADJUST_ZERO), ("JG", Command.ADJUST_SPAN)):
        reply = PROTOCOL_KCP.decode(f"{ident} A\r\n".encode())
        assert reply == Ack(ident, "A", raw=f"{ident} A\r\n".encode())
        assert PROTOCOL_KCP.answers(command, reply)
        assert not PROTOCOL_KCP.answers(Command.ADJUST_SAVE, reply)
    with pytest.raises(mtsics.SicsRefused) as refused:
        PROTOCOL_KCP.decode(b"JG I\r\n")
    assert refused.value.status == "I"
    with pytest.raises(FrameError):
        PROTOCOL_KCP.decode(b"JG Q\r\n")


@pytest.mark.parametrize(
    ("command", "tws", "tm"),
    [
        (Command.READ, b"w", b"W"),
        (Command.READ_STABLE, b"s", b"S"),
        (Command.TARE, b"tw", b"TW"),
        (Command.ZERO, None, b"ZW"),
        (Command.CLEAR_TARE, None, None),
        (Command.RESET, None, None),
        (Command.IDENTIFY, None, None),
    ],
)
def test_encode(command: Command, tws: bytes | None, tm: bytes | None) -> None:
    for enc, expected in ((encode, tws), (encode_tm, tm)):
        if expected is None:
            with pytest.raises(ScaleError, match="not supported by this protocol"):
                enc(command)
        else:
            assert enc(command) == expected
            assert b"\r" not in expected and b"\n" not in expected  # no CR LF after these


def test_kcp_speaks_mt_sics() -> None:
    assert PROTOCOL_KCP.encode(Command.READ) == b"SI\r\n"
    assert PROTOCOL_KCP.encode(Command.CLEAR_TARE) == b"TAC\r\n"
    reading = PROTOCOL_KCP.decode(b"S S      1.250 kg")
    assert reading == Reading(1_250_000, "kg", True, raw=b"S S      1.250 kg")
    assert PROTOCOL_KCP.answers(Command.ZERO, PROTOCOL_KCP.decode(b"Z A"))
    with pytest.raises(ScaleRefused):
        PROTOCOL_KCP.decode(b"S I")


TWS = [
    # (frame, net_mg, unit, stable, pieces)
    (b"          0.0 g  ", 0, "g", True, None),  # FKB manual's stable example
    (b"       12.50 g  ", 12_500, "g", True, None),  # KDE-T layout: M S N*10 B U*3
    (b"       12.50 kg ", 12_500_000, "kg", True, None),
    (b" -     12.50 kg \r\n", -12_500_000, "kg", True, None),  # sign column
    (b"M-     12.50 kg ", -12_500_000, "kg", True, None),
    (b"M      12.50 kg ", 12_500_000, "kg", True, None),  # "M" is a mark, not a sign
    (b"-      12.50 kg ", -12_500_000, "kg", True, None),  # FKB: one column off
    (b"       -12.5 g  ", -12_500, "g", True, None),  # sign touching the digits
    (b"     1,2500 lb ", 566_990, "lb", True, None),  # 566990.4625 mg
    (b"      3.000 oz ", 85_049, "oz", True, None),  # 85048.569375 mg
    (b"      5.000 ct ", 1_000, "ct", True, None),
    (b"         10 pcs", None, "pcs", True, 10),
    (b" -        37 pcs", None, "pcs", True, -37),  # pieces taken off after a tare
    # unstable: no unit, so no mass [V]
    (b"          0.0 ", None, "", False, None),
    (b"       12.50    ", None, "", False, None),
    (b" -     12.50    ", None, "", False, None),
]


@pytest.mark.parametrize(("frame", "net_mg", "unit", "stable", "pieces"), TWS)
def test_tws_frames(
    frame: bytes, net_mg: int | None, unit: str, stable: bool, pieces: int | None
) -> None:
    assert decode(frame) == Reading(net_mg, unit, stable, pieces=pieces, raw=frame)


TM = [
    # (frame, net_mg, unit, stable, gross_mg, pieces)
    (b"ST,GS 1.000KG", 1_000_000, "KG", True, 1_000_000, None),  # KFB-TM manual
    (b"US,GS 1.342KG", 1_342_000, "KG", False, 1_342_000, None),
    (b"ST,NT -0.500KG", -500_000, "KG", True, None, None),
    (
        b"ST,GS,+01234567  oz",
        exact_mg("1234567", "oz"),
        "oz",
        True,
        exact_mg("1234567", "oz"),
        None,
    ),
    (
        b"US,GS,+01234.56  lb",
        exact_mg("1234.56", "lb"),
        "lb",
        False,
        exact_mg("1234.56", "lb"),
        None,
    ),
    (b"ST,NT,-0012.345  kg", -12_345_000, "kg", True, None, None),
    (b"ST,G,   1.000,kg", 1_000_000, "kg", True, 1_000_000, None),  # GAB
    (b"US,N,-  0.500,kg\n", -500_000, "kg", False, None, None),
    (b"ST,NT,+0000010  pcs", None, "pcs", True, None, 10),
    (b"10PCS", None, "PCS", True, None, 10),  # KFB-TM P in counting
]


@pytest.mark.parametrize(("frame", "net_mg", "unit", "stable", "gross_mg", "pieces"), TM)
def test_tm_frames(
    frame: bytes,
    net_mg: int | None,
    unit: str,
    stable: bool,
    gross_mg: int | None,
    pieces: int | None,
) -> None:
    marked = None if pieces is not None else gross_mg is None  # the kind: GS/G or NT/N
    assert decode_tm(frame) == Reading(
        net_mg, unit, stable, gross_mg=gross_mg, pieces=pieces, raw=frame, net=marked
    )


def test_tm_tare_is_an_ack() -> None:
    frame = b"ST,TR,+012.3456  kg"
    assert decode_tm(frame) == Ack("TR", "ST", ("+012.3456", "kg"), 12_345_600, frame)


@pytest.mark.parametrize(
    ("frame", "overload", "underload"),
    [
        (b"OL,GS,+            ", True, False),  # KXS-TM "Plus OL"
        (b"OL,GS,-            ", False, True),  # "Minus OL"
        (b"=Overload=", True, False),  # s/w/t family [P]
        (b"  =Underload=  ", False, True),  # [U]
    ],
)
def test_out_of_range(frame: bytes, overload: bool, underload: bool) -> None:
    tm = frame.startswith(b"OL")
    reading = (decode_tm if tm else decode)(frame)
    marked = False if tm else None  # "OL,GS": still the gross
    assert reading == Reading(
        None, "", False, overload=overload, underload=underload, raw=frame, net=marked
    )


@pytest.mark.parametrize("frame", [b"           Error", b"       Error\r\n", b"Error"])
def test_error_frame_is_a_refusal(frame: bytes) -> None:
    with pytest.raises(ScaleRefused, match="fault"):
        decode(frame)


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"Error 1",
        b"ERROR",
        b"12.50 kg ",  # the tail of a cut frame (no mark/sign columns)
        b"2.50 kg",
        b"  -    12.50 kg ",  # a sign inside the padding
        b"M-M    12.50 kg ",
        b" --    12.50 kg ",
        b"  M    12.50 kg ",
        b"       12.50 %  ",
        b"       12.50 dwt",
        b"       12.50 kgs",
        b"  -    3 pcs",  # a sign inside the padding
        b"       1.5 pcs",
        b"     1,234.5 kg",
        b"       12.50 kg x",
        b"       12.50 kg\xff",
        b"       12.50\tkg",
        b"=Overload",
        b"ST,GS",
        b"ST,GS 1.000",  # no unit
        b"ST,XX 1.000KG",
        b"XX,GS 1.000KG",
        b"OL,GS,+ 12.0 kg",  # an OL frame has no value
        b"OL,GS,",
        b"ST,GS 1.000%",
        b"ST,GS 1.000KGS",
        b"ST,NT,+1.23.456tl.g",
        b"ST,GS 1,000.5KG",
        b"**********************",
    ],
)
def test_frame_errors(frame: bytes) -> None:
    with pytest.raises(FrameError):
        decode(frame)
    with pytest.raises(FrameError):
        decode_tm(frame)


@pytest.mark.parametrize(
    ("frame", "wrong"),
    [
        (b"US,GS 1.342KG", decode),
        (b" 1.342KG", decode_tm),  # its tail: no status, so no stability either
        (b"       12.50 g  ", decode_tm),
        (b"10PCS", decode),
        (b"=Overload=", decode_tm),
        (b"           Error", decode_tm),
    ],
)
def test_families_are_kept_apart(frame: bytes, wrong: object) -> None:
    assert callable(wrong)
    with pytest.raises(FrameError):
        wrong(frame)


@pytest.mark.parametrize(
    ("command", "reply", "expected"),
    [
        (Command.READ, b"       12.50 kg ", True),
        (Command.READ, b"       12.50    ", True),  # unstable, no mass: still the answer
        (Command.READ_STABLE, b"ST,GS 1.000KG", True),
        (Command.TARE, b"       0.00 kg  ", True),
        (Command.ZERO, b"ST,GS 0.000KG", True),
        (Command.TARE, b"ST,TR,+012.3456  kg", False),
        (Command.IDENTIFY, b"ST,GS 1.000KG", False),
    ],
)
def test_answers(command: Command, reply: bytes, expected: bool) -> None:
    decoder = decode_tm if reply.startswith((b"ST", b"US")) else decode
    assert answers(command, decoder(reply)) is expected


def test_framer_takes_cr_lf_or_lf_alone() -> None:
    framer = PROTOCOL.make_framer()
    assert framer.feed(b"       12.50 g  \r\nST,G,   1.000,kg\nST,GS 1.") == [
        b"       12.50 g  ",
        b"ST,G,   1.000,kg",
    ]
    assert framer.feed(b"000KG\r\n") == [b"ST,GS 1.000KG"]


# -- fuzzing ---------------------------------------------------------------------------------


def decoder_for(frame: bytes) -> Callable[[bytes], Reply]:
    return decode_tm if frame.startswith((b"ST", b"US")) else decode


@st.composite
def frames(draw: st.DrawFn) -> tuple[bytes, Reading, frozenset[int]]:
    """A stable s/w/t frame or a TM string, its reading, and the positions whose change may
    legitimately change the weight (digits, sign places, unit)."""
    places = draw(st.integers(0, 4))
    magnitude = draw(st.integers(0, 10**7))
    negative = magnitude != 0 and draw(st.booleans())
    text = f"{Decimal(magnitude).scaleb(-places):f}"
    if draw(st.booleans()):
        text = text.replace(".", ",")
    family = draw(st.sampled_from(["tws", "tm", "gab", "kxs"]))
    stable = True
    gross = False
    polarity = 1
    if family == "tws":
        unit = draw(st.sampled_from(["g", "kg", "lb", "oz", "ct"]))
        mark = draw(st.sampled_from([" ", "M"]))
        if draw(st.booleans()):
            head = mark + ("-" if negative else " ") + " " * max(0, 10 - len(text))
        else:
            head = mark + " " + " " * max(0, 10 - len(text) - negative) + "-" * negative
        line = f"{head}{text} {unit:<3}"
    else:
        unit = draw(st.sampled_from(["kg", "KG", "lb", "oz", "g"]))
        status = draw(st.sampled_from(["ST", "US"]))
        kind = draw(st.sampled_from(["GS", "NT", "GW", "NW"]))
        stable = status == "ST"
        gross = kind.startswith("G")
        sign = "-" if negative else draw(st.sampled_from(["", "+"]))
        if family == "tm":
            head = f"{status},{kind} {sign}"
            line = f"{head}{text}{unit}"
        elif family == "gab":
            kind = kind[0]
            polarity = len(f"{status},{kind},")
            head = f"{status},{kind},{sign or ' '}" + " " * max(0, 7 - len(text))
            line = f"{head}{text},{unit}"
        else:
            head = f"{status},{kind},{sign or '+'}"
            line = f"{head}{text}  {unit}"
    frame = line.encode("ascii")
    start = len(head)
    end = start + len(text)
    unit_at = frame.index(unit.encode(), end)
    sensitive = frozenset(
        {
            0,
            1,
            polarity,
            start - 1,
            end,
            *range(start, end),
            *range(unit_at - 1, unit_at + len(unit)),
        }
    )
    mg = exact_mg(("-" if negative else "") + text, unit)
    marked = None if family == "tws" else not gross
    expected = Reading(mg, unit, stable, gross_mg=mg if gross else None, raw=frame, net=marked)
    return frame, expected, sensitive


@given(frames())
def test_fuzz_valid_frames_are_exact(case: tuple[bytes, Reading, frozenset[int]]) -> None:
    frame, expected, _ = case
    dec = decoder_for(frame)
    assert dec(frame) == expected
    got = PROTOCOL.make_framer().feed(frame + b"\r\n" + frame + b"\n")
    assert [dec(f) for f in got] == [expected, expected]


@given(frames(), st.data())
def test_fuzz_single_byte_changes(
    case: tuple[bytes, Reading, frozenset[int]], data: st.DataObject
) -> None:
    frame, expected, sensitive = case
    where = data.draw(st.integers(0, len(frame) - 1))
    changed = flip(frame, where, data.draw(st.sampled_from(LIKELY) | st.integers(0, 255)))
    reply = decoded(decoder_for(frame), changed)
    assert_faithful(reply, changed)
    if where not in sensitive and isinstance(reply, Reading) and reply.net_mg is not None:
        assert (reply.net_mg, reply.unit) == (expected.net_mg, expected.unit)


@given(frames(), st.data())
def test_fuzz_truncated_frames(
    case: tuple[bytes, Reading, frozenset[int]], data: st.DataObject
) -> None:
    frame, expected, _ = case
    cut = data.draw(st.integers(0, len(frame)))
    head, tail = frame[:cut], frame[cut:]
    assert PROTOCOL.make_framer().feed(head) == []
    for part in (head, tail):
        reply = decoded(decoder_for(frame), part)
        assert_faithful(reply, part)
        if isinstance(reply, Reading) and reply.net_mg is not None:
            # digits come whole or not at all; only a sign column apart from them can go
            assert abs(reply.net_mg) == abs(expected.net_mg or 0)
            assert reply.unit == expected.unit
            if part is head:
                assert reply.net_mg == expected.net_mg


@given(st.text(alphabet=" ,-+0123456789.STUGNOLRWkgKGlbozpcsM=Error", max_size=30))
def test_fuzz_frame_like_text(text: str) -> None:
    data = text.encode("ascii")
    for dec in (decode, decode_tm):
        reply = decoded(dec, data)
        assert_faithful(reply, data)
        if reply is not None:
            assert reply.raw == data
