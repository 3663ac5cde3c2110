"""MT-SICS personality: a level 0/1 balance answering S, SI, Z, ZI, T, TA, TAC, @, I2, I4."""

from __future__ import annotations

import threading
from typing import ClassVar

from ...base import ScaleError
from ...scale import mtsics
from . import Personality, SimScale, SimState, decimal_text

__all__ = ["PERSONALITY", "MtSicsPersonality"]


class MtSicsPersonality(Personality):
    """Replies are CR LF lines; a garbled (non-ASCII) command gets ``ET``, an unknown one ``ES``."""

    name: ClassVar[str] = "mt-sics"
    read_request: ClassVar[bytes] = b"SI\r\n"

    def respond(self, request: bytes, scale: SimScale, down: threading.Event) -> bytes | None:
        reply = self._reply(request, scale, down)
        return None if reply is None else reply.encode("ascii") + b"\r\n"

    def print_block(self, scale: SimScale) -> bytes | None:
        # the PRINT key of a balance sends the weight as an ``S`` line
        state = scale.snapshot()
        return self._weight(scale, state, "D" if state.motion else "S").encode("ascii") + b"\r\n"

    def _reply(self, request: bytes, scale: SimScale, down: threading.Event) -> str | None:
        try:
            text = request.decode("ascii").strip()
        except UnicodeDecodeError:
            return "ET"  # a garbled command, as a balance reports a parity/framing error
        if not text:
            return None
        cmd, _, arg = text.partition(" ")
        if cmd == "S":
            state = scale.wait_stable(down)
            if state.motion and not (state.overload or state.underload):
                return "S I"  # no stability before the balance's timeout
            return self._weight(scale, state, "S")
        if cmd == "SI":
            state = scale.snapshot()
            return self._weight(scale, state, "D" if state.motion else "S")
        if cmd in ("Z", "ZI"):
            status, state = scale.zero_detail(immediate=cmd == "ZI")
            if cmd == "ZI" and status == "A":
                status = "D" if state.motion else "S"
            return f"{cmd} {status}"
        if cmd == "T":
            status, tare = scale.tare()
            return f"T S {_value(scale, tare)}" if status == "A" else f"T {status}"
        if cmd == "TA":
            if arg:
                return _preset_tare(scale, arg)
            return f"TA A {_value(scale, scale.snapshot().tare_mg)}"
        if cmd == "TAC":
            scale.clear_tare()
            return "TAC A"
        if cmd == "@":
            scale.clear_tare()  # reset keeps zero, clears tare
            return f'I4 A "{scale.serial_number}"'
        if cmd == "I2":
            return f'I2 A "{scale.model} {_value(scale, scale.capacity_mg).strip()}"'
        if cmd == "I4":
            return f'I4 A "{scale.serial_number}"'
        return "ES"

    @staticmethod
    def _weight(scale: SimScale, state: SimState, status: str) -> str:
        if state.overload:
            return "S +"
        if state.underload:
            return "S -"
        return f"S {status} {_value(scale, state.net_mg)}"


def _value(scale: SimScale, mg: int) -> str:
    """The right-aligned 10-character value field and the unit: ``'     1.250 kg'``."""
    return f"{decimal_text(mg, scale.unit, scale.decimals):>10} {scale.unit}"


def _preset_tare(scale: SimScale, arg: str) -> str:
    value, _, unit = arg.strip().partition(" ")
    try:
        mg = mtsics.parse_weight(value, unit.strip() or scale.unit)
    except ScaleError:
        return "EL"
    if mg < 0:
        return "TA L"
    return f"TA A {_value(scale, scale.preset_tare(mg))}"


PERSONALITY = MtSicsPersonality
