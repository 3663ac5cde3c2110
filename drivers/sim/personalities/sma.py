"""SMA SCP-0499 personality: LF cmd CR requests, LF s r n m f weight unit CR replies."""

from __future__ import annotations

import threading
from typing import ClassVar

from . import Personality, SimScale, SimState, decimal_text

__all__ = ["PERSONALITY", "SmaPersonality"]

DASHES = "-" * 10


class SmaPersonality(Personality):
    """A level-2 SMA scale: ``W`` weight, ``Z`` zero, ``T`` tare, ``C`` clear tare, ``M`` tare
    report; anything else ``LF ? CR``. A refused zero answers with status ``E``, a refused tare
    with ``T`` (dashes instead of the weight). Negative weights carry status ``U`` (below zero)
    and their signed value; the unit is padded with ``_`` as in the published tables."""

    name: ClassVar[str] = "sma"
    read_request: ClassVar[bytes] = b"\nW\r"
    shows_negative: ClassVar[bool] = False  # status U: the codec reports underload, no value

    def respond(self, request: bytes, scale: SimScale, down: threading.Event) -> bytes | None:
        if request == b"W":
            return self._frame(scale, scale.snapshot())
        if request == b"Z":
            status, state = scale.zero_detail()
            if status != "A":
                return self._frame(scale, state, error="E")
            return self._frame(scale, scale.snapshot())
        if request == b"T":
            status, _ = scale.tare()
            state = scale.snapshot()
            return self._frame(scale, state, error=None if status == "A" else "T")
        if request == b"C":
            scale.clear_tare()
            return self._frame(scale, scale.snapshot())
        if request == b"M":
            state = scale.snapshot()
            return self._frame(scale, state, mode="T", value=state.tare_mg)
        return b"\n?\r"

    @staticmethod
    def _frame(
        scale: SimScale,
        state: SimState,
        *,
        error: str | None = None,
        mode: str | None = None,
        value: int | None = None,
    ) -> bytes:
        motion = "M" if state.motion else " "
        if mode is None:
            mode = "N" if state.tare_mg else "G"
        mg = state.net_mg if value is None else value
        field = decimal_text(mg, scale.unit, scale.decimals).rjust(10)
        if error is not None:
            status, field = error, DASHES
        elif state.overload:
            status = "O"
        elif state.underload:
            status, field = "U", DASHES
        elif mg < 0:
            status = "U"
        elif state.center_zero and not state.tare_mg:
            status = "Z"
        else:
            status = " "
        if len(field) > 10:  # does not fit the field: the display would show over capacity
            status, field = "O", DASHES
        unit = scale.unit.ljust(3, "_")
        return f"\n{status}1{mode}{motion} {field}{unit}\r".encode("ascii")


PERSONALITY = SmaPersonality
