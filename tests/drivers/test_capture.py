"""Capture decoding as library code: unpacking raw/hex/spy captures, cutting and decoding frames."""

from __future__ import annotations

from dataclasses import replace

import pytest

from drivers.base import Reading
from drivers.scale import Reply, get_protocol
from drivers.scale.capture import decode_entry, is_net, pieces, reply_json, unpack

MT = get_protocol("mt-sics")
SPY = (
    "    0.012 TX   0000  53 49 0D 0A                                       SI..\n"
    "    0.030 RX   0000  53 20 53 20 20 20 20 20 20 31 2E 32 35 30 20 6B   S S      1.250 k\n"
    "    0.031 RX   0010  67 0D 0A                                          g..\n"
)


def test_unpack_reads_raw_hex_and_the_rx_lines_of_a_spy_log() -> None:
    assert unpack(b"S S 1 kg\r\n", "raw") == b"S S 1 kg\r\n"
    assert unpack(b"53 20 0x53 0d:0a", "hex") == b"S S\r\n"
    assert unpack(SPY.encode(), "spy") == b"S S      1.250 kg\r\n"  # TX left out
    with pytest.raises(ValueError, match="hexadecimal"):
        unpack(b"not hex", "hex")
    with pytest.raises(ValueError, match="RX"):
        unpack(b"just some text\n", "spy")


def test_pieces_cut_frames_and_keep_a_tail() -> None:
    data = b"S S      1.250 kg\r\nS D      1.3"
    assert list(pieces(MT, data)) == [("frame", b"S S      1.250 kg"), ("tail", b"S D      1.3")]


def test_noise_the_framer_skips_is_shown_where_it_was() -> None:
    noise = b"x" * 600  # longer than any frame: the line framer drops it
    got = list(pieces(MT, noise + b"\r\nS S      0.500 kg\r\n"))
    assert [kind for kind, _ in got] == ["noise", "frame"]


def test_decode_entry_says_what_each_piece_is() -> None:
    ok = decode_entry(MT, "frame", b"S S      1.250 kg")
    assert ok["decoded"] and ok["weight_mg"] == 1_250_000 and ok["stable"] is True
    refused = decode_entry(MT, "frame", b"ES")
    assert refused["decoded"] and refused["error"].startswith("error reply")
    tail = decode_entry(MT, "tail", b"S D  1.")
    assert not tail["decoded"] and tail["error"].startswith("incomplete frame")
    noise = decode_entry(MT, "noise", b"\xff\xfe")
    assert not noise["decoded"] and noise["raw"] == "\\xff\\xfe"


def test_a_codec_crash_is_one_undecoded_entry() -> None:
    def decode(frame: bytes) -> Reply:
        raise IndexError("codec bug")

    entry = decode_entry(replace(MT, decode=decode), "frame", b"S S 1 kg")
    assert not entry["decoded"] and entry["error"] == "decoder failed: IndexError: codec bug"


def test_reply_json_escapes_frames_as_the_journal_does() -> None:
    reading = MT.decode(b"S S      1.250 kg")
    assert isinstance(reading, Reading)
    out = reply_json(reading, b"S S      1.250 kg\r\n")
    assert out["raw"] == "S S      1.250 kg\\x0d\\x0a"
    assert out["net"] is is_net(reading) is None  # MT-SICS does not say net or gross
