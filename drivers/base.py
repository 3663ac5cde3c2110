"""Shared driver types: the frozen Reading, a scale field's mass, and the driver error hierarchy."""

from __future__ import annotations

from dataclasses import dataclass

from common.units import MG_PER_UNIT, MassError, mass_mg

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
    "parse_mass",
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


def parse_mass(text: str, unit: str) -> int:
    """A scale's decimal field (``' +0012,50'``, ``'-0.68'``) in ``unit`` → milligrams, exactly
    (:func:`common.units.mass_mg`); :class:`FrameError` when it is not one."""
    try:
        return mass_mg(text.strip(), unit)
    except MassError as exc:
        raise FrameError(str(exc)) from exc


@dataclass(frozen=True, slots=True)
class Reading:
    """One weight reported by a scale, exactly as it said it.

    Masses are integer milligrams. ``net_mg`` is ``None`` when the scale gave no usable value
    (over or under range, or a status-only reply). ``gross_mg``/``tare_mg`` are set only when
    the protocol reports them. ``unit`` is the unit text as sent (``"kg"``, ``"lb"``).

    ``net`` is what the frame says of the displayed weight: True when it marks it net (a tare
    is in use: SMA ``N``, Dini Argeo ``NT``, Toledo 8217 ``N``…), False when it marks it gross,
    None when the frame does not say (MT-SICS, a plain number). A net frame may come without
    the tare's value: ``net`` is then the only trace of the tare.
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
    net: bool | None = None

    @property
    def in_range(self) -> bool:
        """True when the scale is neither over nor under its range and gave a value."""
        return not (self.overload or self.underload) and self.net_mg is not None
