"""The verifier's test as a calibration step: each load against its OIML R 76 limit,
repeatability, eccentricity, and whether the loads cover the range.

:func:`plan` turns the technician's choices into a :class:`CheckPlan` (refusing loads outside
the scale's range); :func:`check` weighs it through a
:class:`~station.calibration_flow.Session` and returns a :class:`CheckOutcome` to record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from common.i18n import _
from common.units import format_mass_exact

from . import metrology
from .calibration import Correction
from .calibration_flow import NoLoad, Outcome, Session
from .config import ScaleSection

__all__ = [
    "NO_WEIGHT",
    "OVERLOAD",
    "POINT_COLUMNS",
    "UNDERLOAD",
    "CheckOutcome",
    "CheckPlan",
    "CheckRun",
    "MetrologyMissing",
    "check",
    "plan",
    "point_json",
    "positions",
]

POINT_COLUMNS = [
    "load_mg",
    "reading_mg",
    "error_mg",
    "mpe_mg",
    "limit_mg",
    "pass",
    "position",
    "note",
]
OVERLOAD, UNDERLOAD, NO_WEIGHT = "overload", "underload", "no weight"


class MetrologyMissing(ValueError):
    """The config does not say the scale's capacity and e: there is nothing to judge against."""


@dataclass(frozen=True, slots=True)
class CheckPlan:
    """What a check weighs and how it judges."""

    cls: metrology.AccuracyClass
    e_mg: int
    loads: tuple[int, ...]
    proposed: bool  # the loads come from the metrology, not from the technician
    targets: tuple[metrology.Target, ...]
    repeat: int = 0
    repeat_load_mg: int = 0
    eccentricity: bool = False
    eccentric_load_mg: int = 0
    certificate: str | None = None
    rounding: str = "half-d"  # metrology.ROUNDING_RULES
    rounding_mg: Decimal = Decimal(0)
    in_service: bool = True


def plan(
    settings: ScaleSection,
    loads: Sequence[int] = (),
    *,
    repeat: int = 0,
    repeat_load_mg: int | None = None,
    eccentricity: bool = False,
    eccentric_load_mg: int | None = None,
    certificate: str | None = None,
    rounding: str = "half-d",
    initial: bool = False,
) -> CheckPlan:
    """The check the options ask for; no loads: zero, Min, the loads where the mpe changes and
    Max. Raises :class:`MetrologyMissing`, or ``ValueError`` for a load outside 0…Max."""
    if settings.e is None or settings.capacity is None:
        raise MetrologyMissing(
            _(
                "Set [scale] capacity and e (from the scale's data plate) to check against "
                "OIML R 76."
            )
        )
    e, top = settings.e, settings.capacity
    targets = metrology.weighing_targets(settings.accuracy_class, e, top, settings.minimum_load)
    proposed = not loads
    chosen = list(loads) if loads else metrology.default_loads(targets)
    rep = repeat_load_mg if repeat_load_mg is not None else max(chosen)
    d = settings.division or e
    ecc = eccentric_load_mg if eccentric_load_mg is not None else max(d, (top // 3) // d * d)
    for load in [*chosen, rep, ecc]:
        if load < 0 or load > top:
            raise ValueError(
                _("{load} is outside 0…{max} (the capacity)").format(
                    load=format_mass_exact(load), max=format_mass_exact(top)
                )
            )
    return CheckPlan(
        settings.accuracy_class,
        e,
        tuple(chosen),
        proposed,
        tuple(targets),
        repeat,
        rep,
        eccentricity,
        ecc,
        certificate,
        rounding,
        metrology.rounding_mg(rounding, d),
        not initial,
    )


@dataclass
class CheckRun:
    """The weighings of one check, and its verdict."""

    plan: CheckPlan
    correction: Correction | None = None  # the station-side correction in force, if any
    points: list[metrology.Point] = field(default_factory=list)
    repeat: metrology.Repeatability | None = None
    eccentric: list[metrology.Point] = field(default_factory=list)

    @property
    def uncovered(self) -> list[metrology.Target]:
        """What the weighing test's loads leave out of the range (R 76: zero to Max)."""
        return metrology.missing(self.plan.targets, [p.load_mg for p in self.points])

    @property
    def verdict(self) -> str:
        """``pass``, ``fail``, or ``incomplete``: every point passed but the loads did not
        cover the range, so the run does not count as a verification."""
        results = [p.passed for p in self.points + self.eccentric]
        if self.repeat is not None:
            results.append(self.repeat.passed)
        if not results or not all(results):
            return "fail"
        return "incomplete" if self.uncovered else "pass"

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def judge(
        self, load: int, reading_mg: int | None, position: str = "", note: str = ""
    ) -> metrology.Point:
        p = self.plan
        return metrology.judge(
            p.cls,
            p.e_mg,
            load,
            reading_mg,
            in_service=p.in_service,
            position=position,
            rounding=p.rounding_mg,
            note=note,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckOutcome(Outcome):
    run: CheckRun

    @property
    def passed(self) -> bool:
        return self.run.passed


def point_json(p: metrology.Point) -> list[Any]:
    """One point as a row of :data:`POINT_COLUMNS`."""
    return [
        p.load_mg,
        p.reading_mg,
        p.error_mg,
        str(p.mpe_mg),
        str(p.limit_mg),
        p.passed,
        p.position,
        p.note,
    ]


def positions() -> dict[str, str]:
    """Where the eccentricity load goes, in turn: key for the record, words for people."""
    return {
        "centre": _("centre"),
        "front left": _("front left corner"),
        "front right": _("front right corner"),
        "back right": _("back right corner"),
        "back left": _("back left corner"),
    }


def weigh(
    s: Session,
    run: CheckRun,
    load: int,
    prompt: str,
    since: int | None,
    position: str = "",
    *,
    insist: bool = False,
) -> metrology.Point:
    """One test load, judged; no stable weight near it within the wait: no reading. A point
    without a reading keeps why (overload, underload, no weight), for the report."""
    note = ""
    try:
        reading = s.take(
            prompt,
            load,
            corrected=True,
            since=since,
            must_move=since is not None,
            insist=insist,
        )
        value = None if reading.overload or reading.underload else s.value(reading, True)
        if reading.overload or reading.underload:
            note = OVERLOAD if reading.overload else UNDERLOAD
    except NoLoad:
        s.say(
            "  "
            + _("No stable weight near {load} within {s:g} s.").format(
                load=format_mass_exact(load), s=s.wait
            )
        )
        value = None
        note = NO_WEIGHT
    return run.judge(load, value, position, note)


def check(s: Session, p: CheckPlan) -> CheckOutcome:
    """Weigh the plan's loads, then repeatability and eccentricity when asked. A passing
    check that covers the range verifies the scale (restarts the due date)."""
    run = CheckRun(p, s.state.correction)
    if p.proposed:
        s.say(
            _("Test loads from the scale's metrology (--loads to choose others): {loads}").format(
                loads=", ".join(format_mass_exact(m) for m in p.loads)
            )
        )
    since: int | None = None
    for load in p.loads:
        what = (
            _("Empty the pan.")
            if load == 0
            else _("Place {load} in the centre of the pan.").format(load=format_mass_exact(load))
        )
        point = weigh(s, run, load, what, since)
        run.points.append(point)
        since = point.reading_mg
    if p.repeat:
        since = repeatability(s, run, since)
    if p.eccentricity:
        for where, said in positions().items():
            point = weigh(
                s,
                run,
                p.eccentric_load_mg,
                _("Eccentricity: place {load} at the {where}.").format(
                    load=format_mass_exact(p.eccentric_load_mg), where=said
                ),
                since,
                position=where,
            )
            run.eccentric.append(point)
            since = point.reading_mg
    return CheckOutcome(
        step="check",
        verdict=run.verdict,
        data=check_data(s, run),
        verifies=run.passed,
        run=run,
    )


def repeatability(s: Session, run: CheckRun, since: int | None) -> int | None:
    """Weigh one load ``repeat`` times, the pan emptied in between: each weighing waits for
    the load to come off and go back on (a load left on the pan would repeat one reading).
    Returns the last reading."""
    p = run.plan
    rep = p.repeat_load_mg
    readings: list[int | None] = []
    for i in range(p.repeat):
        if since is not None and s.near(since, rep) and rep:
            off = weigh(s, run, 0, _("Take the load off the pan."), since, insist=True)
            if off.reading_mg is None:  # never emptied: the weighings would not be repeats
                readings.extend([None] * (p.repeat - i))
                break
            since = 0
        point = weigh(
            s,
            run,
            rep,
            _("Repeatability {i}/{n}: place {load}.").format(
                i=i + 1, n=p.repeat, load=format_mass_exact(rep)
            ),
            since,
            insist=True,
        )
        readings.append(point.reading_mg)
        since = point.reading_mg
    run.repeat = metrology.repeatability(p.cls, p.e_mg, rep, readings, in_service=p.in_service)
    return since


def check_data(s: Session, run: CheckRun) -> dict[str, Any]:
    """The check's record: its limits, coverage, points, repeatability and eccentricity."""
    p = run.plan
    rp = run.repeat
    return {
        "references": [{"certificate": p.certificate}] if p.certificate else [],
        "limits": "in-service" if p.in_service else "initial",
        # |error| + rounding_mg is what was judged against each limit
        "rounding": p.rounding,
        "rounding_mg": str(p.rounding_mg),
        "coverage": {
            "targets": [[t.name, t.load_mg, t.low_mg, t.high_mg] for t in p.targets],
            "missing": [t.name for t in run.uncovered],
        },
        "columns": POINT_COLUMNS,
        "points": [point_json(pt) for pt in run.points],
        "eccentricity": [point_json(pt) for pt in run.eccentric],
        "repeatability": None
        if rp is None
        else {
            "load_mg": rp.load_mg,
            "readings_mg": list(rp.readings),
            "spread_mg": rp.spread_mg,
            "limit_mg": str(rp.limit_mg),
            "pass": rp.passed,
        },
        "correction": s.state.correction.to_json() if s.state.correction else None,
    }
