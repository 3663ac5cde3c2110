"""SMA SCP-0499 codec: reference frames, statuses, units (lb, l/o), the LF…CR framer, fuzzing."""

from __future__ import annotations

import contextlib
import re
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.base import MG_PER_UNIT, FrameError, Reading, ScaleError, ScaleRefused
from drivers.scale import Ack, Command, get_protocol
from drivers.scale.sma import PROTOCOL, LfCrFramer, SmaRefused, answers, decode, encode


def exact_mg(value: str, unit: str) -> int:
    """Independent oracle: exact rational arithmetic, banker's rounding (as the codec)."""
    value = value.replace(" ", "").replace(",", ".")
    if unit.lower() in ("l/o", "lb:oz"):
        sign = -1 if value.startswith("-") else 1
        pounds, ounces = value.lstrip("+-").split(":")
        total = Fraction(pounds) * Fraction("453592.37") + Fraction(ounces) * Fraction(
            "28349.523125"
        )
        return sign * round(total)
    return round(Fraction(value) * Fraction(MG_PER_UNIT[unit.lower()]))


def frame(status: str, mode: str, motion: str, field: str, unit: str, rng: str = "1") -> bytes:
    return f"\n{status}{rng}{mode}{motion} {field:>10}{unit:<3}\r".encode()


def test_registry_and_link() -> None:
    assert get_protocol("sma") is PROTOCOL
    assert not PROTOCOL.streaming
    assert (PROTOCOL.link.baudrate, PROTOCOL.link.bytesize, PROTOCOL.link.parity) == (9600, 8, "N")


@pytest.mark.parametrize(
    ("command", "request_bytes"),
    [
        (Command.READ, b"\nW\r"),
        (Command.ZERO, b"\nZ\r"),
        (Command.TARE, b"\nT\r"),
        (Command.CLEAR_TARE, b"\nC\r"),
    ],
)
def test_encode(command: Command, request_bytes: bytes) -> None:
    assert encode(command) == request_bytes


@pytest.mark.parametrize("command", [Command.READ_STABLE, Command.RESET, Command.IDENTIFY])
def test_unsupported_commands(command: Command) -> None:
    with pytest.raises(ScaleError, match="not supported by this protocol"):
        encode(command)


# (frame, net, gross, unit, stable, overload, underload): the reference's §3.3 first
READINGS = [
    (b"\n 1G       1.250kg \r", 1_250_000, 1_250_000, "kg", True, False, False),
    (b"\n 1GM      1.255kg \r", 1_255_000, 1_255_000, "kg", False, False, False),
    (b"\nZ1G       0.000kg \r", 0, 0, "kg", True, False, False),
    (b"\nO1G      16.005kg \r", None, None, "kg", True, True, False),
    # emupos pads the unit with "_" as the published tables do
    (b"\n 1G       1.250kg_\r", 1_250_000, 1_250_000, "kg", True, False, False),
    (b"\n 1N       1.250kg_\r", 1_250_000, None, "kg", True, False, False),
    (b"\n 1g      1.2500kg_\r", 1_250_000, 1_250_000, "kg", True, False, False),  # high res
    (b"\n 1nM     1.2500kg_\r", 1_250_000, None, "kg", False, False, False),
    (
        b"\n 1G        2.76lb_\r",
        exact_mg("2.76", "lb"),
        exact_mg("2.76", "lb"),
        "lb",
        True,
        False,
        False,
    ),
    (b"\n 1G       2.756lb \r", 1_250_101, 1_250_101, "lb", True, False, False),
    (
        frame(" ", "G", " ", "44.00", "oz"),
        exact_mg("44", "oz"),
        exact_mg("44", "oz"),
        "oz",
        True,
        False,
        False,
    ),
    (b"\n 1G        1250g__\r", 1_250_000, 1_250_000, "g", True, False, False),
    (b"\n 1G        1250  g\r", 1_250_000, 1_250_000, "g", True, False, False),  # right-aligned
    (b"\n 1G       1,250kg \r", 1_250_000, 1_250_000, "kg", True, False, False),  # decimal comma
    (b"\n 1N      -0.200kg \r", -200_000, None, "kg", True, False, False),
    (b"\n 1G      +1.250kg \r", 1_250_000, 1_250_000, "kg", True, False, False),
    (frame(" ", "G", " ", "1.250", "t"), 1_250_000_000, 1_250_000_000, "t", True, False, False),
    (b"\n 2G       1.250KG \r", 1_250_000, 1_250_000, "KG", True, False, False),  # range 2
    (b"\n 1G X     1.250kg \r", 1_250_000, 1_250_000, "kg", True, False, False),  # custom flag
    # pounds and ounces; the field layout is [U], both separators are read
    (frame(" ", "G", " ", "12:07.50", "l/o"), 5_655_730, 5_655_730, "l/o", True, False, False),
    (frame(" ", "G", " ", "12 07.5", "l/o"), 5_655_730, 5_655_730, "l/o", True, False, False),
    (frame(" ", "G", " ", "-0:08.00", "l/o"), -226_796, -226_796, "l/o", True, False, False),
    # out of range: Fairbanks "O = +weight, U = -weight"; dashes are accepted too
    (b"\nU1G      -0.200kg \r", None, None, "kg", True, False, True),
    (b"\nU1GM ----------kg \r", None, None, "kg", False, False, True),
    (frame("O", "N", " ", "-" * 10, "lb"), None, None, "lb", True, True, False),
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
    reading = decode(raw)
    marked = chr(raw[3]) in "Nn"  # the G/N column: the reading says net or gross either way
    assert reading == Reading(
        net, unit, stable, gross_mg=gross, overload=over, underload=under, raw=raw, net=marked
    )


def test_lb_is_exact() -> None:
    reading = decode(b"\n 1G       2.756lb \r")
    assert isinstance(reading, Reading)
    assert reading.net_mg == round(Fraction("2.756") * Fraction("453592.37"))


def test_tare_report() -> None:
    raw = b"\n 1T       0.200kg \r"  # reply to M [V: Fairbanks]
    assert decode(raw) == Ack("M", "T", ("0.200", "kg"), mass_mg=200_000, raw=raw)


@pytest.mark.parametrize(
    ("raw", "status", "words"),
    [
        (b"\nE1GM ----------kg \r", "E", "zero error"),  # zero refused in motion (§3.3)
        (b"\nI1G  ----------kg \r", "I", "initial-zero"),
        (b"\nT1G  ----------kg_\r", "T", "tare error"),
        (b"\nE1G       1.250kg \r", "E", "zero error"),  # the error wins over the value
        (b"\ne1G       1.250kg \r", "e", "not displayed"),  # Cardinal
        (b"\n?\r", "?", "did not understand"),
        (b"\n!\r", "!", "communication error"),
    ],
)
def test_refusals(raw: bytes, status: str, words: str) -> None:
    with pytest.raises(ScaleRefused, match=words) as info:
        decode(raw)
    assert isinstance(info.value, SmaRefused) and info.value.status == status


def test_dialogue_lines() -> None:
    assert decode(b"\nTYP:S\r") == Ack("TYP", "A", ("S",), raw=b"\nTYP:S\r")
    assert decode(b"\nEND:\r") == Ack("END", "A", ("",), raw=b"\nEND:\r")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\n\r",
        b"\n 1G       1.250kg ",  # truncated: no CR
        b" 1G       1.250kg \r",  # no LF
        b"\n 1G       1.250kg\r",  # 17 characters
        b"\n 1G       1.250kg  \r",
        b"\nX1G       1.250kg \r",  # unknown status
        b"\n 0G       1.250kg \r",  # range 0
        b"\n 1X       1.250kg \r",
        b"\n 1GX      1.250kg \r",  # motion must be M or space
        b"\n 1G       1.2.0kg \r",
        b"\n 1G      1,250.0kg\r",
        b"\n 1G ----------kg \r",  # dashes without an error status
        b"\nZ1G ----------kg \r",
        frame("O", "G", " ", "1.2x0", "kg"),
        frame(" ", "G", " ", "1.250", "   "),  # no unit
        frame(" ", "G", " ", "1.250", "k g"),
        frame(" ", "G", " ", "1.250", "pcs"),  # not a mass
        frame(" ", "G", " ", "1.250", "dwt"),
        frame(" ", "G", " ", "1.250", "ton"),  # short or long ton: refused rather than guessed
        frame(" ", "G", " ", "12:17.00", "l/o"),  # 17 oz
        frame(" ", "G", " ", "12.07", "l/o"),
        frame(" ", "G", " ", "12:07.5", "lb"),
        b"\n 1G       1.250kg \x00\r",
        b"\n 1G     \xb51.250kg \r",
        b"\n?\r\x03",
    ],
)
def test_frame_errors(raw: bytes) -> None:
    with pytest.raises(FrameError):
        decode(raw)


def test_parity_bit_is_ignored() -> None:
    for raw, *_ in READINGS:
        parity = bytes(b | 0x80 if bin(b).count("1") % 2 else b for b in raw)
        reading = decode(parity)
        assert isinstance(reading, Reading)
        assert reading.net_mg == decode(raw).net_mg  # type: ignore[union-attr]


def test_answers() -> None:
    weight = decode(READINGS[0][0])
    for command in (Command.READ, Command.ZERO, Command.TARE, Command.CLEAR_TARE):
        assert answers(command, weight)
    assert not answers(Command.READ, decode(b"\n 1T       0.200kg \r"))
    assert not answers(Command.IDENTIFY, weight)


# -- the framer ------------------------------------------------------------------------------

FRAMES = [raw for raw, *_ in READINGS] + [b"\n?\r", b"\nTYP:S\r"]


def test_framer_glued_frames() -> None:
    framer = LfCrFramer()
    assert framer.feed(b"".join(FRAMES)) == FRAMES
    assert framer.dropped == 0


def test_framer_resyncs_on_lf() -> None:
    framer = LfCrFramer()
    stream = b"kg \r" + FRAMES[0] + b"\x00\xff" + b"\n 1G    " + FRAMES[1] + b"\n 1G"
    assert framer.feed(stream) == FRAMES[:2]
    assert framer.dropped == len(b"kg \r\x00\xff\n 1G    ")
    assert framer.pending == b"\n 1G"
    framer.reset()
    assert framer.pending == b""


def test_framer_drops_overlong_frames() -> None:
    assert LfCrFramer().feed(b"\n" + b"x" * 100 + b"\r" + FRAMES[0]) == [FRAMES[0]]


def test_framer_split_at_each_position() -> None:
    stream = b"".join(FRAMES[:6])
    for cut in range(len(stream) + 1):
        framer = LfCrFramer()
        assert framer.feed(stream[:cut]) + framer.feed(stream[cut:]) == FRAMES[:6]


# -- fuzzing ---------------------------------------------------------------------------------

UNITS = ["kg", "g", "lb", "oz", "t", "KG", "LB", "ozt", "ct"]


@st.composite
def weight_frames(draw: st.DrawFn) -> tuple[bytes, int, str]:
    places = draw(st.integers(0, 4))
    count = draw(st.integers(-(10**7), 10**8))
    text = str(count) if places == 0 else _fixed(count, places)
    if draw(st.booleans()):
        text = text.replace(".", ",")
    unit = draw(st.sampled_from(UNITS))
    pad = draw(st.sampled_from([" ", "_"]))
    mode, motion = draw(st.sampled_from("GNgn")), draw(st.sampled_from(" M"))
    raw = frame(draw(st.sampled_from(" Z")), mode, motion, text, unit.ljust(3, pad))
    return raw, exact_mg(text, unit), unit


def _fixed(count: int, places: int) -> str:
    sign = "-" if count < 0 else ""
    digits = f"{abs(count):0{places + 1}d}"
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


@given(weight_frames())
def test_fuzz_valid_weights_are_exact(case: tuple[bytes, int, str]) -> None:
    raw, mg, unit = case
    reading = decode(raw)
    assert isinstance(reading, Reading)
    assert (reading.net_mg, reading.unit) == (mg, unit)
    assert LfCrFramer().feed(b"\r" + raw + raw) == [raw, raw]


@given(st.text(alphabet=" \n\r1GNTgnMZOUEI-.,0123456789kglbo/_", max_size=30))
def test_fuzz_frame_like_text(text: str) -> None:
    data = text.encode("ascii")
    with contextlib.suppress(ScaleError):
        assert decode(data).raw == data


@given(st.sampled_from(FRAMES), st.data())
def test_fuzz_truncated_frames(raw: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(FrameError):
        decode(raw[:cut])
    assert LfCrFramer().feed(raw[:cut]) == []


_FIELDS = re.compile(rb"\n([ ZOU])[1-9]([GNgn])([ M]).(.{10})(.{3})\r")


@given(st.sampled_from(FRAMES[:22]), st.data())
def test_fuzz_single_byte_flips(raw: bytes, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(raw) - 1))
    mask = data.draw(st.integers(1, 255))
    flipped = bytearray(raw)
    flipped[index] ^= mask
    try:
        reply = decode(bytes(flipped))
    except ScaleError:
        return
    # no checksum in SMA: what decodes must say exactly what its (7-bit) bytes say
    masked = bytes(b & 0x7F for b in flipped)
    match = _FIELDS.fullmatch(masked)
    assert match is not None and isinstance(reply, Reading)
    status, mode, motion, field, unit = (g.decode() for g in match.groups())
    unit = unit.strip("_ ")
    assert reply.unit == unit
    assert reply.stable is (motion == " ")
    assert (reply.overload, reply.underload) == (status == "O", status == "U")
    if status in "OU":
        assert reply.net_mg is None
        return
    value = field.strip()
    if unit.lower() == "l/o":  # the codec reads "L/o" too (a flipped case bit)
        value = re.sub(r"(\d) (\d)", r"\1:\2", value)
    assert reply.net_mg == exact_mg(value, unit)
    assert (reply.gross_mg is not None) is (mode in "Gg")


def test_gross_net_column_from_the_standard() -> None:
    """SMA SCP-0499 reply field <n>: ``G`` gross, ``N`` net, ``g``/``n`` the same in high
    resolution (Fairbanks FB2550 appendix III, azmanual.top/manuals/347098 p. 180; Cardinal 190
    manual p. 124). A net frame carries no tare: the reading's ``net`` flag is its only trace."""
    net = decode(b"\n 1N       1.250kg \r")
    assert isinstance(net, Reading)
    assert (net.net, net.net_mg, net.gross_mg, net.tare_mg) == (True, 1_250_000, None, None)
    moving_net = decode(b"\n 1NM      1.255kg \r")
    assert isinstance(moving_net, Reading) and moving_net.net is True and not moving_net.stable
    high = decode(b"\n 1n      1.2500kg \r")
    assert isinstance(high, Reading) and high.net is True
    gross = decode(b"\n 1G       1.250kg \r")
    assert isinstance(gross, Reading) and gross.net is False and gross.gross_mg == 1_250_000
    over_net = decode(b"\nO1N  ----------kg \r")
    assert isinstance(over_net, Reading) and over_net.overload and over_net.net is True


def test_replies_from_the_sartorius_pr5220_manual() -> None:
    """SMA worked examples of the Sartorius PR 5220 manual EN-130 (and Fairbanks PR 5410
    §5.4.1): ``W`` gross 5.025 lb, ``W`` net 100000 lb, ``H`` high-resolution gross 5.0025 lb,
    ``Z`` centre of zero; the unit padded with a blank."""
    raw = frame(" ", "G", " ", "5.025", "lb ")
    assert raw == b"\n 1G       5.025lb \r"  # 10-character weight, unit and its blank
    gross = decode(raw)
    assert gross == Reading(
        exact_mg("5.025", "lb"), "lb", True, gross_mg=exact_mg("5.025", "lb"), raw=raw, net=False
    )
    net = decode(frame(" ", "N", " ", "100000", "lb "))
    assert isinstance(net, Reading) and net.net is True
    assert net.net_mg == exact_mg("100000", "lb")
    high = decode(frame(" ", "g", " ", "5.0025", "lb "))
    assert isinstance(high, Reading) and high.net is False
    assert high.net_mg == exact_mg("5.0025", "lb")
    zero = decode(frame("Z", "G", " ", "0.000", "lb "))
    assert isinstance(zero, Reading) and zero.net_mg == 0 and zero.stable
