"""Adam personality: P/T/Z CR LF commands, counting print blocks (weight, Unit Wt., PCS), ER."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import ClassVar

from ...base import ScaleError, parse_mass
from . import Personality, SimScale, SimState, decimal_text

__all__ = ["PERSONALITY", "AdamPersonality"]

_WIDTH = 10  # the weight field after the polarity column
_BLOCK_END = "\r\n\r\n\r\n"  # the last line's CR LF, then two blank lines


class AdamPersonality(Personality):
    """A CBC-style counting scale. ``P`` (and the PRINT key) prints a block: the weight line,
    then ``Unit Wt.`` and ``PCS`` lines while a piece weight is stored, then two blank lines.

    The weight line is written as Adam's continuous output writes it, the one Adam layout that
    says whether the weight is stable: ``ST``/``US``, ``GS``/``NT``, a polarity column and the
    value right-justified (``ST,GS      1.250 kg ``, ``US,NT-     0.500 kg ``). Out of range,
    the field is filled with ``^`` (over) or ``-`` (under), as Adam's MDW-300L does.

    ``T`` and ``Z`` act silently; when they cannot (in motion, out of range) the scale echoes
    ``ER T`` / ``ER Z``, as it does for any command it does not know (CBD manual). ``T1.250``
    presets a tare in the display unit."""

    name: ClassVar[str] = "adam"
    read_request: ClassVar[bytes] = b"P\r\n"
    counts: ClassVar[bool] = True

    def respond(self, request: bytes, scale: SimScale, down: threading.Event) -> bytes | None:
        try:
            text = request.decode("ascii").strip()
        except UnicodeDecodeError:
            return b"ER\r\n"
        if not text:
            return None
        if text == "P":
            return _block(scale, scale.snapshot())
        if text == "Z":
            status, _ = scale.zero_detail()
            return None if status == "A" else b"ER Z\r\n"
        if text == "T":
            status, _ = scale.tare()
            return None if status == "A" else b"ER T\r\n"
        if text.startswith("T"):
            return _preset(scale, text)
        return f"ER {text}\r\n".encode("ascii")

    def print_block(self, scale: SimScale) -> bytes | None:
        return _block(scale, scale.snapshot())


def _preset(scale: SimScale, text: str) -> bytes | None:
    try:
        scale.preset_tare(parse_mass(text[1:], scale.unit))
    except (ScaleError, ValueError):
        return f"ER {text}\r\n".encode("ascii")
    return None


def _block(scale: SimScale, state: SimState) -> bytes:
    header = ("US" if state.motion else "ST") + "," + ("NT" if state.tare_mg else "GS")
    unit = scale.unit.ljust(3)
    value = decimal_text(abs(state.net_mg), scale.unit, scale.decimals)
    if state.overload or state.underload or len(value) > _WIDTH:
        fill = "-" if state.underload and not state.overload else "^"
        return f"{header}{fill * (_WIDTH + 1)} {unit}{_BLOCK_END}".encode("ascii")
    polarity = "-" if state.net_mg < 0 else " "
    lines = [f"{header}{polarity}{value:>{_WIDTH}} {unit}"]
    if state.unit_weight_mg is not None and state.pieces is not None:
        grams = (Decimal(state.unit_weight_mg) / 1000).normalize()
        lines += [f"Unit Wt. {grams:f} g", f"PCS {state.pieces} pcs"]
    return ("\r\n".join(lines) + _BLOCK_END).encode("ascii")


PERSONALITY = AdamPersonality
