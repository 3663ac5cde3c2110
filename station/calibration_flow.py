"""The guided calibration as plain Python: a run's session over a console and a scale link.

The steps (:mod:`station.calibration_steps`: zero and span; :mod:`station.calibration_check`)
talk to the technician through a :class:`Console` (a line, an instruction to carry out, a
reading to accept) and to the scale through a :class:`ScalePort` (a weight now, a command, the
frames the scale sends by itself); they return an :class:`Outcome` — what to record, what to
put in force, why a span was refused — or raise :class:`Stopped` (one line for people and a
sysexits code) when nothing is to be recorded. :func:`record` writes an outcome to the journal
and the state file. ``station calibrate`` is a click shell over this. Waits go through a
:class:`Clock`, so a test drives them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from common.exits import EX_FAIL, EX_IOERR, EX_UNAVAILABLE
from common.i18n import _
from common.units import format_mass_exact, format_number
from drivers.base import PortError, Reading, ScaleError
from drivers.scale import Ack, Command, Reply, ScaleProtocol
from drivers.scale.link import supports

from .calibration import (
    CalibrationState,
    Correction,
    save_state,
)
from .clock import ClockStatus, boot_id
from .config import ScaleSection
from .store import Store, StoreError

__all__ = [
    "Answer",
    "Clock",
    "Console",
    "NoLoad",
    "Outcome",
    "ScalePort",
    "Session",
    "SpanOutcome",
    "Stopped",
    "ZeroOutcome",
    "grams",
    "other_scale_warning",
    "record",
    "settled_or_stopped",
    "value_of",
]

MAX_DATA = 4000  # the wire refuses text fields above 4096 characters
OUT_OF_RANGE_S = 1.0  # over or under range this long: that is the load, not a passing swing
POLL_S = 0.05  # between two readings while waiting for the pan to settle


# ---------------------------------------------------------------------------- the interfaces


class Answer(Enum):
    """What the technician says of a reading."""

    ACCEPT = "accept"
    AGAIN = "again"  # take the reading again
    ABORT = "abort"


class Console(Protocol):
    """The technician's side of a run: a terminal, or a script in a test."""

    def show(self, text: str) -> None:
        """One line to read."""

    def live(self, text: str) -> None:
        """The weight now, replaced by the next one (a console may ignore it)."""

    def ready(self, text: str) -> bool:
        """An instruction to carry out: True once done, False to abort the run."""

    def accept(self, text: str) -> Answer:
        """A reading to accept, take again or abort on."""


class ScalePort(Protocol):
    """The scale's link as calibration uses it, opened by the caller
    (:class:`drivers.scale.link.ScaleLink` is one).

    ``reading`` and ``exchange`` raise :class:`~drivers.base.ScaleTimeout`,
    :class:`~drivers.base.ScaleRefused`, :class:`~drivers.base.ScaleError` or
    :class:`~drivers.base.PortError`; ``read_frame`` returns the next reply the scale sends by
    itself before ``deadline`` (on the session's :class:`Clock`), None when none came, and
    raises ScaleRefused for an error reply."""

    @property
    def protocol(self) -> ScaleProtocol: ...

    def reading(self, stable: bool = False, timeout: float | None = None) -> Reading: ...

    def exchange(self, command: Command, timeout: float | None = None) -> Reply: ...

    def read_frame(self, deadline: float) -> Reply | None: ...


@dataclass(frozen=True, slots=True)
class Clock:
    """Time as the waits see it: ``now`` in seconds (monotonic) and ``pause``."""

    now: Callable[[], float] = time.monotonic
    pause: Callable[[float], None] = time.sleep


class Stopped(Exception):
    """The run stops and nothing is recorded: ``message`` for people, ``code`` to exit with."""

    def __init__(self, message: str, code: int = EX_FAIL) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class NoLoad(Exception):
    """No stable weight as asked within the wait; ``last`` is the last reading seen."""

    def __init__(self, last: Reading | None) -> None:
        super().__init__("no load")
        self.last = last


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """A finished step: the journal record's ``data`` and what it changes in force.

    ``in_force``: ``correction`` becomes the calibration in force (None: the scale's own
    adjustment, nothing to correct); ``verifies``: the run is the last passed verification."""

    step: str
    verdict: str
    data: dict[str, Any]
    correction: Correction | None = None
    in_force: bool = False
    verifies: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ZeroOutcome(Outcome):
    value_mg: int | None  # the empty pan after zeroing (None: out of range)
    limit_mg: Decimal  # ±0.25 e

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


@dataclass(frozen=True, slots=True, kw_only=True)
class SpanOutcome(Outcome):
    method: str  # "scale" (its own adjustment) or "station" (a gain)
    reason: str | None = None  # why refused
    check_mg: int | None = None  # the reference's rise, corrected
    zero_mg: int | None = None  # the empty pan, when ZERO should be pressed before weighing


# ---------------------------------------------------------------------------- for people


def grams(mg: int | Decimal | None, signed: bool = False) -> str:
    """Exact grams for errors and limits: ``2500`` → ``'2.5 g'``, signed ``'+2.5 g'``."""
    if mg is None:
        return "—"
    value = (Decimal(mg) / 1000).normalize()
    exponent = value.as_tuple().exponent
    places = max(0, -exponent) if isinstance(exponent, int) else 0
    text = format_number(value, places)
    return f"{'+' if signed and value > 0 else ''}{text} g"


# ---------------------------------------------------------------------------- the session


@dataclass
class Session:
    """One calibration run: the scale's settings, its link, the technician, the state in force.

    ``unattended`` (``--yes``): no questions, each step waits for the load it asked for."""

    console: Console
    scale: ScalePort
    settings: ScaleSection
    technician: str
    state: CalibrationState
    unattended: bool = False
    wait: float = 120.0
    clock: Clock = field(default_factory=Clock)
    identity: dict[str, str] = field(default_factory=dict)

    @property
    def division(self) -> int:
        return self.settings.division or 1000

    def supports(self, command: Command) -> bool:
        return supports(self.scale.protocol, command)

    # -- talking to the technician ------------------------------------------------------------
    def say(self, text: str) -> None:
        self.console.show(text)

    def ask(self, text: str) -> None:
        """An instruction: unattended, said; else wait for the technician (or their abort)."""
        if self.unattended:
            self.console.show(text)
        elif not self.console.ready(text):
            raise Stopped(_("Aborted: nothing recorded."), EX_FAIL)

    def accept(self, text: str) -> bool:
        """Accept (True) or take again (False); an abort stops the run."""
        if self.unattended:
            return True
        answer = self.console.accept(text)
        if answer is Answer.ABORT:
            raise Stopped(_("Aborted: nothing recorded."), EX_FAIL)
        return answer is Answer.ACCEPT

    def describe(self, reading: Reading, corrected: bool) -> str:
        if reading.overload:
            return _("OVERLOAD")
        if reading.underload:
            return _("UNDERLOAD")
        value = self.value(reading, corrected)
        if value is None:
            return "---"
        flag = _("stable") if reading.stable else _("motion")
        return f"{format_mass_exact(value)}  {flag}"

    # -- readings -----------------------------------------------------------------------------
    def value(self, reading: Reading, corrected: bool) -> int | None:
        if reading.net_mg is None:
            return None
        if corrected:
            return self.state.applied().apply(reading).net_mg
        return reading.net_mg

    def read(self) -> Reading | None:
        """One weight now, or None when the scale is busy or silent for a moment."""
        timeout = max(1.0, 2 * self.settings.reply_timeout)
        try:
            return self.scale.reading(False, timeout)
        except ScaleError:  # busy, silent for a moment, or an answer without a weight
            return None
        except PortError as exc:
            raise Stopped(_("Scale disconnected: {error}").format(error=exc), EX_IOERR) from exc

    def settle(
        self, expected: int | None, *, corrected: bool, must_move: bool, since: int | None
    ) -> Reading:
        """The next stable weight (near ``expected`` when given). With ``must_move``, the pan
        must first move (motion, or a change from ``since``): the load asked for is a new one.
        An overload or underload is returned once it lasts (a saturated pan stays there)."""
        clock = self.clock
        deadline = clock.now() + self.wait
        moved = not must_move
        last: Reading | None = None
        out_since: float | None = None
        tolerance = 20 * self.division
        while clock.now() < deadline:
            reading = self.read()
            if reading is None:
                continue
            last = reading
            self.console.live(self.describe(reading, corrected))
            if reading.overload or reading.underload:
                # a moving pan may cross the range for an instant; a saturated one stays there
                out_since = clock.now() if out_since is None else out_since
                if clock.now() - out_since >= OUT_OF_RANGE_S:
                    return reading
                moved = True
                clock.pause(POLL_S)
                continue
            out_since = None
            value = self.value(reading, corrected)
            if value is None:
                continue
            if not reading.stable or (since is not None and abs(value - since) > tolerance):
                moved = True
            if reading.stable and moved and (expected is None or self.near(value, expected)):
                return reading
            clock.pause(POLL_S)
        raise NoLoad(last)

    def near(self, value: int, expected: int) -> bool:
        """Close enough to be the load asked for (not a judgement of accuracy)."""
        return abs(value - expected) <= max(expected // 10, 50 * self.division)

    def take(
        self,
        prompt: str,
        expected: int | None,
        *,
        corrected: bool,
        since: int | None,
        must_move: bool = True,
        insist: bool = False,
    ) -> Reading:
        """Ask for a load, wait for it to settle, let the technician accept the reading.

        Unattended, the wait is for ``expected`` after the pan moved; attended, the first
        stable reading is shown for the technician to judge, unless ``insist``: then the
        load asked for is waited for either way (a load left on the pan is no new weighing)."""
        wait_for = self.unattended or insist
        while True:
            self.ask(prompt)
            reading = self.settle(
                expected if wait_for else None,
                corrected=corrected,
                must_move=must_move and wait_for,
                since=since,
            )
            shown = self.describe(reading, corrected)
            if self.accept(_("Reading: {reading}.").format(reading=shown)):
                if self.unattended:
                    self.say("  " + _("Reading: {reading}").format(reading=shown))
                return reading

    # -- the scale's own commands -------------------------------------------------------------
    def command(self, command: Command, timeout: float = 5.0) -> Reply:
        try:
            return self.scale.exchange(command, timeout)
        except PortError as exc:
            raise Stopped(_("Scale disconnected: {error}").format(error=exc), EX_IOERR) from exc

    def identify(self) -> None:
        """Scale identity for the record: I2 (model, capacity) and I4 (serial) when it has them."""
        sc = self.settings
        for key, command in (("model", Command.DESCRIBE), ("serial", Command.IDENTIFY)):
            if not self.supports(command):
                continue
            try:
                reply = self.scale.exchange(command, max(1.0, sc.reply_timeout))
            except (ScaleError, PortError):
                continue
            if isinstance(reply, Ack) and reply.params:
                self.identity[key] = " ".join(reply.params)
        serial = self.identity.get("serial")
        self.identity["id"] = sc.scale_id or (f"{sc.protocol}:{serial}" if serial else sc.protocol)
        if self.state.other_scale(self.identity["id"]):
            self.say(other_scale_warning(self.state, self.identity["id"]))


def other_scale_warning(state: CalibrationState, scale_id: str) -> str:
    """A station-side gain made on another scale: one line that says so and what to do."""
    gain = state.applied().gain
    return _(
        "Warning: the station-side gain in force ({gain:.5f}) was set on scale {old}, but this "
        "is {new}: it does not fit this scale. Run station calibrate span for it."
    ).format(gain=float(gain), old=state.in_force_scale, new=scale_id)


@contextmanager
def settled_or_stopped(s: Session) -> Iterator[None]:
    """A wait with no answer of its own: the scale gave no stable weight, the run stops."""
    try:
        yield
    except NoLoad as exc:
        raise Stopped(
            _(
                "No stable weight from the scale within {s:g} s: is it on, connected and "
                "settled? Nothing changed."
            ).format(s=s.wait),
            EX_UNAVAILABLE,
        ) from exc


def value_of(correction: Correction | None, reading: Reading) -> int | None:
    """The weight ``correction`` makes of ``reading`` (None: out of range or no weight)."""
    if reading.overload or reading.underload:
        return None
    return (correction or Correction()).apply(reading).net_mg


# ---------------------------------------------------------------------------- the record


def record(
    s: Session, outcome: Outcome, store_path: Path, station_id: str, data_dir: Path
) -> dict[str, Any]:
    """Append the run to the journal, then save what it puts in force or verifies; returns the
    journal row. Raises :class:`Stopped` (EX_IOERR) when the journal or the state cannot be
    written."""
    sc = s.settings
    body: dict[str, Any] = {
        "step": outcome.step,
        "verdict": outcome.verdict,
        "technician": s.technician,
        "scale": s.identity,
        "metrology": {
            "class": sc.accuracy_class,
            "max_mg": sc.capacity,
            "e_mg": sc.e,
            "d_mg": sc.division,
            "min_mg": sc.minimum_load,
        },
        **outcome.data,
    }
    text = json.dumps(body, sort_keys=True, ensure_ascii=False)
    if len(text) > MAX_DATA:  # keep the record acceptable to the wire: drop the raw replies
        body.pop("replies", None)
    try:
        with Store(store_path, station_id) as store:
            row = store.append(
                "calibration",
                mono_ns=time.monotonic_ns(),
                boot_id=boot_id(),
                clock_synced=ClockStatus().synced(),
                operator=s.technician,
                scale_id=s.identity.get("id"),
                calibration_id=s.state.in_force_id,  # what was in force during the run
                reason=outcome.step,
                data=body,
            )
    except (StoreError, OSError, ValueError) as exc:
        raise Stopped(_("Cannot write the journal: {error}").format(error=exc), EX_IOERR) from exc
    changes: dict[str, Any] = {}
    if outcome.in_force:
        changes.update(
            in_force_id=row["uuid"],
            in_force_at=row["recorded_at"],
            in_force_step=outcome.step,
            correction=outcome.correction,
            # a zero keeps the gain of the span before it: that gain's scale stays its scale
            in_force_scale=(s.state.in_force_scale if outcome.step == "zero" else None)
            or s.identity.get("id"),
        )
    if outcome.verifies:
        changes.update(
            verified_id=row["uuid"],
            verified_at=row["recorded_at"],
            verified_step=outcome.step,
            failed_id=None,
            failed_at=None,
        )
    elif outcome.step == "check" and outcome.verdict == "fail":
        # out of its limits: due now, said by doctor, status and the panel until put right
        changes.update(failed_id=row["uuid"], failed_at=row["recorded_at"])
    if changes:
        state = replace(s.state, **changes)
        try:
            save_state(data_dir, state)
        except OSError as exc:
            raise Stopped(
                _("Cannot save the calibration state: {error}").format(error=exc), EX_IOERR
            ) from exc
        s.state = state
    return row
