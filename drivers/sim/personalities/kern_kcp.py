"""Kern KCP personality: the MT-SICS dialogue (S, SI, Z, ZI, T, TA, TAC, @, I2, I4) by its name,
and the KCP adjustment JZ / JG / JS."""

from __future__ import annotations

import threading
from typing import ClassVar

from . import SimScale
from .mtsics import MtSicsPersonality

__all__ = ["PERSONALITY", "KernKcpPersonality"]


class KernKcpPersonality(MtSicsPersonality):
    """KCP (KIB-TM, IOC, CKE and newer Kern balances) copies the MT-SICS command names and
    replies, CR LF both ways; the bytes are those of :mod:`.mtsics`. The adjustment (KDP manual
    §10.1): ``JZ`` with the empty pan, ``JG`` with the adjustment weight on it, ``JS`` saves;
    each answered ``<cmd> A``, or ``I`` while the pan moves or out of order. It knows no C2."""

    name: ClassVar[str] = "kern-kcp"

    def __init__(self) -> None:
        super().__init__()
        self._step = ""  # the last adjustment step done: "", "JZ", "JG"

    def reset(self) -> None:
        super().reset()
        self._step = ""

    def dialogue(self, request: bytes, scale: SimScale, down: threading.Event) -> None:
        return None  # no C2 in KCP

    def respond(self, request: bytes, scale: SimScale, down: threading.Event) -> bytes | None:
        command = request.strip()
        if command not in (b"JZ", b"JG", b"JS", b"C2"):
            return super().respond(request, scale, down)
        if command == b"C2":
            return b"ES\r\n"
        name = command.decode("ascii")
        expected = {"JZ": ("", "JZ", "JG"), "JG": ("JZ",), "JS": ("JG",)}[name]
        state = scale.wait_stable(down)
        if self._step not in expected or state.motion or state.overload or state.underload:
            return f"{name} I\r\n".encode("ascii")
        load = state.gross_mg - state.zero_mg
        weight = scale.adjust_weight_mg
        if name == "JZ" and abs(load) * 10 > weight:
            return b"JZ +\r\n"  # not an empty pan
        if name == "JG":
            if abs(load - weight) * 10 > weight:
                return b"JG +\r\n" if load > weight else b"JG -\r\n"
            scale.adjust(weight)
        self._step = "" if name == "JS" else name
        return f"{name} A\r\n".encode("ascii")


PERSONALITY = KernKcpPersonality
