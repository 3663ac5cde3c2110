"""What calibration says to people: a step's result, the check's table, the history's lines and
the due date (``station calibrate``, ``station status`` and ``station doctor`` print these)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from common.i18n import _
from common.units import format_mass_exact, format_number

from . import metrology
from .calibration import load_state
from .calibration_check import NO_WEIGHT, OVERLOAD, UNDERLOAD, CheckRun, positions
from .calibration_flow import SpanOutcome, ZeroOutcome, grams
from .config import Config

__all__ = [
    "check_lines",
    "due_line",
    "history_line",
    "span_lines",
    "span_refusal",
    "summary",
    "target_words",
    "zero_failure",
    "zero_line",
]


def zero_line(outcome: ZeroOutcome, seq: int) -> str:
    return _("Zero {verdict}: empty pan reads {value} (record {seq}).").format(
        verdict=_("done") if outcome.passed else _("FAILED"),
        value=grams(outcome.value_mg, signed=True),
        seq=seq,
    )


def zero_failure(outcome: ZeroOutcome) -> str:
    return _("The zero is not within ±0.25 e ({limit}): try again on a steady table.").format(
        limit=grams(outcome.limit_mg)
    )


def span_lines(outcome: SpanOutcome, seq: int) -> list[str]:
    """A span done (a refused one is :func:`span_refusal`)."""
    if outcome.method == "scale":
        return [
            _(
                "Span adjusted by the scale itself (record {seq}). Now run: station calibrate check"
            ).format(seq=seq)
        ]
    assert outcome.correction is not None and outcome.check_mg is not None
    gain = outcome.correction.to_json()
    lines = [
        _(
            "Span done: gain {gain} (exact {exact}); the reference now reads {value} above the "
            "empty pan (record {seq}). Now run: station calibrate check"
        ).format(
            gain=gain["gain_decimal"],
            exact=gain["gain"],
            value=format_mass_exact(outcome.check_mg),
            seq=seq,
        )
    ]
    if outcome.zero_mg is not None:
        lines.append(
            _(
                "The empty pan reads {value}: press the scale's ZERO key (→0←) before weighing; "
                "the correction keeps the scale's own zero."
            ).format(value=format_mass_exact(outcome.zero_mg))
        )
    return lines


def span_refusal(outcome: SpanOutcome, seq: int) -> str:
    return _("Span refused, nothing changed: {reason} (record {seq})").format(
        reason=outcome.reason, seq=seq
    )


def check_lines(run: CheckRun, seq: int) -> list[str]:
    """The check for people: its limits, one row per point, repeatability, the verdict."""
    p = run.plan
    limits = _("in service (2 × mpe)") if p.in_service else _("initial verification")
    out = [
        _("OIML R 76 class {cls}, e = {e}, limits: {limits}").format(
            cls=p.cls, e=grams(p.e_mg), limits=limits
        )
    ]
    if p.rounding_mg:
        out.append(
            _(
                "Rounding: |error| + d/2 ({half}) is judged against the limit (the display's "
                "rounding, not corrected with small weights)."
            ).format(half=grams(p.rounding_mg))
        )
    else:
        out.append(_("Rounding: errors as read, not corrected for rounding."))
    out.extend(_table(run))
    out.extend(_why(run))
    if run.repeat is not None:
        rp = run.repeat
        out.append(
            _(
                "Repeatability at {load}: spread {spread} over {n} weighings, limit {limit}: "
                "{result}"
            ).format(
                load=format_mass_exact(rp.load_mg),
                spread=grams(rp.spread_mg),
                n=len(rp.readings),
                limit=grams(rp.limit_mg),
                result=_("pass") if rp.passed else _("FAIL"),
            )
        )
    words = {"pass": _("PASS"), "fail": _("FAIL"), "incomplete": _("INCOMPLETE")}
    out.append(_("Overall: {verdict} (record {seq})").format(verdict=words[run.verdict], seq=seq))
    if run.verdict == "incomplete":
        out.append(
            _(
                "Every point is within its limit, but the loads do not cover the range (R 76: "
                "zero to Max, with Min and the loads where the mpe changes), so this check does "
                "not count as a verification: the due date is unchanged. Missing:"
            )
        )
        out.extend("  " + target_words(t) for t in run.uncovered)
    return out


def _why(run: CheckRun) -> list[str]:
    """Why each point without a reading failed, in words: an empty cell says nothing."""
    lines: list[str] = []
    gain = run.correction.gain if run.correction is not None else None
    top = next((t.load_mg for t in run.plan.targets if t.name == "max"), None)
    for p in run.points + run.eccentric:
        if p.reading_mg is not None or not p.note:
            continue
        load = format_mass_exact(p.load_mg)
        if p.note == OVERLOAD:
            text = _("{load}: FAIL, the scale showed OVERLOAD (no weight).").format(load=load)
            if gain is not None and gain < 1 and top is not None:
                # its display blanks above Max + 9 e of its own, reached before the true Max
                limit = (top + 9 * run.plan.e_mg) * gain
                text += " " + _(
                    "It reads {pct} heavy (station-side gain {gain:.5f}): its own display "
                    "blanks above Max + 9 e, which a true load of about {limit} already reaches, "
                    "and no station-side gain can show what the scale does not send. Adjust the "
                    "scale itself (its span adjustment), then run station calibrate check again."
                ).format(
                    pct=format_number(float((1 / gain - 1) * 100), 2) + " %",
                    gain=float(gain),
                    limit=format_mass_exact(int(limit)),
                )
            else:
                text += " " + _(
                    "Check that nothing else is on the pan, that the load is within the "
                    "capacity, and the scale's own range setting."
                )
        elif p.note == UNDERLOAD:
            text = _(
                "{load}: FAIL, the scale showed UNDERLOAD: is the pan in place, and was the "
                "scale zeroed with an empty pan?"
            ).format(load=load)
        elif p.note == NO_WEIGHT:
            text = _(
                "{load}: FAIL, no stable weight near it came within the wait: the load was not "
                "placed, or the scale never settled (draught, vibration)."
            ).format(load=load)
        else:
            continue
        lines.append(text)
    return lines


def _table(run: CheckRun) -> list[str]:
    header = (_("Load"), _("Reading"), _("Error"), _("mpe"), _("Limit"), _("Result"))
    rows: list[tuple[str, ...]] = []
    where = positions()
    for p in run.points + run.eccentric:
        load = format_mass_exact(p.load_mg) + (f" ({where[p.position]})" if p.position else "")
        rows.append(
            (
                load,
                format_mass_exact(p.reading_mg) if p.reading_mg is not None else "—",
                grams(p.error_mg, signed=True),
                "±" + grams(p.mpe_mg),
                "±" + grams(p.limit_mg),
                _("pass") if p.passed else _("FAIL"),
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in [header, *rows]
    ]


def target_words(t: metrology.Target) -> str:
    """A missing target, for people: what it is and the loads that would do."""
    span = _("a load from {low} to {high}").format(
        low=format_mass_exact(t.low_mg), high=format_mass_exact(t.high_mg)
    )
    if t.name == "min":
        what = _("near Min ({load})").format(load=format_mass_exact(t.load_mg))
    elif t.name == "max":
        what = _("the top of the range (Max {load})").format(load=format_mass_exact(t.load_mg))
    else:
        what = _("where the mpe changes ({n} e = {load})").format(
            n=t.name.removesuffix("e"), load=format_mass_exact(t.load_mg)
        )
    return f"{span}: {what}"


def history_line(row: dict[str, Any]) -> str:
    """One calibration record of the journal, on one line."""
    data = row["data"]
    return (
        f"{row['seq']:>6}  {row['recorded_at'][:16].replace('T', ' ')}  "
        f"{row['reason'] or '?':<5}  {data.get('verdict', '?'):<10}  "
        f"{row['operator'] or '-'}  {row['scale_id'] or '-'}  {summary(data)}"
    )


def summary(data: dict[str, Any]) -> str:
    """What a calibration record did, in a few words."""
    if data.get("reason"):
        return str(data["reason"])
    correction = data.get("correction")
    if data.get("step") == "span":
        if data.get("method") == "scale":
            return _("adjusted by the scale ({command})").format(command=data.get("command"))
        if correction and str(correction.get("offset_mg", "0")) != "0":  # an earlier version's
            return _("gain {gain}, offset {offset} mg").format(
                gain=correction["gain_decimal"], offset=correction["offset_mg"]
            )
        if correction:
            return _("gain {gain}").format(gain=correction["gain_decimal"])
    if data.get("step") == "check":
        points = (data.get("points") or []) + (data.get("eccentricity") or [])
        failed = sum(1 for p in points if not p[5])
        text = _("{n} points, {failed} out of limits").format(n=len(points), failed=failed)
        uncovered = (data.get("coverage") or {}).get("missing")
        if uncovered:
            text += ", " + _("range not covered: {names}").format(names=", ".join(uncovered))
        return text
    return ""


def due_line(config: Config, now: datetime | None = None) -> str:
    """One line for people: last verification and due date (used by `station status`)."""
    try:
        state = load_state(config.station.data_dir)
    except ValueError as exc:
        return _("calibration: state unreadable ({error})").format(error=exc)
    interval = config.scale.calibration_interval_days
    if state.failed:
        return _(
            "calibration: the last check FAILED on {at}: the scale is out of its limits; adjust "
            "it (station calibrate span) and check it again"
        ).format(at=(state.failed_at or "")[:10])
    due = state.due(interval)
    if due is None:
        return _("calibration: never verified on this station: run station calibrate")
    late = state.overdue(interval, now or datetime.now(UTC))
    text = _("calibration: last verified {at} ({step}), due {due}").format(
        at=(state.verified_at or "")[:10], step=state.verified_step, due=due.date().isoformat()
    )
    return text + (" — " + _("OVERDUE") if late else "")
