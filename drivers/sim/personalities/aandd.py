"""A&D personality: Q/S/Z/T/?SN… CR LF requests, ``ST,+0001.250 kg`` replies, AK and EC codes."""

from __future__ import annotations

import re
import threading
from typing import ClassVar

from ...base import ScaleError, parse_mass
from . import Personality, SimScale, SimState, decimal_text

__all__ = ["PERSONALITY", "AandDPersonality"]

AK = b"\x06\r\n"
_PRESET = re.compile(r"PT:\s*([+-]?[\d.,]+)\s*([A-Za-z]+)")


class AandDPersonality(Personality):
    """A balance in the standard format with ``erCd 1`` (acknowledge with AK). With a stored
    piece weight it is in counting mode: ``QT``/``US`` with pieces and unit ``PC``. ``R`` zeroes
    like ``Z`` but acknowledges twice (on receipt and when done), as the manual says."""

    name: ClassVar[str] = "a-and-d"
    read_request: ClassVar[bytes] = b"Q\r\n"
    counts: ClassVar[bool] = True

    def respond(self, request: bytes, scale: SimScale, down: threading.Event) -> bytes | None:
        try:
            text = request.decode("ascii").strip()
        except UnicodeDecodeError:
            return b"EC,E00\r\n"
        if not text:
            return None
        if text in ("Q", "SI"):
            return _line(scale, scale.snapshot())
        if text == "S":
            return _line(scale, scale.wait_stable(down))
        if text in ("Z", "R"):
            status, _ = scale.zero_detail()
            if status != "A":
                return _refusal(status)
            return AK * (2 if text == "R" else 1)
        if text == "T":
            status, _ = scale.tare()
            return AK if status == "A" else _refusal(status)
        if text == "C":
            return AK
        if text == "?SN":
            return f"SN,{scale.serial_number}\r\n".encode("ascii")
        if text == "?TN":
            return f"TN,{scale.model}\r\n".encode("ascii")
        if text == "?ID":
            return b"ID,PESEE01\r\n"
        if text.startswith("PT:"):
            return _preset(scale, text)
        return b"EC,E01\r\n"

    def print_block(self, scale: SimScale) -> bytes | None:
        return _line(scale, scale.snapshot())  # the PRINT key in key mode: one data line


def _refusal(status: str) -> bytes:
    return b"EC,E11\r\n" if status == "I" else b"EC,E17\r\n"


def _preset(scale: SimScale, text: str) -> bytes:
    match = _PRESET.fullmatch(text)
    if match is None:
        return b"EC,E06\r\n"
    try:
        mg = parse_mass(match.group(1), match.group(2))
        scale.preset_tare(mg)
    except (ScaleError, ValueError):
        return b"EC,E07\r\n"
    return AK


def _line(scale: SimScale, state: SimState) -> bytes:
    head = "US" if state.motion else "ST"
    if state.pieces is not None:
        unit = " PC"
        value = str(abs(state.pieces))
        sign = "-" if state.pieces < 0 else "+"
        if not state.motion:
            head = "QT"
    else:
        unit = scale.unit.rjust(3)
        value = decimal_text(abs(state.net_mg), scale.unit, scale.decimals)
        sign = "-" if state.net_mg < 0 else "+"
    if state.overload or state.underload or len(value) > 8:
        nines = re.sub(r"\d", "9", value.rjust(8, "0"))[-8:]
        sign = "-" if state.underload and not state.overload else "+"
        return f"OL,{sign}{nines}{unit}\r\n".encode("ascii")
    return f"{head},{sign}{value.rjust(8, '0')}{unit}\r\n".encode("ascii")


PERSONALITY = AandDPersonality
