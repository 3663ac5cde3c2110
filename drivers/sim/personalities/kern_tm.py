"""Kern TM personality: W/S/T/Z/P single letters, ``ST,GS,+0001.250  kg`` replies, OL,GS,±."""

from __future__ import annotations

import threading
from typing import ClassVar

from ...serialio import Framer
from . import ByteFramer, Personality, SimScale, SimState, decimal_text

__all__ = ["PERSONALITY", "KernTmPersonality"]

_WIDTH = 8  # the zero-padded value field after the sign


class KernTmPersonality(Personality):
    """A TM indicator (KXS-TM layout) answering upper-case letters sent without CR LF: ``W``
    the weight now, ``S`` once stable (as it is, after the timeout), ``T`` tare and ``Z`` zero
    (silent; refused silently in motion), ``P`` print (the count as ``125PCS`` in counting,
    else the weight string); other bytes are ignored.

    Replies end with CR LF: ``ST``/``US``, ``GS`` (``NT`` with a tare), the sign and the value
    zero-padded to 8, two blanks, the unit (``kg``, ``g``, ``pcs`` in counting). Out of range:
    ``OL,GS,+`` (over) / ``OL,GS,-`` (under), padded to the same length."""

    name: ClassVar[str] = "kern-tm"
    read_request: ClassVar[bytes] = b"W"
    counts: ClassVar[bool] = True

    def request_framer(self) -> Framer:
        return ByteFramer()

    def respond(self, request: bytes, scale: SimScale, down: threading.Event) -> bytes | None:
        if request == b"W":
            return _frame(scale, scale.snapshot())
        if request == b"S":
            return _frame(scale, scale.wait_stable(down))
        if request == b"T":
            scale.tare()
        elif request == b"Z":
            scale.zero_detail()
        elif request == b"P":
            return self.print_block(scale)
        return None

    def print_block(self, scale: SimScale) -> bytes | None:
        state = scale.snapshot()
        if state.pieces is not None and not (state.overload or state.underload):
            return f"{state.pieces}PCS\r\n".encode("ascii")
        return _frame(scale, state)


def _frame(scale: SimScale, state: SimState) -> bytes:
    kind = "NT" if state.tare_mg else "GS"
    if state.pieces is not None:
        negative, value, unit = state.pieces < 0, str(abs(state.pieces)), "pcs"
    else:
        negative = state.net_mg < 0
        value = decimal_text(abs(state.net_mg), scale.unit, scale.decimals)
        unit = scale.unit
    if state.overload or state.underload or len(value) > _WIDTH:
        sign = "-" if state.underload and not state.overload else "+"
        return f"{f'OL,{kind},{sign}':<{8 + _WIDTH + 3}}\r\n".encode("ascii")
    status = "US" if state.motion else "ST"
    sign = "-" if negative else "+"
    return f"{status},{kind},{sign}{value:0>{_WIDTH}}  {unit}\r\n".encode("ascii")


PERSONALITY = KernTmPersonality
