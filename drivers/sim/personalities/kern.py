"""Kern s/w/t personality: single letters without CR LF, 18-byte frames, no unit in motion."""

from __future__ import annotations

import threading
from typing import ClassVar

from ...serialio import Framer
from . import ByteFramer, Personality, SimScale, SimState, decimal_text

__all__ = ["PERSONALITY", "KernPersonality"]

_WIDTH = 10  # the value field, right-justified


class KernPersonality(Personality):
    """A balance with the older "rE Cr" remote control (FKB, KDE-T, DE): ``w`` sends the weight
    now, ``s`` once stable (as it is, after the balance's timeout), ``t`` tares and sends
    nothing; other bytes are ignored. There is no zero command.

    Frames are 18 bytes: mark column (blank), sign column (blank or ``-``), the value
    right-justified in 10, a blank, the unit left-justified in 3 (``kg``, ``g``, ``pcs`` while a
    piece weight is stored), CR LF. While the weight moves the unit is left out (blanks), as on
    the real balances. Out of range: ``=Overload=`` / ``=Underload=`` right-justified. The PRINT
    key sends the same frame."""

    name: ClassVar[str] = "kern"
    read_request: ClassVar[bytes] = b"w"
    counts: ClassVar[bool] = True

    def request_framer(self) -> Framer:
        return ByteFramer()

    def respond(self, request: bytes, scale: SimScale, down: threading.Event) -> bytes | None:
        if request == b"w":
            return _frame(scale, scale.snapshot())
        if request == b"s":
            return _frame(scale, scale.wait_stable(down))
        if request == b"t":
            scale.tare()  # refused silently in motion: the next frame shows why
        return None

    def print_block(self, scale: SimScale) -> bytes | None:
        return _frame(scale, scale.snapshot())


def _frame(scale: SimScale, state: SimState) -> bytes:
    if state.pieces is not None:
        negative, value, unit = state.pieces < 0, str(abs(state.pieces)), "pcs"
    else:
        negative = state.net_mg < 0
        value = decimal_text(abs(state.net_mg), scale.unit, scale.decimals)
        unit = scale.unit
    if state.overload or state.underload or len(value) > _WIDTH:
        word = "=Underload=" if state.underload and not state.overload else "=Overload="
        return f"{word:>16}\r\n".encode("ascii")
    sign = "-" if negative else " "
    shown = "" if state.motion else unit
    return f" {sign}{value:>{_WIDTH}} {shown:<3}\r\n".encode("ascii")


PERSONALITY = KernPersonality
