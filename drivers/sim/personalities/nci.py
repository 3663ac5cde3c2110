"""NCI / Weigh-Tronix SCP-01 personality: W/S/Z CR requests, LF … CR LF status CR ETX replies."""

from __future__ import annotations

import threading
from typing import ClassVar

from ...scale.nci import status_bytes
from . import Personality, SimScale, SimState, decimal_text

__all__ = ["PERSONALITY", "NciPersonality"]

ETX = b"\x03"


class NciPersonality(Personality):
    """``W`` weight and status (status only when over or under capacity: no weight is shown),
    ``S`` status, ``Z`` zero then status; anything else ``LF ? CR ETX``. The weight is
    zero-padded with the unit in capitals (``0001.250KG``), status byte 3 (gross/net) is sent
    while a tare (from the front panel) is in use."""

    name: ClassVar[str] = "nci"
    read_request: ClassVar[bytes] = b"W\r"

    def respond(self, request: bytes, scale: SimScale, down: threading.Event) -> bytes | None:
        if request == b"W":
            state = scale.snapshot()
            if state.overload or state.underload:
                return self._status(state)
            sign = "-" if state.net_mg < 0 else ""
            text = decimal_text(abs(state.net_mg), scale.unit, scale.decimals)
            weight = f"{sign}{text.rjust(7 if sign else 8, '0')}{scale.unit.upper()}"
            return b"\n" + weight.encode("ascii") + b"\r\n" + self._bytes(state) + b"\r" + ETX
        if request == b"S":
            return self._status(scale.snapshot())
        if request == b"Z":
            scale.zero_detail()  # a refusal shows only in the status (motion, not at zero)
            return self._status(scale.snapshot())
        return b"\n?\r" + ETX

    def _status(self, state: SimState) -> bytes:
        return b"\n" + self._bytes(state) + b"\r" + ETX

    @staticmethod
    def _bytes(state: SimState) -> bytes:
        return status_bytes(
            motion=state.motion,
            at_zero=state.center_zero,
            under=state.underload and not state.overload,
            over=state.overload,
            net=True if state.tare_mg else None,
        )


PERSONALITY = NciPersonality
