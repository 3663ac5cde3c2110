"""Configurable ASCII personality: streams the default protocol's '<weight> <unit> [?]' lines."""

from __future__ import annotations

from typing import ClassVar

from . import Personality, SimScale, decimal_text

__all__ = ["PERSONALITY", "AsciiPersonality"]


class AsciiPersonality(Personality):
    """A plain scale for the default configurable ASCII protocol: one CR LF line per display
    update, ignoring what it hears. ``1.250 kg`` stable, ``1.250 kg ?`` moving, ``-0.500 kg``
    below zero, ``125 pcs`` while a piece weight is stored, ``OL`` / ``UL`` out of range. Lines
    are not padded: a padded ``     1.250 kg`` would read as an Ohaus or Kern line too, and
    ``station scale probe`` would name the wrong protocol."""

    name: ClassVar[str] = "ascii"
    streaming: ClassVar[bool] = True
    counts: ClassVar[bool] = True

    def frame(self, scale: SimScale) -> bytes:
        state = scale.snapshot()
        if state.overload:
            return b"OL\r\n"
        if state.underload:
            return b"UL\r\n"
        motion = " ?" if state.motion else ""
        if state.pieces is not None:
            return f"{state.pieces} pcs{motion}\r\n".encode("ascii")
        value = decimal_text(state.net_mg, scale.unit, scale.decimals)
        return f"{value} {scale.unit}{motion}\r\n".encode("ascii")


PERSONALITY = AsciiPersonality
