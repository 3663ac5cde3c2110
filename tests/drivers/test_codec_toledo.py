"""Toledo continuous output: reference frames, checksum and fixed bits, the STX framer, fuzzing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.base import FrameError, Reading, ScaleError
from drivers.scale import Command, Reply, get_protocol
from drivers.scale.toledo_continuous import (
    PROTOCOL,
    StxFramer,
    answers,
    checksum_of,
    decode,
    encode,
    encode_frame,
)

# The five example frames of the reference (§2.1), with what they mean.
GROSS_12_34 = b"\x02,0 001234000000\r+"
NET_5_MOTION = b"\x02,9 000500000125\r\x1f"
GROSS_MINUS_0_20 = b"\x02,2 000020000000\r1"
OUT_OF_RANGE = b"\x02,4 000000000000\r1"
LB_100_5 = b"\x02;  001005000000\r0"
REFERENCE = [GROSS_12_34, NET_5_MOTION, GROSS_MINUS_0_20, OUT_OF_RANGE, LB_100_5]
LB_MG = 45_586_033  # 100.5 lb = 45586033.185 mg


def values(reading: Reply) -> tuple[object, ...]:
    """A reading without its raw bytes."""
    assert isinstance(reading, Reading)
    return (
        reading.net_mg,
        reading.gross_mg,
        reading.tare_mg,
        reading.unit,
        reading.stable,
        reading.overload,
        reading.underload,
    )


def with_checksum(head: bytes) -> bytes:
    return head + bytes([checksum_of(head)])


def test_registry() -> None:
    assert get_protocol("toledo-continuous") is PROTOCOL
    assert PROTOCOL.streaming
    assert "7E1" in PROTOCOL.description


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (GROSS_12_34, Reading(12_340_000, "kg", True, 12_340_000, 0)),
        (NET_5_MOTION, Reading(5_000_000, "kg", False, 6_250_000, 1_250_000)),
        (GROSS_MINUS_0_20, Reading(-200_000, "kg", True, -200_000, 0)),
        (OUT_OF_RANGE, Reading(None, "kg", True, overload=True)),
        (LB_100_5, Reading(LB_MG, "lb", True, LB_MG, 0)),
    ],
)
def test_reference_frames(frame: bytes, expected: Reading) -> None:
    reading = decode(frame)
    assert isinstance(reading, Reading)
    assert reading.raw == frame
    assert values(reading) == values(expected)
    # the 17-byte form (checksum disabled on the indicator) means the same
    assert values(decode(frame[:17])) == values(expected)


def test_encode_frame_rebuilds_the_reference() -> None:
    assert encode_frame(12_340_000, "kg", 2) == GROSS_12_34
    assert encode_frame(5_000_000, "kg", 2, net=True, tare_mg=1_250_000, motion=True) == (
        NET_5_MOTION
    )
    assert encode_frame(-200_000, "kg", 2) == GROSS_MINUS_0_20
    assert encode_frame(0, "kg", 2, out_of_range=True) == OUT_OF_RANGE
    assert encode_frame(LB_MG, "lb", 1, increment=5) == LB_100_5
    assert encode_frame(12_340_000, "kg", 2, checksum=False) == GROSS_12_34[:17]


@pytest.mark.parametrize(
    ("mg", "unit", "places", "shown"),
    [
        (1_250_000, "kg", 3, 1_250_000),
        (1_250, "g", 0, 1_000),  # rounded to the display: 1 g
        (1_500, "g", 0, 2_000),  # half-even
        (2_500, "g", 0, 2_000),
        (1_234_500, "g", 1, 1_234_500),
        (12_300_000_000, "kg", -1, 12_300_000_000),  # dummy zero: 1230 shown as 12300
        (12_300_000_000, "kg", -2, 12_300_000_000),  # two dummy zeros: 123 -> 12300
        (2_000_000_000, "t", 3, 2_000_000_000),
        (28_349_523, "oz", 2, 28_349_523),  # 1.00 oz = 28349.523125 mg
        (453_592, "lb", 5, 453_592),  # 1.00000 lb = 453592.37
        (-1_000, "kg", 3, -1_000),
    ],
)
def test_round_trip(mg: int, unit: str, places: int, shown: int) -> None:
    for net in (False, True):
        frame = encode_frame(mg, unit, places, net=net, tare_mg=0)
        reading = decode(frame)
        assert isinstance(reading, Reading)
        assert (reading.net_mg, reading.unit) == (shown, unit)
        assert reading.gross_mg == shown


def test_net_frame_carries_gross_and_tare() -> None:
    reading = decode(encode_frame(-300_000, "kg", 3, net=True, tare_mg=500_000))
    assert isinstance(reading, Reading)
    assert (reading.net_mg, reading.tare_mg, reading.gross_mg) == (-300_000, 500_000, 200_000)


def test_encode_frame_refuses_what_it_cannot_carry() -> None:
    with pytest.raises(ValueError):
        encode_frame(1_000_000_000, "kg", 3)  # 1000.000 kg needs 7 digits
    with pytest.raises(ValueError):
        encode_frame(1, "mg", 0)
    with pytest.raises(ValueError):
        encode_frame(1, "kg", 6)
    with pytest.raises(ValueError):
        encode_frame(1, "kg", 3, increment=3)


def test_parity_bit_is_ignored() -> None:
    # a 7E1 indicator read as 8N1 shows the parity bit as bit 7; the checksum ignores it too
    parity = bytes(b | 0x80 if bin(b).count("1") % 2 else b for b in NET_5_MOTION)
    assert parity != NET_5_MOTION
    reading = decode(parity)
    assert isinstance(reading, Reading)
    assert values(reading) == values(decode(NET_5_MOTION))
    assert reading.raw == parity


def flip(frame: bytes, index: int, mask: int, fix_checksum: bool = True) -> bytes:
    data = bytearray(frame)
    data[index] ^= mask
    head = bytes(data[:17])
    return with_checksum(head) if fix_checksum else bytes(data)


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (GROSS_12_34[:17] + b",", "bad checksum"),
        (GROSS_12_34[:-1] + bytes([GROSS_12_34[-1] ^ 1]), "bad checksum"),
        (flip(GROSS_12_34, 6, 0x01, fix_checksum=False), "bad checksum"),
        (flip(GROSS_12_34, 1, 0x20), "fixed bits"),  # SWA bit 5 must be 1
        (flip(GROSS_12_34, 1, 0x40), "fixed bits"),  # SWA bit 6 must be 0
        (flip(GROSS_12_34, 2, 0x20), "fixed bits"),  # SWB bit 5 must be 1
        (flip(GROSS_12_34, 3, 0x20), "fixed bits"),  # SWC bit 5 must be 1
        (with_checksum(b"\x02,0 00123A000000\r"), "6 digits"),
        (with_checksum(b"\x02,0 001234 00000\r"), "6 digits"),
        (with_checksum(b"\x02,0$001234000000\r"), "unit code 4"),
        (with_checksum(b"\x02,0'001234000000\r"), "unit code 7"),
        (with_checksum(b"\x03,0 001234000000\r"), "STX"),
        (with_checksum(b"\x02,0 001234000000\n"), "CR"),
        (GROSS_12_34[:16], "17 or 18"),
        (GROSS_12_34 + b"\r", "17 or 18"),
        (b"", "17 or 18"),
    ],
)
def test_frame_errors(frame: bytes, why: str) -> None:
    with pytest.raises(FrameError, match=why):
        decode(frame)


def test_unit_codes() -> None:
    cases = {b",0!": "g", b',0"': "t", b",0#": "oz", b",  ": "lb", b",0 ": "kg"}
    for status, unit in cases.items():
        reading = decode(with_checksum(b"\x02" + status + b"001234000000\r"))
        assert isinstance(reading, Reading) and reading.unit == unit


def test_encode_refuses_every_command() -> None:
    for command in Command:
        with pytest.raises(ScaleError, match="not supported by the continuous output"):
            encode(command)


def test_answers() -> None:
    reading = decode(GROSS_12_34)
    assert answers(Command.READ, reading)
    assert answers(Command.READ_STABLE, reading)
    assert not answers(Command.ZERO, reading)


# -- the framer ------------------------------------------------------------------------------


def test_framer_glued_frames() -> None:
    framer = StxFramer()
    assert framer.feed(b"".join(REFERENCE)) == REFERENCE
    assert framer.dropped == 0


def test_framer_garbage_between_frames() -> None:
    framer = StxFramer()
    noise = [b"", b"\x00\xff", b"\r\r\n", b"\x02\x02", b"\x02,0 0012", b"junk\x02junk\r"]
    stream = b"".join(n + f for n, f in zip(noise, REFERENCE, strict=False)) + b"\x02tail"
    assert framer.feed(stream) == REFERENCE
    assert framer.dropped > 0
    assert framer.pending == b"\x02tail"
    framer.reset()
    assert framer.pending == b""


def test_framer_first_fragment_is_dropped() -> None:
    # opening the port mid-frame: the fragment before the first STX is never a frame
    stream = b"".join(REFERENCE)
    assert StxFramer().feed(stream[5:]) == REFERENCE[1:]


def test_framer_resyncs_when_cr_is_missing() -> None:
    broken = GROSS_12_34[:16] + b"0" + GROSS_12_34[17:]  # CR replaced: not a frame
    assert StxFramer().feed(broken + NET_5_MOTION) == [NET_5_MOTION]
    assert StxFramer(checksum=False).feed(broken[:17] + GROSS_12_34[:17]) == [GROSS_12_34[:17]]


def test_framer_drops_bad_checksums_but_keeps_the_next_frame() -> None:
    bad = GROSS_12_34[:17] + b"\x00"
    assert StxFramer().feed(bad + LB_100_5) == [LB_100_5]


def test_framer_checksum_byte_may_look_like_stx_or_cr() -> None:
    # find frames whose checksum byte is STX or CR: the framer must not resync on them
    special = [encode_frame(599_999_000, "kg", 3), encode_frame(399_990_000, "kg", 3)]
    assert [f[17] for f in special] == [0x02, 0x0D]
    assert StxFramer().feed(b"".join(special * 2)) == special * 2


@given(st.data())
def test_framer_split_at_every_position(data: st.DataObject) -> None:
    stream = b"".join(REFERENCE)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    framer = StxFramer()
    out: list[bytes] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out += framer.feed(stream[start:end])
    assert out == REFERENCE


def test_framer_split_at_each_single_position() -> None:
    stream = b"".join(REFERENCE)
    for cut in range(len(stream) + 1):
        framer = StxFramer()
        assert framer.feed(stream[:cut]) + framer.feed(stream[cut:]) == REFERENCE


def test_framer_without_checksum() -> None:
    plain = [f[:17] for f in REFERENCE]
    framer = StxFramer(checksum=False)
    assert framer.feed(b"xx" + b"".join(plain)) == plain
    assert [values(decode(f)) for f in plain] == [values(decode(f)) for f in REFERENCE]


@pytest.mark.parametrize("with_sum", [True, False])
def test_framer_auto_detects_checksum(with_sum: bool) -> None:
    frames = REFERENCE if with_sum else [f[:17] for f in REFERENCE]
    framer = StxFramer(checksum=None)
    # undecided: a frame is out once the byte after its CR shows whether it is a checksum
    assert framer.feed(b"\x00" + frames[0] + frames[1]) == frames[: 2 if with_sum else 1]
    assert framer.checksum is None
    out = framer.feed(b"".join(frames[2:]))
    assert framer.checksum is with_sum  # decided after 3 agreeing frames
    assert out == frames[2 if with_sum else 1 :]
    framer.reset()
    assert framer.checksum is with_sum  # same device: the mode survives a reset
    assert framer.feed(b"".join(frames)) == frames


def test_protocol_framer_auto_detects() -> None:
    plain = [f[:17] for f in REFERENCE] * 2
    framer = PROTOCOL.make_framer()
    assert framer.feed(b"".join(plain)) == plain
    assert all(isinstance(decode(f), Reading) for f in plain)


# -- fuzzing ---------------------------------------------------------------------------------


@given(st.binary(max_size=120), st.sampled_from([True, False, None]))
def test_fuzz_random_bytes(data: bytes, checksum: bool | None) -> None:
    framer = StxFramer(checksum)
    for frame in framer.feed(data):
        with contextlib.suppress(ScaleError):
            decode(frame)
    with contextlib.suppress(ScaleError):
        decode(data)


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    unit = draw(st.sampled_from(["kg", "lb", "g", "t", "oz"]))
    places = draw(st.integers(-2, 5))
    count = draw(st.integers(0, 999_999))
    tare = draw(st.integers(0, 999_999))
    head = bytes(
        [
            0x02,
            0x20 | draw(st.sampled_from([0x08, 0x10, 0x18])) | (places + 2),
            0x20 | draw(st.integers(0, 0x1F)) | draw(st.sampled_from([0, 0x40])),
            0x20 | {"kg": 0, "lb": 0, "g": 1, "t": 2, "oz": 3}[unit] | draw(st.integers(0, 3)) << 3,
        ]
    )
    if unit == "kg":
        head = head[:2] + bytes([head[2] | 0x10]) + head[3:]
    elif unit == "lb":
        head = head[:2] + bytes([head[2] & ~0x10]) + head[3:]
    return with_checksum(head + f"{count:06d}{tare:06d}\r".encode())


@given(frames(), st.integers(0, 17), st.integers(1, 255))
def test_fuzz_single_byte_corruption(frame: bytes, index: int, mask: int) -> None:
    original = decode(frame)
    assert isinstance(original, Reading)
    corrupted = bytearray(frame)
    corrupted[index] ^= mask
    try:
        reading = decode(bytes(corrupted))
    except FrameError:
        return
    # The 7-bit checksum sees every change except one of bit 7 alone, which is the parity
    # bit that decoding masks: such a frame decodes to the very same values.
    assert mask == 0x80
    assert isinstance(reading, Reading)
    assert values(reading) == values(original)


@given(st.lists(frames(), min_size=3, max_size=6), st.data())
def test_fuzz_corruption_in_a_stream(stream: list[bytes], data: st.DataObject) -> None:
    k = data.draw(st.integers(0, len(stream) - 1))
    index = data.draw(st.integers(0, 17))
    mask = data.draw(st.integers(1, 255))
    corrupted = bytearray(stream[k])
    corrupted[index] ^= mask
    out = StxFramer().feed(b"".join(stream[:k]) + bytes(corrupted) + b"".join(stream[k + 1 :]))
    # frames before the damage come out untouched, and so do those from the second after it
    # (a damaged frame can at worst swallow the STX of the next one)
    assert out[:k] == stream[:k]
    tail = stream[k + 2 :]
    assert out[len(out) - len(tail) :] == tail


def test_status_word_b_gross_net_from_the_wildcat_manual() -> None:
    """Standard continuous output (Wildcat technical manual p. 40-41, 38.142.81.21:8001/manual/
    wildcat-territory/scale-e15609900a/user-s-manual-english/page-41.html): status word B
    bit 0 is 0 gross / 1 net, the displayed weight then the tare. Frames built from that table
    (the reference's §2.1, checksums computed)."""
    gross = decode(b"\x02,0 001234000000\r+")  # SWB 0x30: gross, kg, stable
    assert isinstance(gross, Reading)
    assert (gross.net, gross.net_mg, gross.gross_mg, gross.tare_mg) == (
        False,
        12_340_000,
        12_340_000,
        0,
    )
    net = decode(b"\x02,9 000500000125\r\x1f")  # SWB 0x39: net, motion, kg; tare 1.25 kg
    assert isinstance(net, Reading) and net.net is True and not net.stable
    assert (net.net_mg, net.tare_mg, net.gross_mg) == (5_000_000, 1_250_000, 6_250_000)
    out = decode(b"\x02,4 000000000000\r1")  # SWB 0x34: out of range
    assert isinstance(out, Reading) and out.overload and out.net is False
