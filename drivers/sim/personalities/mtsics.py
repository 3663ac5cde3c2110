"""MT-SICS personality: a balance answering S, SI, Z, ZI, T, TA, TAC, @, I2, I4 and C2."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import ClassVar

from ...base import ScaleError
from ...scale import mtsics
from . import Personality, SimScale, SimState, decimal_text

__all__ = ["PERSONALITY", "MtSicsPersonality"]


class MtSicsPersonality(Personality):
    """Replies are CR LF lines; a garbled (non-ASCII) command gets ``ET``, an unknown one ``ES``."""

    name: ClassVar[str] = "mt-sics"
    read_request: ClassVar[bytes] = b"SI\r\n"
    adjust_timeout_s: ClassVar[float] = 60.0  # C2: how long the balance waits for each step

    def respond(self, request: bytes, scale: SimScale, down: threading.Event) -> bytes | None:
        reply = self._reply(request, scale, down)
        return None if reply is None else reply.encode("ascii") + b"\r\n"

    def dialogue(
        self, request: bytes, scale: SimScale, down: threading.Event
    ) -> Iterator[bytes] | None:
        if request.strip() != b"C2":
            return None
        return self._adjust(scale, down)

    def _adjust(self, scale: SimScale, down: threading.Event) -> Iterator[bytes]:
        """``C2``: span adjustment with the external weight. The wording of the steps is [U] in
        the reference: ``C2 B "<mass>"`` load it, ``C2 B "<zero>"`` take it off, ``C2 A`` done;
        ``C2 I`` when the pan never settles as asked within ``adjust_timeout_s``."""
        state = scale.wait_stable(down)
        if state.motion or state.overload or state.underload:
            yield b"C2 I\r\n"
            return
        weight = scale.adjust_weight_mg
        yield f'C2 B "{_value(scale, weight).strip()}"\r\n'.encode("ascii")
        if not self._settles(
            scale, down, lambda s: abs(s.gross_mg - s.zero_mg - weight) * 10 < weight
        ):
            yield b"C2 I\r\n"
            return
        scale.adjust(weight)
        yield f'C2 B "{_value(scale, 0).strip()}"\r\n'.encode("ascii")
        if not self._settles(scale, down, lambda s: abs(s.gross_mg - s.zero_mg) * 10 < weight):
            yield b"C2 I\r\n"
            return
        yield b"C2 A\r\n"

    def _settles(
        self, scale: SimScale, down: threading.Event, wanted: Callable[[SimState], bool]
    ) -> bool:
        deadline = time.monotonic() + self.adjust_timeout_s
        while time.monotonic() < deadline:
            state = scale.snapshot()
            if not state.motion and not state.overload and wanted(state):
                return True
            if down.wait(0.02):
                return False
        return False

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
