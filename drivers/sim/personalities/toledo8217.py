"""Toledo 8217 personality: single-byte W/Z/T/C requests, STX weight CR or STX ? status CR."""

from __future__ import annotations

import threading
from typing import ClassVar

from ...scale.toledo8217 import status_byte
from ...serialio import Framer
from . import ByteFramer, Personality, SimScale, decimal_text, places_in

__all__ = ["PERSONALITY", "Toledo8217Personality"]

STX, CR = b"\x02", b"\r"


class Toledo8217Personality(Personality):
    """A POS scale: a weight only when stable, in range and not negative, else a status byte
    (DIVA layout: bit 6 set). ``Z``, ``T``, ``C`` act silently. ``E`` starts the presence probe:
    the scale answers ``STX E CR`` and echoes every byte until ``F``."""

    name: ClassVar[str] = "toledo-8217"
    read_request: ClassVar[bytes] = b"W"
    shows_negative: ClassVar[bool] = False  # a negative weight is the "under zero" status

    def __init__(self) -> None:
        self._echo = False

    def request_framer(self) -> Framer:
        return ByteFramer()

    def reset(self) -> None:
        self._echo = False

    def respond(self, request: bytes, scale: SimScale, down: threading.Event) -> bytes | None:
        if self._echo:
            if request == b"F":
                self._echo = False
                return None
            return request
        if request == b"W":
            return self._weight(scale)
        if request == b"Z":
            scale.zero_detail()
            return None
        if request == b"T":
            scale.tare()
            return None
        if request == b"C":
            scale.clear_tare()
            return None
        if request == b"E":
            self._echo = True
            return STX + b"E" + CR
        # an unknown command: a status reply with no reason bit (DIVA has no "bad command" bit)
        return STX + b"?" + bytes([status_byte()]) + CR

    @staticmethod
    def _weight(scale: SimScale) -> bytes:
        state = scale.snapshot()
        net = state.tare_mg != 0
        under = state.underload or state.net_mg < 0
        if state.motion or state.overload or under:
            status = status_byte(
                motion=state.motion,
                over=state.overload,
                under=under and not state.overload,
                center_zero=state.center_zero,
                net=net,
            )
            return STX + b"?" + bytes([status]) + CR
        places = places_in("kg", scale.division_mg)
        text = decimal_text(state.net_mg, "kg", places).rjust(3 + places, "0")
        return STX + text.encode("ascii") + (b"N" if net else b"") + CR


PERSONALITY = Toledo8217Personality
