"""The adjusting steps of a calibration run: zero the empty scale, set its span.

Each step drives a :class:`~station.calibration_flow.Session` and returns an outcome to record
(:func:`station.calibration_flow.record`), or raises :class:`~station.calibration_flow.Stopped`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from common.exits import EX_UNAVAILABLE, EX_USAGE
from common.i18n import _
from common.units import format_mass_exact
from drivers.base import Reading, ScaleError, ScaleRefused
from drivers.scale import Command

from .calibration import Correction, Implausible, minimum_reference_mg
from .calibration_adjust import adjust_on_scale, adjustable
from .calibration_flow import (
    POLL_S,
    NoLoad,
    Session,
    SpanOutcome,
    Stopped,
    ZeroOutcome,
    settled_or_stopped,
    value_of,
)
from .config import ScaleSection

__all__ = [
    "span",
    "span_reference_problem",
    "zero",
    "zero_key",
    "zero_on_scale",
]


# ---------------------------------------------------------------------------- zero


def zero(s: Session) -> ZeroOutcome:
    """Zero the empty scale: its own zero command, else the technician presses its ZERO key;
    the empty pan must then read within ±0.25 e."""
    with settled_or_stopped(s):
        try:
            empty = s.take(_("Empty the pan."), None, corrected=False, since=None, must_move=False)
        except NoLoad as exc:
            raise Stopped(
                _("No stable weight within {s:g} s: is the scale settled?").format(s=s.wait),
                EX_UNAVAILABLE,
            ) from exc
        if empty.overload or empty.underload or empty.net_mg is None:
            raise Stopped(
                _("The scale is out of range with an empty pan: check the pan is in place.")
            )
        limit = Decimal(s.settings.e or s.division) / 4  # R 76: zero within ±0.25 e
        # the zero is the scale's own: a correction in force keeps its gain only (an offset
        # stored by an earlier version would shift every weight once the scale re-zeros)
        old = s.state.correction
        new = None if old is None or old.gain == 1 else Correction(0, old.gain, old.step_mg)
        data: dict[str, Any] = {"before_mg": empty.net_mg}
        if s.supports(Command.ZERO):
            zero_on_scale(s)
            after = s.settle(None, corrected=False, must_move=False, since=None)
            data["method"] = "scale"
        else:
            after = zero_key(s, new, limit)
            data["method"] = "scale key"
    value = value_of(new, after)
    data["after_mg"] = value
    if new != old:
        data["correction"] = new.to_json() if new is not None else None
    ok = value is not None and abs(value) <= limit
    return ZeroOutcome(
        step="zero",
        verdict="pass" if ok else "fail",
        data=data,
        correction=new,
        in_force=ok and new != old,
        value_mg=value,
        limit_mg=limit,
    )


def zero_key(s: Session, correction: Correction | None, limit: Decimal) -> Reading:
    """A scale without a zero command: the technician presses its ZERO key. The next stable
    reading is the result; unattended, wait (up to the wait) for one within ``limit``."""
    s.ask(_("Press the scale's ZERO key (→0←) with the pan empty."))
    deadline = s.clock.now() + s.wait
    last: Reading | None = None
    while s.clock.now() < deadline:
        reading = s.read()
        if reading is None:
            continue
        s.console.live(s.describe(reading, False))
        value = value_of(correction, reading)
        if reading.stable and value is not None:
            last = reading
            if not s.unattended or abs(value) <= limit:
                s.say("  " + _("Reading: {reading}").format(reading=s.describe(reading, False)))
                return reading
        s.clock.pause(POLL_S)
    s.say("  " + _("The empty pan did not come to zero within {s:g} s.").format(s=s.wait))
    if last is None:
        raise NoLoad(None)
    return last


def zero_on_scale(s: Session, tries: int = 5) -> None:
    """The scale's own zero; refused while the pan moves, so wait for it to settle and retry."""
    for attempt in range(tries):
        try:
            s.command(Command.ZERO)
            return
        except ScaleRefused as exc:
            if attempt == tries - 1:
                raise Stopped(_("The scale refused to zero: {reason}").format(reason=exc)) from exc
            s.settle(None, corrected=False, must_move=False, since=None)
        except ScaleError as exc:
            raise Stopped(
                _("The scale did not zero: {reason}").format(reason=exc), EX_UNAVAILABLE
            ) from exc


# ---------------------------------------------------------------------------- span


def span_reference_problem(settings: ScaleSection, reference_mg: int) -> str | None:
    """Why ``reference_mg`` cannot set the span of this scale (None: it can)."""
    if settings.capacity is not None and reference_mg > settings.capacity:
        return _("The reference {ref} is above the capacity {max}.").format(
            ref=format_mass_exact(reference_mg), max=format_mass_exact(settings.capacity)
        )
    least = minimum_reference_mg(settings.capacity, settings.division)
    if reference_mg < least:
        basis = _("Max / 3") if settings.capacity is not None else _("1000 d")
        return _(
            "The reference {ref} is too small to set the gain: use a mass of at least {least} "
            "({basis}), near the capacity is best."
        ).format(ref=format_mass_exact(reference_mg), least=format_mass_exact(least), basis=basis)
    return None


def span(
    s: Session, reference_mg: int, certificate: str | None = None, mass_class: str | None = None
) -> SpanOutcome:
    """Adjust the span with a reference mass: the scale's own adjustment when its protocol has
    one (MT-SICS C2, A&D CAL, Kern KCP JZ/JG/JS), else a station-side gain about the scale's own
    zero. A span that would make things worse is refused (recorded, nothing in force)."""
    problem = span_reference_problem(s.settings, reference_mg)
    if problem is not None:
        raise Stopped(problem, EX_USAGE)
    refs = [{"mass_mg": reference_mg, "certificate": certificate, "class": mass_class}]
    with settled_or_stopped(s):
        s.take(_("Empty the pan."), None, corrected=False, since=None, must_move=False)
        if adjustable(s):
            data = adjust_on_scale(s, reference_mg)
            if data is not None:
                return SpanOutcome(
                    step="span",
                    verdict="pass",
                    data={"references": refs, **data, "correction": None},
                    correction=None,
                    in_force=True,
                    verifies=True,
                    method="scale",
                )
        return span_station(s, reference_mg, refs)


def span_station(s: Session, ref: int, refs: list[dict[str, Any]]) -> SpanOutcome:
    """The station-side gain: the empty pan, then the reference's rise from it."""
    if s.supports(Command.ZERO):
        zero_on_scale(s)
    try:
        zero_reading = s.settle(None, corrected=False, must_move=False, since=None)
    except NoLoad as exc:
        raise Stopped(
            _("No stable weight with the empty pan within {s:g} s.").format(s=s.wait),
            EX_UNAVAILABLE,
        ) from exc
    zero_mg = zero_reading.net_mg
    if zero_mg is None:
        raise Stopped(_("The scale is out of range with an empty pan: check the pan is in place."))
    # the station corrects the gain only, about the scale's own zero: the empty pan's reading
    # serves to measure the reference's rise, never as a stored offset (the scale re-zeros)
    s.say("  " + _("Empty pan: {value}").format(value=format_mass_exact(zero_mg)))
    data: dict[str, Any] = {"method": "station", "references": refs, "zero_mg": zero_mg}
    try:
        loaded = s.take(
            _("Place the reference mass {mass} in the centre of the pan.").format(
                mass=format_mass_exact(ref)
            ),
            None,
            corrected=False,
            since=zero_mg,
        )
    except NoLoad as exc:
        last = exc.last.net_mg if exc.last is not None else None
        return refused(
            data,
            _(
                "the reading did not change after placing the reference mass (still {value}): "
                "is the mass on the pan, and is this the scale the station reads?"
            ).format(value=format_mass_exact(last) if last is not None else "---"),
        )
    if loaded.overload or loaded.underload or loaded.net_mg is None:
        return refused(
            {**data, "loaded": "overload"},
            _(
                "the scale is saturated (over its range) with the reference mass: check the "
                "mass is below the scale's capacity and nothing else is on the pan."
            ),
        )
    data["loaded_mg"] = loaded.net_mg
    try:
        correction = Correction.from_points(zero_mg, loaded.net_mg, ref, s.settings.division or 1)
    except Implausible as exc:
        return refused(data, str(exc))
    check = correction.value(loaded.net_mg - zero_mg)
    data.update(correction=correction.to_json(), corrected_mg=check)
    limit = Decimal(s.settings.e or s.division) / 4
    return SpanOutcome(
        step="span",
        verdict="pass",
        data=data,
        correction=correction,
        in_force=True,
        verifies=True,
        method="station",
        check_mg=check,
        zero_mg=zero_mg if abs(correction.value(zero_mg)) > limit else None,
    )


def refused(data: dict[str, Any], reason: str) -> SpanOutcome:
    """A span that would make things worse: recorded with its reason, nothing in force."""
    return SpanOutcome(
        step="span",
        verdict="refused",
        data={**data, "reason": reason},
        method="station",
        reason=reason,
    )
