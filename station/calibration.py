"""The calibration in force: station-side linear correction, its file, due date and history.

Where a scale cannot be adjusted through its protocol, ``station calibrate span`` stores a
correction ``true = raw × gain`` about the scale's own zero: the gain an exact fraction, kept as
text. No offset: the scale re-zeros itself (at power-on, with its ZERO key), and an offset taken
at calibration time would then shift every weight. Corrections stored with an offset by earlier
versions still load and apply ``(raw − offset) × gain``. The station applies it at one place,
:meth:`station.loop.Station._on_weight`, so the record, the status snapshot and the counter
screen all see corrected weights (``station scale read`` and ``monitor`` show what the scale
itself says, on purpose: they are the wire-level tools).

``data_dir/calibration.json`` names the calibration record in force (its uuid goes in every
weighing's ``calibration_id``) and the last passing verification (span or check) that starts the
due-date clock. The journal keeps the full history; the file survives journal pruning.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

from common.i18n import _
from drivers.base import Reading

from .store import Store

__all__ = [
    "STATE_FILE",
    "CalibrationState",
    "Correction",
    "Implausible",
    "history",
    "load_state",
    "minimum_reference_mg",
    "save_state",
]

STATE_FILE = "calibration.json"
GAIN_LIMITS = (Fraction(9, 10), Fraction(11, 10))  # a span outside this is a mistake, not drift


class Implausible(ValueError):
    """A span that would make things worse: the message says what to check."""


def _round(value: Fraction, step: int) -> int:
    """``value`` rounded half-even to a multiple of ``step`` mg."""
    return round(value / step) * step


@dataclass(frozen=True, slots=True)
class Correction:
    """``true = (raw − offset_mg) × gain``, rounded to ``step_mg`` (the display division d)."""

    offset_mg: int = 0
    gain: Fraction = Fraction(1)
    step_mg: int = 1

    @property
    def identity(self) -> bool:
        return self.offset_mg == 0 and self.gain == 1

    def value(self, raw_mg: int) -> int:
        if self.identity:
            return raw_mg
        return _round((raw_mg - self.offset_mg) * self.gain, self.step_mg)

    def scaled(self, mg: int) -> int:
        """A difference of two readings (a tare, a net under tare): the gain only."""
        return mg if self.gain == 1 else _round(mg * self.gain, self.step_mg)

    def apply(self, reading: Reading) -> Reading:
        """The reading as a scale in adjustment would give it (``raw`` keeps the scale's bytes).

        A net under a tare (a tare value, or a frame marked net) is a difference of two
        readings, so the offset cancels out; without a tare the net is the load itself."""
        if self.identity:
            return reading
        tared = bool(reading.tare_mg) or reading.net is True  # a net frame may omit the tare
        net = reading.net_mg
        if net is not None:
            net = self.scaled(net) if tared else self.value(net)
        return replace(
            reading,
            net_mg=net,
            gross_mg=None if reading.gross_mg is None else self.value(reading.gross_mg),
            tare_mg=None if reading.tare_mg is None else self.scaled(reading.tare_mg),
        )

    @classmethod
    def from_points(
        cls, zero_raw_mg: int, loaded_raw_mg: int, reference_mg: int, step_mg: int = 1
    ) -> Correction:
        """The gain that makes the reference's rise from the empty pan read ``reference``:
        ``gain = reference / (loaded_raw − zero_raw)``, about the scale's own zero (offset 0).

        Raises :class:`Implausible` when the load did not change the reading or the gain is
        outside ±10 %."""
        moved = loaded_raw_mg - zero_raw_mg
        if abs(moved) * 2 < reference_mg:
            raise Implausible(
                _(
                    "the reading did not change by the reference mass (it moved {moved} mg "
                    "for {reference} mg): is the mass on the pan, and is this the scale the "
                    "station reads?"
                ).format(moved=moved, reference=reference_mg)
            )
        gain = Fraction(reference_mg, moved)
        if not GAIN_LIMITS[0] <= gain <= GAIN_LIMITS[1]:
            raise Implausible(
                _(
                    "gain {gain:.4f} is outside 0.9…1.1: check the reference mass (its value, "
                    "its unit), that nothing else is on the pan, and the scale's unit setting"
                ).format(gain=float(gain))
            )
        return cls(0, gain, step_mg)

    def to_json(self) -> dict[str, str]:
        return {
            "offset_mg": str(self.offset_mg),
            "gain": f"{self.gain.numerator}/{self.gain.denominator}",
            "gain_decimal": f"{float(self.gain):.9f}",  # for people; "gain" is the exact one
            "step_mg": str(self.step_mg),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Correction:
        return cls(int(data["offset_mg"]), Fraction(data["gain"]), int(data.get("step_mg", 1)))


def minimum_reference_mg(capacity_mg: int | None, d_mg: int | None) -> int:
    """The smallest reference mass a span accepts on this scale.

    A small reference leaves the gain to a few display steps, and its error is multiplied over
    the whole range: one step of 5 g in 100 g is 5 %. So at least Max / 3 when the capacity is
    known (R 76's span is near Max), else 1 000 d (d = 1 g when not set)."""
    if capacity_mg is not None:
        return -(-capacity_mg // 3)
    return 1000 * (d_mg or 1000)


@dataclass(frozen=True, slots=True)
class CalibrationState:
    """``calibration.json``: what is in force, and when the scale last passed a verification."""

    in_force_id: str | None = None
    in_force_at: str | None = None
    in_force_step: str | None = None
    correction: Correction | None = None  # None: the scale's own adjustment, nothing to correct
    verified_id: str | None = None
    verified_at: str | None = None
    verified_step: str | None = None
    # the scale the calibration in force was made on ("mt-sics:1126493049"): a station-side gain
    # belongs to one scale, and is wrong for the next one plugged in
    in_force_scale: str | None = None
    # the last check that failed, when no passing verification came after it
    failed_id: str | None = None
    failed_at: str | None = None

    def applied(self) -> Correction:
        return self.correction or Correction()

    @property
    def failed(self) -> bool:
        """The last check failed: the scale is out of its limits until adjusted and checked."""
        return self.failed_at is not None

    def due(self, interval_days: int) -> datetime | None:
        """When the next calibration is due (None: never verified, or the last check failed,
        so due now)."""
        if self.verified_at is None or self.failed:
            return None
        return _parse_time(self.verified_at) + timedelta(days=interval_days)

    def other_scale(self, scale_id: str | None) -> bool:
        """A station-side gain is in force, made on another scale than ``scale_id``."""
        return bool(
            self.correction is not None
            and self.in_force_scale
            and scale_id
            and scale_id != self.in_force_scale
        )

    def overdue(self, interval_days: int, now: datetime | None = None) -> bool:
        due = self.due(interval_days)
        return due is None or (now or datetime.now(UTC)) >= due

    def age_days(self, now: datetime | None = None) -> float | None:
        """Days since the last passing verification (None: never)."""
        if self.verified_at is None:
            return None
        age = (now or datetime.now(UTC)) - _parse_time(self.verified_at)
        return round(age.total_seconds() / 86400, 2)

    def to_json(self) -> dict[str, Any]:
        return {
            "in_force": {
                "id": self.in_force_id,
                "at": self.in_force_at,
                "step": self.in_force_step,
                "correction": self.correction.to_json() if self.correction else None,
                "scale": self.in_force_scale,
            },
            "verified": {
                "id": self.verified_id,
                "at": self.verified_at,
                "step": self.verified_step,
            },
            "failed": {"id": self.failed_id, "at": self.failed_at},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CalibrationState:
        force = data.get("in_force") or {}
        verified = data.get("verified") or {}
        failed = data.get("failed") or {}
        correction = force.get("correction")
        return cls(
            in_force_id=force.get("id"),
            in_force_at=force.get("at"),
            in_force_step=force.get("step"),
            correction=Correction.from_json(correction) if correction else None,
            verified_id=verified.get("id"),
            verified_at=verified.get("at"),
            verified_step=verified.get("step"),
            in_force_scale=force.get("scale"),
            failed_id=failed.get("id"),
            failed_at=failed.get("at"),
        )


def _parse_time(text: str) -> datetime:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE


def load_state(data_dir: Path) -> CalibrationState:
    """The state on the card; an empty state when there is none (never calibrated here).

    Raises ``ValueError`` when the file exists but cannot be read: a correction silently
    dropped would change every weight."""
    path = state_path(data_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return CalibrationState()
    except OSError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    try:
        return CalibrationState.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError, ZeroDivisionError) as exc:
        raise ValueError(f"{path}: not a calibration state ({exc})") from exc


def save_state(data_dir: Path, state: CalibrationState) -> None:
    """Write the state atomically and durably (temp file, fsync, rename, fsync the dir)."""
    path = state_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(state.to_json(), out, ensure_ascii=False, indent=1)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def history(store: Store) -> list[dict[str, Any]]:
    """The calibration records of the journal, oldest first, ``data`` decoded."""
    rows = list(store.records(kind="calibration"))
    for row in rows:
        try:
            row["data"] = json.loads(row["data"]) if row["data"] else {}
        except ValueError:
            row["data"] = {"unreadable": row["data"]}
    return rows
