"""Shared driver types: the frozen Reading, exact mass parsing, and the driver error hierarchy."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = [
    "MG_PER_UNIT",
    "DriverError",
    "FrameError",
    "PortError",
    "Reading",
    "ScaleError",
    "ScaleRefused",
    "ScaleTimeout",
    "ScannerError",
    "format_mg",
    "parse_mass",
    "to_mg",
]


class DriverError(Exception):
    """Base of every error raised by :mod:`drivers`."""


class PortError(DriverError, OSError):
    """The serial port could not be opened, or went away."""


class ScaleError(DriverError):
    """Base of scale errors."""


class FrameError(ScaleError, ValueError):
    """A frame could not be decoded (garbled, truncated, bad checksum, unknown reply)."""


class ScaleRefused(ScaleError):
    """The scale understood a command but refused or could not execute it (e.g. MT-SICS ``Z I``)."""


class ScaleTimeout(ScaleError, TimeoutError):
    """The scale did not answer in time."""


class ScannerError(DriverError):
    """Base of barcode scanner errors."""


# Exact factors to milligrams (reference §9.8). Keys are lower-case units as scales send them.
MG_PER_UNIT: dict[str, Decimal] = {
    "mg": Decimal(1),
    "g": Decimal(1000),
    "kg": Decimal(1_000_000),
    "t": Decimal(1_000_000_000),
    "lb": Decimal("453592.37"),
    "oz": Decimal("28349.523125"),
    "ozt": Decimal("31103.4768"),
    "ct": Decimal(200),
    "gn": Decimal("64.79891"),
}

_NUMBER = re.compile(r"^[+-]?\s*(\d+([.,]\d*)?|[.,]\d+)$")


def to_mg(value: Decimal, unit: str) -> int:
    """Convert an exact decimal mass in ``unit`` to integer milligrams (half-even rounding).

    >>> to_mg(Decimal("1.250"), "kg")
    1250000
    """
    factor = MG_PER_UNIT.get(unit.strip().lower())
    if factor is None:
        raise FrameError(f"unknown mass unit {unit!r}")
    return int((value * factor).to_integral_value())


def parse_mass(text: str, unit: str) -> int:
    """Parse a scale's decimal text (``' +0012,50'``, ``'-0.68'``) in ``unit`` to milligrams.

    Never goes through ``float``. A decimal comma is accepted when it is the only separator.
    """
    cleaned = text.strip()
    if not _NUMBER.match(cleaned):
        raise FrameError(f"not a number: {text!r}")
    cleaned = cleaned.replace(" ", "").replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
        raise FrameError(f"not a number: {text!r}") from exc
    return to_mg(value, unit)


def format_mg(mg: int, unit: str = "kg", places: int = 3, comma: bool = False) -> str:
    """Format milligrams for people: ``format_mg(1250000) == '1.250 kg'``."""
    factor = MG_PER_UNIT[unit]
    text = f"{Decimal(mg) / factor:.{places}f}"
    if comma:
        text = text.replace(".", ",")
    return f"{text} {unit}"


@dataclass(frozen=True, slots=True)
class Reading:
    """One weight reported by a scale, exactly as it said it.

    Masses are integer milligrams. ``net_mg`` is ``None`` when the scale gave no usable value
    (over or under range, or a status-only reply). ``gross_mg``/``tare_mg`` are set only when
    the protocol reports them. ``unit`` is the unit text as sent (``"kg"``, ``"lb"``).
    """

    net_mg: int | None
    unit: str
    stable: bool
    gross_mg: int | None = None
    tare_mg: int | None = None
    overload: bool = False
    underload: bool = False
    pieces: int | None = None
    unit_weight_mg: int | None = None
    raw: bytes = b""

    @property
    def in_range(self) -> bool:
        """True when the scale is neither over nor under its range and gave a value."""
        return not (self.overload or self.underload) and self.net_mg is not None
