"""Ohaus personality: IP/P/SP/Z/T/xT CR LF commands, Ranger Compact print lines, '?', PCS."""

from __future__ import annotations

import re
import threading
from typing import ClassVar

from ...base import ScaleError, parse_mass
from . import Personality, SimScale, SimState, decimal_text

__all__ = ["PERSONALITY", "OhausPersonality"]

ES = b"ES\r\n"
_PRESET = re.compile(r"(\d+(?:\.\d+)?)T")  # xT: preset tare of x grams; 0T clears it
_WIDTH = 7  # the weight field: up to 6 digits and the point


class OhausPersonality(Personality):
    """A Ranger Compact / Ranger Count counting scale in the Ohaus command set.

    ``IP`` and ``P`` print the displayed value now, ``SP`` once stable (or, still moving after
    the scale's timeout, as it is). ``Z``, ``T``, ``0T`` (clear tare) and ``xT`` (preset tare of
    x grams) act silently, refusing silently in motion; anything else is answered ``ES``. The
    print line is the RC's ``POL SP SP W×7 SP UN UN SP ST SP NNN``: ``?`` while moving, legend
    ``NET`` with a tare, ``B/G`` without. With a stored piece weight it prints the count,
    ``       125 PCS  `` (as the Ohaus RS232 manual's counting example). Out of range, the
    display's ``-OL-`` / ``-UL-`` takes the weight's place (a constructed layout: Ohaus documents
    none). The PRINT key sends the same line."""

    name: ClassVar[str] = "ohaus"
    read_request: ClassVar[bytes] = b"IP\r\n"
    counts: ClassVar[bool] = True

    def check(self, scale: SimScale) -> None:
        if scale.decimals > _WIDTH - 2:
            raise ValueError("the Ohaus print line carries at most 6 digits and the point")

    def respond(self, request: bytes, scale: SimScale, down: threading.Event) -> bytes | None:
        try:
            text = request.decode("ascii").strip()
        except UnicodeDecodeError:
            return ES
        if not text:
            return None
        if text in ("IP", "P"):
            return _line(scale, scale.snapshot())
        if text == "SP":
            return _line(scale, scale.wait_stable(down))
        if text == "Z":
            scale.zero_detail()
            return None
        if text == "T":
            scale.tare()
            return None
        preset = _PRESET.fullmatch(text)
        if preset is not None:
            try:
                mg = parse_mass(preset.group(1), "g")
            except ScaleError:
                return ES
            if mg == 0:
                scale.clear_tare()
            else:
                scale.preset_tare(mg)
            return None
        return ES

    def print_block(self, scale: SimScale) -> bytes | None:
        return _line(scale, scale.snapshot())


def _line(scale: SimScale, state: SimState) -> bytes:
    stability = "?" if state.motion else " "
    legend = "NET" if state.tare_mg else "B/G"
    unit = scale.unit.ljust(2)
    if not (state.overload or state.underload):
        if state.pieces is not None:
            polarity = "-" if state.pieces < 0 else " "
            count = str(abs(state.pieces))
            if len(count) <= _WIDTH:
                return f"{polarity}  {count:>{_WIDTH}} PCS {stability}\r\n".encode("ascii")
        else:
            polarity = "-" if state.net_mg < 0 else " "
            value = decimal_text(abs(state.net_mg), scale.unit, scale.decimals)
            if len(value) <= _WIDTH:
                line = f"{polarity}  {value:>{_WIDTH}} {unit} {stability} {legend}"
                return line.encode("ascii") + b"\r\n"
    # out of range, or more digits than the display has: the display's message
    message = "-UL-" if state.underload and not state.overload else "-OL-"
    return f"   {message:>{_WIDTH}} {unit} {stability} {legend}\r\n".encode("ascii")


PERSONALITY = OhausPersonality
