"""OIML R 76 arithmetic for a calibration CLI: classes, Min, maximum permissible errors, verdicts.

Pure functions on exact integers (mg) and :class:`~decimal.Decimal`; no I/O. The tables are
R 76-1 Table 3 (classes) and Table 6 (mpe on initial verification); in service the limits are
twice those (UK NAWI Regulations 1995 Sch. 2 para 4.2). See ../shared/reference/scale-protocols.md
§10 for the sources.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from common.i18n import _

__all__ = [
    "CLASSES",
    "ROUNDING_RULES",
    "AccuracyClass",
    "ClassLimits",
    "Point",
    "Repeatability",
    "Target",
    "class_limits",
    "default_loads",
    "judge",
    "min_load_mg",
    "missing",
    "mpe_mg",
    "problems",
    "repeatability",
    "rounding_mg",
    "weighing_targets",
]

AccuracyClass = Literal["I", "II", "III", "IIII"]
CLASSES: tuple[AccuracyClass, ...] = ("I", "II", "III", "IIII")

_G = 1000  # mg per gram

# load bands in multiples of e, upper bound inclusive: (upper, mpe in halves of e)
# R 76-1 Table 6: ±0.5 e, ±1 e, ±1.5 e
_BANDS: dict[AccuracyClass, tuple[tuple[int | None, int], ...]] = {
    "I": ((50_000, 1), (200_000, 2), (None, 3)),
    "II": ((5_000, 1), (20_000, 2), (None, 3)),
    "III": ((500, 1), (2_000, 2), (None, 3)),
    "IIII": ((50, 1), (200, 2), (None, 3)),
}


@dataclass(frozen=True, slots=True)
class ClassLimits:
    """What R 76-1 Table 3 allows for one class at one value of e."""

    n_min: int  # fewest verification intervals Max / e
    n_max: int | None  # most (None: no upper limit, class I)
    min_e: int  # Min, the minimum capacity, in multiples of e


def class_limits(cls: AccuracyClass, e_mg: int) -> ClassLimits | None:
    """The Table 3 row for ``cls`` at ``e_mg``, or None when that e is outside the class."""
    if cls == "I":
        return ClassLimits(50_000, None, 100) if e_mg >= 1 else None
    if cls == "II":
        if 1 <= e_mg <= 50:
            return ClassLimits(100, 100_000, 20)
        return ClassLimits(5_000, 100_000, 50) if e_mg >= 100 else None
    if cls == "III":
        if 100 <= e_mg <= 2 * _G:
            return ClassLimits(100, 10_000, 20)
        return ClassLimits(500, 10_000, 20) if e_mg >= 5 * _G else None
    return ClassLimits(100, 1_000, 10) if e_mg >= 5 * _G else None


def _one_two_five(mg: int) -> bool:
    """R 76 values of e and d are 1, 2 or 5 × 10^k (in any unit, so here in mg too)."""
    while mg >= 10 and mg % 10 == 0:
        mg //= 10
    return mg in (1, 2, 5)


def problems(cls: AccuracyClass, max_mg: int | None, e_mg: int, d_mg: int) -> list[str]:
    """What is wrong with a scale described by class, Max, e and d (empty list: coherent)."""
    out: list[str] = []
    if e_mg <= 0 or d_mg <= 0:
        return [_("e and d must be above zero")]
    if not _one_two_five(e_mg):
        out.append(_("e = {e} is not 1, 2 or 5 × 10^k (OIML R 76)").format(e=_g(e_mg)))
    if d_mg > e_mg or e_mg % d_mg:
        out.append(_("d = {d} must divide e = {e} (d ≤ e)").format(d=_g(d_mg), e=_g(e_mg)))
    limits = class_limits(cls, e_mg)
    if limits is None:
        out.append(
            _("e = {e} is not allowed in class {cls} (OIML R 76 Table 3)").format(
                e=_g(e_mg), cls=cls
            )
        )
        return out
    if max_mg is None:
        out.append(_("capacity (Max) is needed with e"))
        return out
    if e_mg > max_mg:
        out.append(_("e = {e} is above the capacity {max}").format(e=_g(e_mg), max=_g(max_mg)))
        return out
    n = max_mg // e_mg
    if max_mg % e_mg:
        out.append(
            _("capacity {max} is not a whole number of e = {e}").format(max=_g(max_mg), e=_g(e_mg))
        )
    elif n < limits.n_min or (limits.n_max is not None and n > limits.n_max):
        top = f"{limits.n_max}" if limits.n_max is not None else "∞"
        out.append(
            _(
                "n = Max / e = {n} is outside {low}…{top} for class {cls} with e = {e} "
                "(OIML R 76 Table 3)"
            ).format(n=n, low=limits.n_min, top=top, cls=cls, e=_g(e_mg))
        )
    return out


def min_load_mg(cls: AccuracyClass, e_mg: int) -> int:
    """Min, the minimum capacity: 20 e in class III, 10 e in IIII (100 e / 20 e / 50 e above)."""
    limits = class_limits(cls, e_mg)
    return (limits.min_e if limits is not None else 20) * e_mg


def mpe_mg(cls: AccuracyClass, e_mg: int, load_mg: int, *, in_service: bool = False) -> Decimal:
    """The maximum permissible error for ``load_mg`` (its absolute value, exact, in mg)."""
    m = abs(load_mg)
    halves = _BANDS[cls][-1][1]
    for upper, h in _BANDS[cls]:
        if upper is None or m <= upper * e_mg:
            halves = h
            break
    return Decimal(halves * e_mg * (2 if in_service else 1)) / 2


# How an error is judged against the display's rounding (R 76 corrects indications for it, with
# small extra weights, the change-point method): "half-d" adds the largest rounding error, d / 2,
# to |error| (conservative: it never passes a scale the change-point method would fail); "none"
# judges the error as read (recorded as not corrected for rounding).
ROUNDING_RULES = ("half-d", "none")


def rounding_mg(rule: str, d_mg: int) -> Decimal:
    """What is added to |error| before comparing it with the limit under ``rule``."""
    if rule not in ROUNDING_RULES:
        raise ValueError(f"unknown rounding rule {rule!r}")
    return Decimal(d_mg) / 2 if rule == "half-d" else Decimal(0)


@dataclass(frozen=True, slots=True)
class Point:
    """One test load: what the scale read, its error and the limit it must stay within."""

    load_mg: int
    reading_mg: int | None  # None: no weight (overload, no answer)
    mpe_mg: Decimal  # initial-verification mpe for this load
    limit_mg: Decimal  # the limit applied (mpe, or 2 × mpe in service)
    position: str = ""  # eccentricity: where on the pan
    rounding_mg: Decimal = Decimal(0)  # added to |error| for the display's rounding
    note: str = ""  # why there is no reading: "overload", "underload", "no weight"

    @property
    def error_mg(self) -> int | None:
        return None if self.reading_mg is None else self.reading_mg - self.load_mg

    @property
    def passed(self) -> bool:
        error = self.error_mg
        return error is not None and abs(error) + self.rounding_mg <= self.limit_mg


def judge(
    cls: AccuracyClass,
    e_mg: int,
    load_mg: int,
    reading_mg: int | None,
    *,
    in_service: bool = True,
    position: str = "",
    rounding: Decimal = Decimal(0),
    note: str = "",
) -> Point:
    """Error of one reading against the mpe of its load band (in service: twice it);
    ``rounding`` (see :func:`rounding_mg`) is added to |error| before the comparison."""
    mpe = mpe_mg(cls, e_mg, load_mg)
    limit = mpe * 2 if in_service else mpe
    return Point(load_mg, reading_mg, mpe, limit, position, rounding, note)


@dataclass(frozen=True, slots=True)
class Target:
    """A load the weighing test must include: any test load from ``low_mg`` to ``high_mg``
    counts for it."""

    name: str  # for the record: "min", "500e", "2000e", "max"
    load_mg: int
    low_mg: int
    high_mg: int


def weighing_targets(
    cls: AccuracyClass, e_mg: int, max_mg: int, min_mg: int | None = None
) -> list[Target]:
    """The loads a weighing test must cover to count as a verification.

    R 76 tests loads from zero to Max including Min and the loads where the mpe changes. A
    station's test masses rarely match those loads exactly, so each is a window: Min from
    0.8 × Min to 2 × Min (the bottom of the range, where the relative error is largest); each
    mpe change below Max (500 e and 2 000 e in class III) within ±20 % (a load just below tests
    the tighter band near its top, just above the wider one); the top of the range from Max / 2
    to Max. Zero is not a target (``calibrate zero`` checks it)."""
    low = min_mg if min_mg is not None else min_load_mg(cls, e_mg)
    out = [Target("min", low, low * 4 // 5, min(2 * low, max_mg))]
    for upper, _halves in _BANDS[cls]:
        if upper is None or upper * e_mg >= max_mg:
            continue
        at = upper * e_mg
        out.append(Target(f"{upper}e", at, at * 4 // 5, min(at * 6 // 5, max_mg)))
    out.append(Target("max", max_mg, max_mg // 2, max_mg))
    return out


def missing(targets: Sequence[Target], loads: Sequence[int]) -> list[Target]:
    """The targets no load covers (empty: the test covers the range)."""
    return [t for t in targets if not any(t.low_mg <= m <= t.high_mg for m in loads)]


def default_loads(targets: Sequence[Target]) -> list[int]:
    """Zero, then each target's own load, ascending: a weighing test that covers the range."""
    return sorted({0, *(t.load_mg for t in targets)})


@dataclass(frozen=True, slots=True)
class Repeatability:
    """Several weighings of one load: their spread must not exceed the mpe for that load."""

    load_mg: int
    readings: tuple[int | None, ...]
    limit_mg: Decimal

    @property
    def spread_mg(self) -> int | None:
        if not self.readings or any(r is None for r in self.readings):
            return None
        values = [r for r in self.readings if r is not None]
        return max(values) - min(values)

    @property
    def passed(self) -> bool:
        spread = self.spread_mg
        return spread is not None and len(self.readings) >= 2 and spread <= self.limit_mg


def repeatability(
    cls: AccuracyClass,
    e_mg: int,
    load_mg: int,
    readings: Sequence[int | None],
    *,
    in_service: bool = True,
) -> Repeatability:
    """R 76: the difference between results of the same load ≤ |mpe| for that load."""
    mpe = mpe_mg(cls, e_mg, load_mg)
    return Repeatability(load_mg, tuple(readings), mpe * 2 if in_service else mpe)


def _g(mg: int) -> str:
    """``5000`` → ``'5 g'``, ``2500`` → ``'2.5 g'``: the masses of error messages."""
    value = Decimal(mg) / _G
    text = format(value.normalize(), "f") if value else "0"
    return f"{text} g"
