"""Field parsing for the ASCII scale codecs: printable lines, common.units numbers as FrameError."""

from __future__ import annotations

from decimal import Decimal

from common import units
from common.units import LB_OZ, is_mass_unit

from ..base import FrameError, ScaleError
from .protocol import Command

__all__ = [
    "COUNT_UNITS",
    "LB_OZ",
    "count",
    "is_mass_unit",
    "mass_mg",
    "printable",
    "unsupported",
]

# Piece-count "units" (not masses). Compared lower-case.
COUNT_UNITS = frozenset({"pcs", "pc", "pce", "pcs."})


def printable(frame: bytes, *, strip: bytes = b"\r\n") -> str:
    """``frame`` without trailing ``strip`` bytes, as text; printable ASCII only.

    Bytes with bit 7 set or control characters usually mean a 7E1/8N1 framing mismatch or line
    noise: the frame is refused rather than guessed at.
    """
    line = frame.rstrip(strip)
    if not line or any(b < 0x20 or b > 0x7E for b in line):
        raise FrameError(f"not a printable ASCII line: {frame!r}")
    return line.decode("ascii")


def number(text: str) -> Decimal:
    """The exact value of a decimal field (:func:`common.units.number`); :class:`FrameError`."""
    try:
        return units.number(text)
    except units.MassError as exc:
        raise FrameError(str(exc)) from exc


def mass_mg(value: str, unit: str, *, allowed: frozenset[str] | None = None) -> int:
    """Exact milligrams of a field in ``unit`` (:func:`common.units.mass_mg`); ``allowed``
    restricts the units (lower-case) to those the protocol documents. :class:`FrameError`."""
    try:
        return units.mass_mg(value, unit, units=allowed)
    except units.MassError as exc:
        raise FrameError(str(exc)) from exc


def count(text: str) -> int:
    """A piece count (:func:`common.units.count`); :class:`FrameError` when it is not one."""
    try:
        return units.count(text)
    except units.MassError as exc:
        raise FrameError(str(exc)) from exc


def unsupported(command: Command, protocol: str) -> ScaleError:
    """The error ``encode`` raises for a command the protocol has no bytes for."""
    return ScaleError(f"{command.value} is not supported by this protocol ({protocol})")
