"""A&D personality: Q/S/Z/T/?SN… CR LF requests, ``ST,+0001.250 kg`` replies, AK and EC codes."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
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
    adjust_timeout_s: ClassVar[float] = 60.0  # CAL: how long the balance waits for each step

    def dialogue(
        self, request: bytes, scale: SimScale, down: threading.Event
    ) -> Iterator[bytes] | None:
        if request.strip() != b"CAL":
            return None
        return self._calibrate(scale, down)

    def _calibrate(self, scale: SimScale, down: threading.Event) -> Iterator[bytes]:
        """``CAL``: the balance takes the empty pan as its zero and acknowledges (AK), then
        waits for its calibration weight; AK when done. A pan not empty or moving when CAL
        comes gives ``EC,E11``; a weight more than 10 % off ``EC,E20`` (too heavy) or
        ``EC,E21`` (too light); a weight that never comes ``EC,E02``."""
        weight = scale.adjust_weight_mg
        state = scale.wait_stable(down)
        if state.motion or abs(state.gross_mg - state.zero_mg) * 10 >= weight:
            yield b"EC,E11\r\n"
            return
        yield AK
        if not _settles(scale, down, lambda s: (s.gross_mg - s.zero_mg) * 2 > weight):
            yield b"EC,E02\r\n"
            return
        load = scale.snapshot().gross_mg - scale.snapshot().zero_mg
        if abs(load - weight) * 10 > weight:
            yield b"EC,E20\r\n" if load > weight else b"EC,E21\r\n"
            return
        scale.adjust(weight)
        yield AK

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


def _settles(
    scale: SimScale,
    down: threading.Event,
    wanted: Callable[[SimState], bool],
    timeout_s: float = AandDPersonality.adjust_timeout_s,
) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = scale.snapshot()
        if not state.motion and not state.overload and wanted(state):
            return True
        if down.wait(0.02):
            return False
    return False


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
