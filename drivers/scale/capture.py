"""Decoding captured bytes: a raw capture, a pyserial ``spy://`` log or hex text, frame by frame.

What ``station scale decode`` prints, as library code: the capture cut by the protocol's
framer (frames, the noise between them, a tail), each piece as one JSON-ready dict.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from common.i18n import _

from ..base import Reading, ScaleError, ScaleRefused
from ..serialio import escape_frame
from .link import decode_frame
from .protocol import Ack, Reply, ScaleProtocol

__all__ = ["FORMATS", "decode_entry", "is_net", "pieces", "reply_json", "unpack"]

FORMATS = ("raw", "spy", "hex")
_SPY_RX = re.compile(r"^\s*\d+\.\d+ RX\s+[0-9A-Fa-f]{4}  (.{1,49})")


def unpack(data: bytes, fmt: str) -> bytes:
    """The bytes the scale sent, from a raw capture, a pyserial spy:// log or hex text.

    ValueError (a sentence for a technician) when the text is not in that format."""
    if fmt == "raw":
        return data
    text = data.decode("latin-1")
    if fmt == "hex":
        cleaned = re.sub(r"0x|[\s:,]", "", text, flags=re.IGNORECASE)
        try:
            return bytes.fromhex(cleaned)
        except ValueError as exc:
            raise ValueError(_("not hexadecimal text: {error}").format(error=exc)) from exc
    out = bytearray()
    for row in text.splitlines():
        match = _SPY_RX.match(row)
        if match:  # received data only: TX lines are what the station sent
            out += bytes.fromhex("".join(re.findall(r"[0-9A-Fa-f]{2}", match.group(1))))
    if not out and text.strip():
        raise ValueError(_("no RX line found: is this a pyserial spy:// log (hexdump format)?"))
    return bytes(out)


def pieces(protocol: ScaleProtocol, data: bytes) -> Iterator[tuple[str, bytes]]:
    """The capture cut by the protocol's framer, in order: ("frame" | "noise" | "tail", bytes).

    Bytes fed one at a time so that bytes the framer skips (noise, a garbled frame) can be
    shown where they were, between the frames around them.
    """
    framer = protocol.make_framer()
    span = bytearray()  # fed since the last frame
    dropped = getattr(framer, "dropped", 0)
    noisy = False
    for i in range(len(data)):
        byte = data[i : i + 1]
        span += byte
        frames = framer.feed(byte)
        now = getattr(framer, "dropped", 0)
        if now != dropped:
            noisy, dropped = True, now
        for frame in frames:
            at = span.rfind(frame)
            if at < 0:  # the framer changed the bytes: they cannot be placed
                at = 0
                span.clear()
            if noisy and at:
                yield "noise", bytes(span[:at])
            noisy = False
            del span[: at + len(frame)]
            yield "frame", frame
    pending: bytes | None = getattr(framer, "pending", None)
    if pending is None:  # the framer does not say: anything but line ends is a tail
        pending = bytes(span).strip(b"\r\n")
    rest = bytes(span)
    skipped = rest[: len(rest) - len(pending)] if rest.endswith(pending) else rest
    if noisy and skipped.strip(b"\r\n"):
        yield "noise", skipped
    if pending:
        yield "tail", pending


def is_net(reading: Reading) -> bool | None:
    """Whether the displayed weight is net (True), gross (False), or the frame does not say:
    the frame's own marker (:attr:`Reading.net`), else what its gross and tare imply."""
    if reading.net is not None:
        return reading.net
    if reading.net_mg is None:
        return None
    if reading.gross_mg is not None:
        return reading.gross_mg != reading.net_mg
    if reading.tare_mg:
        return True
    return None


def reply_json(reply: Reply | None, raw: bytes, error: str | None = None) -> dict[str, Any]:
    """The JSON object of one frame (the keys `station scale decode` documents)."""
    out: dict[str, Any] = {
        "weight_mg": None,
        "unit": None,
        "stable": None,
        "net": None,
        "gross_mg": None,
        "tare_mg": None,
        "pieces": None,
        "unit_weight_mg": None,
        "overload": False,
        "underload": False,
        "reply": None,
        "error": error,
        "raw": escape_frame(raw),
    }
    if isinstance(reply, Reading):
        out.update(
            weight_mg=reply.net_mg,
            unit=reply.unit or None,
            stable=reply.stable,
            net=is_net(reply),
            gross_mg=reply.gross_mg,
            tare_mg=reply.tare_mg,
            pieces=reply.pieces,
            unit_weight_mg=reply.unit_weight_mg,
            overload=reply.overload,
            underload=reply.underload,
        )
    elif isinstance(reply, Ack):
        out["reply"] = {
            "command": reply.command,
            "status": reply.status,
            "params": list(reply.params),
            "mass_mg": reply.mass_mg,
        }
    return out


def decode_entry(protocol: ScaleProtocol, kind: str, raw: bytes) -> dict[str, Any]:
    """One piece of :func:`pieces` decoded: :func:`reply_json` plus ``decoded`` (False when
    the frame could not be decoded; an error reply is decoded, with its ``error``)."""
    if kind == "noise":
        entry = reply_json(None, raw, "bytes skipped by the framer: noise or a garbled frame")
        entry["decoded"] = False
        return entry
    try:
        reply = decode_frame(protocol, raw)  # a codec bug is a FrameError: it hides nothing else
    except ScaleRefused as exc:
        entry = reply_json(None, raw, f"error reply: {exc}")
        entry["decoded"] = True  # a well-formed reply that says the scale refused
        return entry
    except ScaleError as exc:
        reason = str(exc) if kind == "frame" else f"incomplete frame at end of input: {exc}"
        entry = reply_json(None, raw, reason)
        entry["decoded"] = False
        return entry
    entry = reply_json(reply, raw)
    entry["decoded"] = True
    return entry
