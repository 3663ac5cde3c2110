"""One contract for every codec in the registry: each has a simulator personality, decodes what
that personality sends, and turns any garbage (random, truncated, flipped bytes) into a
ScaleError — never another exception, which would restart the reader instead of counting a
garbage frame."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.base import Reading, ScaleError
from drivers.scale import PROTOCOLS, Command, ScaleProtocol, get_protocol
from drivers.sim.personalities import PERSONALITIES
from drivers.sim.scale import ScaleSimulator
from tests.support.codec_oracle import assert_faithful, decoded

CODECS = sorted(PROTOCOLS)
# frames that carry no unit text: Toledo continuous (status bytes say where the decimal point
# is), Toledo 8217 (the unit is the scale's setting, not in the frame) and HID POS (binary)
UNITLESS = frozenset({"toledo-continuous", "toledo-8217", "hid-pos"})
# loads in kg that every simulated 15 kg scale shows exactly at 3 decimals
LOADS = ("0.000", "0.020", "1.250", "7.305", "14.999")


def test_every_protocol_has_a_simulator_personality_and_back() -> None:
    # the daemon-level contract (test_scale_contract.py) runs over the personalities: a codec
    # without one would silently go untested there
    assert set(PROTOCOLS) == set(PERSONALITIES)


@pytest.mark.parametrize("name", CODECS)
def test_every_command_has_a_request_or_says_it_has_none(name: str) -> None:
    """``encode`` gives bytes or raises ScaleError, nothing else: ``request`` and ``supports``
    rely on it, and every codec can be polled."""
    protocol = get_protocol(name)
    for command in Command:
        try:
            request = protocol.encode(command)
        except ScaleError:
            assert protocol.request(command) is None
        else:
            assert isinstance(request, bytes) and request and protocol.request(command) == request
    assert protocol.streaming or protocol.request(Command.READ)


def _frames(protocol: ScaleProtocol, data: bytes) -> list[bytes]:
    framer = protocol.make_framer()
    return list(framer.feed(data))


def _samples(name: str) -> tuple[list[tuple[bytes, int]], list[bytes]]:
    """What the simulated scale sends for each load: framed as the codec frames it (with the
    net mass shown), and as sent on the line."""
    sim = ScaleSimulator(name, seed=1)
    protocol = get_protocol(name)
    framed: list[tuple[bytes, int]] = []
    sent: list[bytes] = []
    for load in LOADS:
        sim.place(load, settle_s=0)
        raw = sim.personality.sample(sim)
        frames = _frames(protocol, raw)
        assert frames, f"{name}: no frame in what the simulator sent for {load} kg"
        framed += [(frame, sim.snapshot().net_mg) for frame in frames]
        sent.append(raw)
    return framed, sent


_ALL = {name: _samples(name) for name in CODECS}
SAMPLES = {name: framed for name, (framed, _sent) in _ALL.items()}
SENT = {name: sent for name, (_framed, sent) in _ALL.items()}


def _decode_or_refuse(protocol: ScaleProtocol, data: bytes) -> None:
    """Decoding garbage gives a ScaleError, or a reply that keeps the bytes it came from and,
    for the text protocols, whose every mass is a number printed in them in a unit printed in
    them (nothing invented); feeding the framer with it never raises."""
    for frame in [data, *_frames(protocol, data)]:
        reply = decoded(protocol.decode, frame)
        if reply is None:
            continue
        assert reply.raw == frame
        if protocol.name not in UNITLESS:
            # a codec may read bit 7 as parity (7E1 seen through 8N1): judge the 7-bit text
            assert_faithful(reply, bytes(b & 0x7F for b in frame))


@pytest.mark.parametrize("name", CODECS)
def test_the_codec_reads_its_simulator_exactly(name: str) -> None:
    protocol = get_protocol(name)
    weights = []
    for frame, net_mg in SAMPLES[name]:
        reply = protocol.decode(frame)
        if isinstance(reply, Reading) and reply.net_mg is not None:
            weights.append((reply.net_mg, net_mg))
    assert weights, f"{name}: no weight decoded from the simulator's frames"
    for got, shown in weights:
        assert got == shown


@pytest.mark.parametrize("name", CODECS)
@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=96))
def test_random_bytes_are_a_scale_error_or_a_reply(name: str, data: bytes) -> None:
    _decode_or_refuse(get_protocol(name), data)


@pytest.mark.parametrize("name", CODECS)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_truncated_frames_are_a_scale_error_or_a_reply(name: str, data: st.DataObject) -> None:
    frame, _ = data.draw(st.sampled_from(SAMPLES[name]))
    cut = data.draw(st.integers(0, max(0, len(frame) - 1)))
    start = data.draw(st.integers(0, cut))
    _decode_or_refuse(get_protocol(name), frame[start:cut])


@pytest.mark.parametrize("name", CODECS)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_flipped_bytes_are_a_scale_error_or_a_reply(name: str, data: st.DataObject) -> None:
    frame, _ = data.draw(st.sampled_from(SAMPLES[name]))
    flipped = bytearray(frame)
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(flipped) - 1))
        flipped[index] ^= data.draw(st.integers(1, 255))
    _decode_or_refuse(get_protocol(name), bytes(flipped))


@pytest.mark.parametrize("name", CODECS)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_a_stream_cut_anywhere_reframes(name: str, data: st.DataObject) -> None:
    """Frames glued together and fed in random pieces come out of the framer whole again."""
    protocol = get_protocol(name)
    sent = data.draw(st.lists(st.sampled_from(SENT[name]), min_size=1))
    stream = b"".join(sent)
    frames = [f for raw in sent for f in _frames(protocol, raw)]
    framer = protocol.make_framer()
    out: list[bytes] = []
    i = 0
    while i < len(stream):
        step = data.draw(st.integers(1, 16))
        out += framer.feed(stream[i : i + step])
        i += step
    decoded = [protocol.decode(f) for f in out]
    expected = [protocol.decode(f) for f in frames]
    assert [getattr(r, "net_mg", None) for r in decoded] == [
        getattr(r, "net_mg", None) for r in expected
    ]
