"""The panel's language: one light-and-beep pattern per outcome, each refusal with its own beeps."""

from __future__ import annotations

from drivers.panel import Panel, Pattern, beeps

from .outcomes import Outcome

__all__ = ["CALIBRATION_DUE", "NOT_READY", "PATTERNS", "PanelSignaller"]

S, L = 0.08, 0.5  # short and long beep, seconds
_GAP = 0.12


def _seq(*ons: float) -> tuple[tuple[float, float], ...]:
    return tuple((on, _GAP) for on in ons)


PATTERNS: dict[Outcome, Pattern] = {
    # yes: green (amber for a void), short sounds
    Outcome.RECORDED: Pattern("green", on_time=0.8, off_time=0.1, beeps=beeps(1, 0.15, 0.05)),
    Outcome.VOIDED: Pattern("amber", on_time=1.0, off_time=0.1, beeps=_seq(L)),
    Outcome.VISIT_OPENED: Pattern("green", on_time=0.15, count=2, beeps=_seq(0.04)),
    Outcome.VISIT_CLOSED: Pattern("green", on_time=0.15, count=3, beeps=_seq(0.04, 0.04)),
    Outcome.CATEGORY_SET: Pattern("green", on_time=0.2, beeps=_seq(0.04)),
    Outcome.CONTAINER_SET: Pattern("green", on_time=0.2, beeps=_seq(0.04)),
    Outcome.OPERATOR_SET: Pattern("green", on_time=0.2, beeps=_seq(0.04)),
    Outcome.REFERRER_SET: Pattern("green", on_time=0.2, beeps=_seq(0.04)),
    Outcome.PROFILE_SET: Pattern("green", on_time=0.2, beeps=_seq(0.04)),
    Outcome.LABEL_READ: Pattern("green", on_time=0.2, beeps=_seq(0.04)),
    Outcome.SAMPLED: Pattern("green", on_time=0.2, count=3, beeps=_seq(0.04, 0.04, 0.04)),
    Outcome.TARED: Pattern("green", on_time=0.2, count=2, beeps=_seq(0.04)),
    Outcome.ZEROED: Pattern("green", on_time=0.2, count=2, beeps=_seq(0.04)),
    # no: red, and a beep pattern of its own for each cause
    Outcome.UNSTABLE: Pattern("red", count=3, beeps=_seq(S, S, S)),
    Outcome.OVERLOAD: Pattern("red", count=3, beeps=_seq(L, L, L)),
    Outcome.UNDERLOAD: Pattern("red", count=3, beeps=_seq(L, L)),
    Outcome.BELOW_MINIMUM: Pattern("red", count=2, beeps=_seq(S, S)),
    Outcome.BELOW_MIN_LOAD: Pattern("red", count=2, beeps=_seq(S, S, S, L)),
    Outcome.ABOVE_CAPACITY: Pattern("red", count=3, beeps=_seq(L, S)),
    Outcome.NO_BENEFICIARY: Pattern("red", count=2, beeps=_seq(L, S, S)),
    Outcome.NO_CATEGORY: Pattern("red", count=2, beeps=_seq(S, L)),
    Outcome.NO_SCALE: Pattern("red", count=5, on_time=0.1, off_time=0.1, beeps=_seq(S, S, S, S)),
    Outcome.CANCELLED: Pattern("red", count=2, beeps=_seq(L, L, S)),
    Outcome.SAME_ITEM: Pattern("red", count=2, beeps=_seq(S, S, L)),
    Outcome.SCALE_REFUSED: Pattern("red", count=2, beeps=_seq(L, S, L)),
    Outcome.MISREAD: Pattern("red", count=1, beeps=_seq(0.2, 0.2)),
    Outcome.UNKNOWN_CODE: Pattern("red", count=1, beeps=_seq(0.3)),
    Outcome.NOTHING_TO_VOID: Pattern("red", count=1, beeps=_seq(S, L, S)),
    Outcome.STORE_ERROR: Pattern("red", count=None, beeps=_seq(L, L, L, L)),
    Outcome.DISK_FULL: Pattern("red", count=None, beeps=_seq(L, S, S, S)),
}

NOT_READY = Pattern("amber", steady=True)  # the scale is not answering
FAULT = Pattern("red", steady=True)  # the store cannot be written: call the technician
# at start-up, when the scale's calibration is overdue: six slow amber blinks, short-long-long
CALIBRATION_DUE = Pattern("amber", on_time=0.6, off_time=0.4, count=6, beeps=_seq(S, L, L))


class PanelSignaller:
    """Plays :data:`PATTERNS` on a :class:`~drivers.panel.Panel`. Between signals: red steady
    while the store fails, amber steady while the scale is away, dark when all is well."""

    def __init__(self, panel: Panel) -> None:
        self.panel = panel
        self._ready = False
        self._fault = False

    def show(self, outcome: Outcome) -> None:
        self.panel.signal(PATTERNS[outcome])

    def ready(self, ok: bool) -> None:
        self._ready = ok
        self._idle()

    def fault(self, on: bool) -> None:
        if on != self._fault:
            self._fault = on
            self._idle()

    def _idle(self) -> None:
        self.panel.idle(FAULT if self._fault else None if self._ready else NOT_READY)
