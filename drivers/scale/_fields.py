"""Field parsing shared by the ASCII scale codecs: printable lines, exact numbers, units, lb:oz."""

from __future__ import annotations

import re
from decimal import Decimal, localcontext

from ..base import MG_PER_UNIT, FrameError, ScaleError
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
LB_OZ = "lb:oz"

# One decimal number: optional sign, blanks allowed between sign and digits (Ohaus polarity
# column), zero padding, one decimal separator (point or comma). No exponent, no grouping.
_NUMBER = re.compile(r"( *)([+-]?)( *)(\d+(?:[.,]\d*)?|[.,]\d+) *")
# Composite pounds and ounces: ``12:07.50`` (MT-SICS style) with the unit ``lb:oz``.
_LB_OZ = re.compile(r"( *)([+-]?)( *)(\d{1,6}):(\d{1,2}(?:[.,]\d*)?) *")
_COUNT = re.compile(r"( *)([+-]?)( *)(\d+) *")
_MAX_CHARS = 16  # no scale sends a longer number; a longer "number" is garbage, not a huge mass
_OZ_PER_LB = 16


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
    """The exact value of a decimal field (``' +0012,50'``, ``'-   0.20'``); never via float.

    The sign is either the field's first character (a polarity column) or touches the digits:
    a sign alone inside the blank padding is line noise, not a negative weight.
    """
    if len(text.strip()) > _MAX_CHARS:
        raise FrameError(f"number field too long: {text!r}")
    match = _NUMBER.fullmatch(text)
    if match is None:
        raise FrameError(f"not a number: {text!r}")
    lead, sign, gap, digits = match.groups()
    if sign and lead and gap:
        raise FrameError(f"sign inside the padding: {text!r}")
    value = Decimal(digits.replace(",", "."))
    return -value if sign == "-" else value


def is_mass_unit(unit: str) -> bool:
    """Whether ``unit`` (any case) is a mass unit this module converts, ``lb:oz`` included."""
    key = unit.strip().lower()
    return key in MG_PER_UNIT or key == LB_OZ


def mass_mg(value: str, unit: str, *, units: frozenset[str] | None = None) -> int:
    """Exact integer milligrams of ``value`` in ``unit`` (half-even rounding, once, at the end).

    ``unit`` is compared case-insensitively (``Kg``, ``KG``); ``units`` restricts the accepted
    units (lower-case) to those the protocol documents. ``lb:oz`` takes ``'12:07.50'``.
    """
    key = unit.strip().lower()
    if (units is not None and key not in units) or not is_mass_unit(key):
        raise FrameError(f"not a mass unit: {unit!r}")
    with localcontext() as ctx:
        ctx.prec = 60  # exact: 16 digits times any factor fits, so the only rounding is ours
        if key == LB_OZ:
            match = _LB_OZ.fullmatch(value)
            if match is None or len(value.strip()) > _MAX_CHARS:
                raise FrameError(f"not a lb:oz value: {value!r}")
            lead, sign, gap, pounds, ounces = match.groups()
            if sign and lead and gap:
                raise FrameError(f"sign inside the padding: {value!r}")
            oz = Decimal(ounces.replace(",", "."))
            if oz >= _OZ_PER_LB:
                raise FrameError(f"ounces out of range in {value!r}")
            total = Decimal(pounds) * MG_PER_UNIT["lb"] + oz * MG_PER_UNIT["oz"]
            if sign == "-":
                total = -total
        else:
            total = number(value) * MG_PER_UNIT[key]
        return int(total.to_integral_value())


def count(text: str) -> int:
    """A piece count: digits with an optional sign (a counting scale shows a negative count when
    pieces are taken off after a tare); the sign follows the same rule as in :func:`number`."""
    if len(text.strip()) > _MAX_CHARS:
        raise FrameError(f"piece count too long: {text!r}")
    match = _COUNT.fullmatch(text)
    if match is None:
        raise FrameError(f"not a piece count: {text!r}")
    lead, sign, gap, digits = match.groups()
    if sign and lead and gap:
        raise FrameError(f"sign inside the padding: {text!r}")
    return -int(digits) if sign == "-" else int(digits)


def unsupported(command: Command, protocol: str) -> ScaleError:
    """The error ``encode`` raises for a command the protocol has no bytes for."""
    return ScaleError(f"{command.value} is not supported by this protocol ({protocol})")
