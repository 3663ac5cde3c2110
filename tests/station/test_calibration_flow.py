"""The calibration flow driven directly: a scripted technician (a Console) on a scripted scale
whose time is a test clock, and on real simulators over a pty through the one scale link."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from common.exits import EX_FAIL, EX_UNAVAILABLE, EX_USAGE
from common.i18n import speaking
from common.units import format_mass_exact
from drivers.base import Reading, ScaleError, ScaleRefused, ScaleTimeout
from drivers.scale import PROTOCOLS, Ack, Command, Reply, ScaleProtocol
from drivers.scale.link import ScaleLink
from drivers.scale.mtsics import SicsRefused
from drivers.sim.scale import ScaleSimulator
from station.calibration import CalibrationState, Correction, history, load_state
from station.calibration_adjust import adjustment_command
from station.calibration_check import check, plan
from station.calibration_flow import Answer, Clock, Session, Stopped, grams, record
from station.calibration_report import check_lines, span_lines, zero_line
from station.calibration_steps import span, span_reference_problem, zero
from station.config import ScaleSection
from station.store import Store
from tests.support.helpers import until

STATION = "ressourcerie-nord-1"


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    with speaking("en"):
        yield


# ---------------------------------------------------------------------------- a scripted scale


class StepClock:
    """Time that passes only when the flow waits or reads."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def pause(self, seconds: float) -> None:
        self.t += seconds

    def clock(self) -> Clock:
        return Clock(self.now, self.pause)


@dataclass
class ScriptedScale:
    """A scale out of adjustment by ``gain`` and ``offset_mg`` on the test clock: a load in
    motion for ``settle_s``, a zero command (when its protocol has one), C2 replies scripted."""

    clock: StepClock
    protocol_name: str = "sma"
    gain: Decimal = Decimal(1)
    offset_mg: int = 0
    step_mg: int = 5_000
    capacity_mg: int = 15_000_000
    settle_s: float = 0.5
    load_mg: int = 0
    zero_mg: int = 0
    moving_until: float = 0.0
    c2: list[Reply | ScaleRefused] = field(default_factory=list)  # read_frame's replies
    c2_first: Reply | ScaleError = field(default_factory=lambda: Ack("C2", "A"))
    later: list[tuple[float, int]] = field(default_factory=list)  # (at, load) to come
    zeros: int = 0

    @property
    def protocol(self) -> ScaleProtocol:
        return PROTOCOLS[self.protocol_name]

    def place(self, mg: int) -> None:
        self.load_mg = mg
        self.moving_until = self.clock.now() + self.settle_s

    def place_later(self, delay: float, mg: int) -> None:
        self.later.append((self.clock.now() + delay, mg))

    def gross(self) -> int:
        shown = Decimal(self.load_mg) * self.gain + self.offset_mg
        return round(shown / self.step_mg) * self.step_mg

    def press_zero(self) -> None:
        self.zero_mg = self.gross()
        self.zeros += 1

    def reading(self, stable: bool = False, timeout: float | None = None) -> Reading:
        self.clock.pause(0.1)  # a reading takes time on the wire
        for at, mg in list(self.later):
            if self.clock.now() >= at:
                self.later.remove((at, mg))
                self.place(mg)
        if self.load_mg > self.capacity_mg:
            return Reading(None, "kg", True, overload=True)
        return Reading(self.gross() - self.zero_mg, "kg", self.clock.now() >= self.moving_until)

    def exchange(self, command: Command, timeout: float | None = None) -> Reply:
        if command is Command.ZERO:
            if self.clock.now() < self.moving_until:
                raise ScaleRefused("Z I")
            self.press_zero()
            return Ack("Z", "A")
        if command is Command.ADJUST_EXTERNAL:
            if isinstance(self.c2_first, ScaleError):
                raise self.c2_first
            return self.c2_first
        if command is Command.IDENTIFY:
            return Ack("I4", "A", ("4711",))
        raise ScaleTimeout("no answer")

    def read_frame(self, deadline: float) -> Reply | None:
        self.clock.pause(0.1)
        if not self.c2:
            self.clock.t = max(self.clock.t, deadline)
            return None
        reply = self.c2.pop(0)
        if isinstance(reply, ScaleRefused):
            raise reply
        return reply


# ---------------------------------------------------------------------------- a scripted technician


Act = Callable[[str], None]


class Technician:
    """A Console that does what it is told on the pan (or what ``instead`` says), and answers
    readings from ``answers`` (then accepts)."""

    def __init__(self, place: Callable[[int], None], zero: Callable[[], None]) -> None:
        self.place = place
        self.zero = zero
        self.lines: list[str] = []  # everything shown and asked, in order
        self.readings: list[str] = []  # the readings offered for acceptance
        self.answers: list[Answer] = []
        self.instead: dict[str, Act | None] = {}  # instruction fragment -> what is done instead
        self.abort_on: str | None = None

    def _do(self, text: str) -> None:
        for fragment, act in self.instead.items():
            if fragment in text:
                if act is not None:
                    act(text)
                return
        mass = re.search(r"(\d+\.\d{3}) kg", text)
        if text.startswith("Press the scale's ZERO key"):
            self.zero()
        elif text.startswith(("Empty the pan", "Take the load off", "The scale asks: take")):
            self.place(0)
        elif mass and re.match(r"(Place|Repeatability|Eccentricity|The scale asks for)", text):
            self.place(int(Decimal(mass.group(1)) * 1_000_000))

    def show(self, text: str) -> None:
        self.lines.append(text)
        self._do(text)  # unattended: the instructions come as lines

    def live(self, text: str) -> None:
        pass

    def ready(self, text: str) -> bool:
        self.lines.append(text)
        if self.abort_on is not None and self.abort_on in text:
            return False
        self._do(text)
        return True

    def accept(self, text: str) -> Answer:
        self.lines.append(text)
        self.readings.append(text)
        return self.answers.pop(0) if self.answers else Answer.ACCEPT


def settings(**extra: object) -> ScaleSection:
    values: dict[str, object] = {"protocol": "sma", "capacity": "15 kg", "e": "5 g"}
    return ScaleSection.model_validate({**values, **extra})


def scripted(
    protocol: str = "sma", *, attended: bool = True, wait: float = 20, **scale: object
) -> tuple[Session, ScriptedScale, Technician]:
    clock = StepClock()
    sc = ScriptedScale(clock, protocol, **scale)  # type: ignore[arg-type]
    tech = Technician(sc.place, sc.press_zero)
    s = Session(
        tech,
        sc,
        settings(protocol=protocol),
        "Alice",
        CalibrationState(),
        unattended=not attended,
        wait=wait,
        clock=clock.clock(),
    )
    return s, sc, tech


# ---------------------------------------------------------------------------- zero


def test_zero_accepted_by_the_technician() -> None:
    s, sc, tech = scripted(offset_mg=20_000)
    outcome = zero(s)
    assert outcome.verdict == "pass" and outcome.passed
    assert outcome.data == {"before_mg": 20_000, "method": "scale", "after_mg": 0}
    assert sc.zeros == 1  # the scale's own zero command
    assert tech.readings == ["Reading: 0.020 kg  stable."]
    assert not outcome.in_force  # nothing to put in force: no correction before or after
    assert zero_line(outcome, 7) == "Zero done: empty pan reads 0 g (record 7)."


def test_zero_taken_again_then_accepted() -> None:
    s, sc, tech = scripted(offset_mg=20_000)
    sc.place(1_000_000)  # something left on the pan
    asked: list[str] = []

    def empty_the_second_time(text: str) -> None:
        asked.append(text)
        if len(asked) == 2:
            sc.place(0)

    tech.instead = {"Empty the pan": empty_the_second_time}
    tech.answers = [Answer.AGAIN]  # 1.020 kg is no empty pan: take it again
    outcome = zero(s)
    assert tech.readings == ["Reading: 1.020 kg  stable.", "Reading: 0.020 kg  stable."]
    assert asked == ["Empty the pan."] * 2
    assert outcome.data["before_mg"] == 20_000 and outcome.passed


@pytest.mark.parametrize("where", ["instruction", "reading"])
def test_zero_aborted_records_nothing(where: str) -> None:
    s, _sc, tech = scripted()
    if where == "instruction":
        tech.abort_on = "Empty the pan"
    else:
        tech.answers = [Answer.ABORT]
    with pytest.raises(Stopped) as stop:
        zero(s)
    assert (stop.value.message, stop.value.code) == ("Aborted: nothing recorded.", EX_FAIL)


def test_zero_key_that_does_not_reach_zero_fails_unattended() -> None:
    # a streaming scale: no zero command; the technician presses ZERO but it leaves 10 g
    s, sc, tech = scripted("toledo-continuous", attended=False, offset_mg=30_000)
    tech.zero = lambda: setattr(sc, "zero_mg", 20_000)
    outcome = zero(s)
    assert outcome.verdict == "fail" and outcome.data["method"] == "scale key"
    assert outcome.value_mg == 10_000 and outcome.limit_mg == Decimal(1250)
    assert "  The empty pan did not come to zero within 20 s." in tech.lines
    assert zero_line(outcome, 3) == "Zero FAILED: empty pan reads +10 g (record 3)."


def test_zero_keeps_the_gain_and_drops_an_old_offset() -> None:
    s, _sc, _tech = scripted("toledo-continuous", attended=False, offset_mg=5_000)
    old = Correction(5_000, Fraction(50, 51), 5_000)
    s.state = CalibrationState(in_force_id="x", correction=old)
    outcome = zero(s)
    assert outcome.passed and outcome.in_force
    assert outcome.correction == Correction(0, Fraction(50, 51), 5_000)
    assert outcome.data["correction"] == outcome.correction.to_json()


def test_a_silent_scale_stops_with_exit_69() -> None:
    s, sc, tech = scripted(attended=False, wait=2)
    tech.instead = {"Empty the pan": None}
    sc.moving_until = float("inf")  # never settles
    with pytest.raises(Stopped) as stop:
        zero(s)
    assert stop.value.code == EX_UNAVAILABLE and "No stable weight" in stop.value.message


# ---------------------------------------------------------------------------- span


def test_station_side_span_sets_the_gain() -> None:
    s, _sc, _tech = scripted(attended=False, gain=Decimal("1.02"), offset_mg=5_000)
    outcome = span(s, 10_000_000, "CERT-1", "M1")
    assert outcome.verdict == "pass" and outcome.method == "station"
    assert outcome.in_force and outcome.verifies
    assert outcome.correction == Correction(0, Fraction(10_000_000, 10_200_000), 5_000)
    assert outcome.data["references"] == [
        {"mass_mg": 10_000_000, "certificate": "CERT-1", "class": "M1"}
    ]
    assert outcome.check_mg == 10_000_000 and outcome.zero_mg is None  # zeroed by command
    assert span_lines(outcome, 4)[0].startswith("Span done: gain 0.980392157 (exact 50/51)")


@pytest.mark.parametrize(
    ("placed", "message"),
    [
        (None, "the reading did not change after placing the reference mass"),
        (16_000_000, "the scale is saturated"),
        (8_000_000, "is outside 0.9…1.1"),
    ],
    ids=["unchanged", "saturated", "gain-far-from-1"],
)
def test_implausible_spans_are_refused(placed: int | None, message: str) -> None:
    s, sc, tech = scripted(attended=False, wait=5)
    tech.instead = {"Place the reference": None if placed is None else lambda _t: sc.place(placed)}
    outcome = span(s, 10_000_000)
    assert outcome.verdict == "refused" and outcome.reason is not None
    assert message in outcome.reason and outcome.data["reason"] == outcome.reason
    assert not outcome.in_force and not outcome.verifies


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        (100_000, "The reference 0.100 kg is too small to set the gain: use a mass of at least "
         "5.000 kg (Max / 3), near the capacity is best."),
        (20_000_000, "The reference 20.000 kg is above the capacity 15.000 kg."),
    ],
)  # fmt: skip
def test_span_references_the_scale_cannot_use(reference: int, problem: str) -> None:
    assert span_reference_problem(settings(), reference) == problem
    s, _sc, _tech = scripted()
    with pytest.raises(Stopped) as stop:
        span(s, reference)
    assert (stop.value.message, stop.value.code) == (problem, EX_USAGE)


def test_c2_span_the_scale_adjusts_itself() -> None:
    s, _sc, tech = scripted(
        "mt-sics",
        attended=False,
        c2_first=Ack("C2", "B", ('"0.00 kg"',), raw=b'C2 B "0.00 kg"\r\n'),
        c2=[
            Ack("C2", "B", ('"10.00 kg"',), raw=b'C2 B "10.00 kg"\r\n'),
            Reading(10_000_000, "kg", True, raw=b"S S 10.000 kg\r\n"),  # skipped
            Ack("C2", "B", ('"0.00 kg"',), raw=b'C2 B "0.00 kg"\r\n'),
            Ack("C2", "A", raw=b"C2 A\r\n"),
        ],
    )
    outcome = span(s, 10_000_000)
    assert outcome.method == "scale" and outcome.in_force and outcome.correction is None
    assert outcome.data["replies"] == [
        'C2 B "0.00 kg"\\x0d\\x0a',
        'C2 B "10.00 kg"\\x0d\\x0a',
        "S S 10.000 kg\\x0d\\x0a",
        'C2 B "0.00 kg"\\x0d\\x0a',
        "C2 A\\x0d\\x0a",
    ]
    asked = [line for line in tech.lines if line.startswith("The scale asks")]
    assert asked == [
        "The scale asks: take the reference mass off the pan.",
        "The scale asks for 10.000 kg: place the reference mass.",
        "The scale asks: take the reference mass off the pan.",
    ]


@pytest.mark.parametrize(
    ("first", "frames", "message"),
    [
        (Ack("C2", "B", ('"5.00 kg"',)), [], "The scale asks for 5.000 kg but --reference"),
        (Ack("C2", "B", ('"0.00 kg"',)), [ScaleRefused("C2 I")], "aborted the adjustment"),
        (Ack("C2", "B", ('"0.00 kg"',)), [], "did not finish the adjustment in time"),
        (ScaleRefused("C2 L"), [], "The scale refused the adjustment"),
    ],
    ids=["other-mass", "aborted", "silent", "refused"],
)
def test_c2_span_stops_when_the_scale_does_not_follow(
    first: Reply | ScaleError, frames: list[Reply | ScaleRefused], message: str
) -> None:
    s, _sc, _tech = scripted("mt-sics", attended=False, c2_first=first, c2=frames)
    with pytest.raises(Stopped) as stop:
        span(s, 10_000_000)
    assert message in stop.value.message


def test_c2_unknown_to_the_scale_falls_back_to_a_station_gain() -> None:
    refused = SicsRefused("ES: unknown command", command="ES", status="ES")
    s, _sc, tech = scripted("mt-sics", attended=False, gain=Decimal("1.02"), c2_first=refused)
    outcome = span(s, 10_000_000)
    assert outcome.method == "station" and outcome.verdict == "pass"
    assert "The scale does not know the adjustment command: station-side correction." in tech.lines


# ---------------------------------------------------------------------------- check


def test_check_judges_each_point_against_its_mpe() -> None:
    # 0.15 % heavy: +3 g at 2 kg and +7.5 g at 5 kg pass; +15 g at 10 kg, +22.5 g at 15 kg fail
    s, _sc, _tech = scripted(attended=False, gain=Decimal("1.0015"), step_mg=1_000)
    p = plan(s.settings, [0, 2_000_000, 5_000_000, 10_000_000, 15_000_000], rounding="none")
    outcome = check(s, p)
    run = outcome.run
    assert [pt.error_mg for pt in run.points] == [0, 3_000, 8_000, 15_000, 22_000]
    assert [pt.limit_mg for pt in run.points] == [5_000, 5_000, 10_000, 10_000, 15_000]
    assert [pt.passed for pt in run.points] == [True, True, True, False, False]
    assert outcome.verdict == "fail" and not outcome.verifies
    assert outcome.data["coverage"]["missing"] == ["min"]
    lines = check_lines(run, 9)
    assert lines[-1] == "Overall: FAIL (record 9)"


def test_check_in_adjustment_passes_and_verifies() -> None:
    s, _sc, _tech = scripted(attended=False)
    outcome = check(s, plan(s.settings))
    assert [pt.load_mg for pt in outcome.run.points] == [
        0, 100_000, 2_500_000, 10_000_000, 15_000_000
    ]  # fmt: skip
    assert outcome.verdict == "pass" and outcome.verifies
    assert outcome.data["rounding_mg"] == "2500"  # half-d by default: d / 2


def test_check_passing_without_covering_the_range_is_incomplete() -> None:
    s, _sc, _tech = scripted(attended=False)
    outcome = check(s, plan(s.settings, [0, 5_000_000]))
    assert outcome.verdict == "incomplete" and not outcome.verifies
    assert "  a load from 0.080 kg to 0.200 kg: near Min (0.100 kg)" in check_lines(outcome.run, 1)


def test_check_plan_refuses_loads_outside_the_range() -> None:
    with pytest.raises(ValueError, match=r"16\.000 kg is outside 0…15\.000 kg"):
        plan(settings(), [16_000_000])
    with pytest.raises(ValueError, match=r"Set \[scale\] capacity and e"):
        plan(ScaleSection.model_validate({"protocol": "sma"}), [])


def test_repeatability_waits_for_the_load_to_be_removed() -> None:
    """Attended, a technician who says "ready" with the load still on the pan: the flow waits
    for the pan to be emptied, then for the load again (issue 17 §5); it used to take the load
    left on the pan as the next weighing, so the spread said nothing."""
    s, sc, tech = scripted(attended=True)
    p = plan(s.settings, [5_000_000], repeat=3)
    removals: list[str] = []

    def late_removal(text: str) -> None:
        removals.append(text)
        sc.place_later(3.0, 0)  # lifted a few seconds after saying "ready"

    tech.instead = {"Take the load off": late_removal}
    outcome = check(s, p)
    assert len(removals) == 3
    assert tech.readings == [
        "Reading: 5.000 kg  stable.",  # the weighing test's point
        *["Reading: 0.000 kg  stable.", "Reading: 5.000 kg  stable."] * 3,
    ]
    rp = outcome.run.repeat
    assert rp is not None and rp.readings == (5_000_000,) * 3 and rp.passed


def test_repeatability_fails_when_the_load_never_comes_off() -> None:
    s, _sc, tech = scripted(attended=True, wait=5)
    tech.instead = {"Take the load off": None}
    outcome = check(s, plan(s.settings, [5_000_000], repeat=2))
    rp = outcome.run.repeat
    assert rp is not None and rp.readings == (None, None) and not rp.passed
    assert "  No stable weight near 0.000 kg within 5 s." in tech.lines


# ---------------------------------------------------------------------------- the record


def test_record_writes_the_journal_and_the_state(tmp_path: Path) -> None:
    s, _sc, _tech = scripted(attended=False, gain=Decimal("1.02"))
    s.identify()
    assert s.identity == {"id": "sma"}  # SMA has no identity command: not asked
    outcome = span(s, 10_000_000)
    row = record(s, outcome, tmp_path / "journal.db", STATION, tmp_path)
    state = load_state(tmp_path)
    assert state.in_force_id == state.verified_id == row["uuid"] == s.state.in_force_id
    assert state.correction == outcome.correction

    # a refused span is recorded but changes nothing in force
    s.scale.gain = Decimal("1.3")  # type: ignore[attr-defined]
    refused = span(s, 10_000_000)
    again = record(s, refused, tmp_path / "journal.db", STATION, tmp_path)
    assert again["seq"] == row["seq"] + 1 and load_state(tmp_path) == state
    with Store(tmp_path / "journal.db", STATION) as store:
        rows = history(store)
    assert [(r["reason"], r["operator"], r["data"]["verdict"]) for r in rows] == [
        ("span", "Alice", "pass"),
        ("span", "Alice", "refused"),
    ]


def test_identity_for_the_record() -> None:
    s, _sc, _tech = scripted("mt-sics")
    s.identify()  # I4 answers, I2 stays silent: the serial is enough
    assert s.identity == {"serial": "4711", "id": "mt-sics:4711"}
    s.settings = settings(protocol="mt-sics", scale_id="balance-1")
    s.identify()
    assert s.identity["id"] == "balance-1"


def test_grams_and_masses_for_people() -> None:
    assert [grams(0), grams(2_500, signed=True), grams(-15_000, signed=True)] == [
        "0 g",
        "+2.5 g",
        "-15 g",
    ]
    assert grams(Decimal("1250")) == "1.25 g" and grams(None) == "—"
    assert [format_mass_exact(100_000), format_mass_exact(2_500), format_mass_exact(2_500_000)] == [
        "0.100 kg",
        "0.0025 kg",
        "2.500 kg",
    ]
    with speaking("fr"):
        assert format_mass_exact(1_250_000) == "1,250 kg" and grams(2_500) == "2,5 g"


# ---------------------------------------------------------------------------- real simulators


@contextmanager
def sim_session(sim: ScaleSimulator, tmp_path: Path, protocol: str) -> Iterator[Session]:
    """An unattended session on ``sim`` over a pty, through the one scale link."""
    url = sim.start_pty(tmp_path / "scale")
    tech = Technician(lambda mg: sim.place(mg, settle_s=0.2), lambda: None)
    with ScaleLink(url, PROTOCOLS[protocol], reply_timeout=1.0) as link:
        s = Session(
            tech,
            link,
            settings(protocol=protocol, url=url),
            "Alice",
            CalibrationState(),
            unattended=True,
            wait=15,
        )
        s.identify()
        yield s


def test_mtsics_span_through_the_link(tmp_path: Path) -> None:
    with (
        ScaleSimulator("mt-sics", gain=Decimal("1.02"), stable_timeout_s=0.5) as sim,
        sim_session(sim, tmp_path, "mt-sics") as s,
    ):
        outcome = span(s, 10_000_000)
        assert outcome.method == "scale" and outcome.verdict == "pass"
        assert sim.adjustments == [10_000_000]
        assert isinstance(s.console, Technician)
        assert "The scale asks for 10.000 kg: place the reference mass." in s.console.lines
        assert s.identity["id"] == "mt-sics:1126493049"


def test_sma_check_through_the_link(tmp_path: Path) -> None:
    with (
        ScaleSimulator("sma", gain=Decimal("1.0015"), stable_timeout_s=0.5) as sim,
        sim_session(sim, tmp_path, "sma") as s,
    ):
        outcome = check(s, plan(s.settings, [0, 2_000_000, 10_000_000], rounding="none"))
    assert [pt.passed for pt in outcome.run.points] == [True, True, False]
    assert [pt.error_mg for pt in outcome.run.points] == [0, 3_000, 15_000]


# ---------------------------------------------------------------------------- issue 17 item 5


def test_which_protocols_adjust_their_own_span() -> None:
    """The manuals' commands (cited in the codecs): MT-SICS C2, A&D CAL, Kern KCP JZ/JG/JS;
    every other protocol keeps the station-side gain."""
    found = {name: adjustment_command(p) for name, p in PROTOCOLS.items()}
    assert {n: c for n, c in found.items() if c} == {
        "mt-sics": "C2",
        "a-and-d": "CAL",
        "kern-kcp": "JZ JG JS",
    }


def test_aandd_cal_span_through_the_link(tmp_path: Path) -> None:
    """A&D CAL (FX-i manual §15-2): AK on receipt, the balance takes the weight, AK when done."""
    with (
        ScaleSimulator("a-and-d", gain=Decimal("1.02"), stable_timeout_s=0.5) as sim,
        sim_session(sim, tmp_path, "a-and-d") as s,
    ):
        outcome = span(s, 10_000_000)
        assert outcome.method == "scale" and outcome.verdict == "pass", outcome
        assert outcome.data["command"] == "CAL" and outcome.correction is None
        assert sim.adjustments == [10_000_000]
        sim.place(10_000_000, settle_s=0)
        assert until(lambda: sim.snapshot().net_mg == 10_000_000, timeout=5)


def test_aandd_cal_with_the_wrong_weight_stops(tmp_path: Path) -> None:
    with (
        ScaleSimulator("a-and-d", stable_timeout_s=0.5, adjust_weight_mg=5_000_000) as sim,
        sim_session(sim, tmp_path, "a-and-d") as s,
        pytest.raises(Stopped, match="E20"),
    ):
        span(s, 10_000_000)  # the balance is set for 5 kg: 10 kg is too heavy
    assert sim.adjustments == []


def test_kcp_span_through_the_link(tmp_path: Path) -> None:
    """Kern KCP (KDP manual §10.1): JZ with the empty pan, JG with the weight on it, JS."""
    with (
        ScaleSimulator("kern-kcp", gain=Decimal("1.02"), stable_timeout_s=0.5) as sim,
        sim_session(sim, tmp_path, "kern-kcp") as s,
    ):
        outcome = span(s, 10_000_000)
        assert outcome.method == "scale" and outcome.verdict == "pass", outcome
        assert outcome.data["command"] == "JZ JG JS"
        assert outcome.data["replies"] == ["JZ A", "JG A", "JS A"]
        assert sim.adjustments == [10_000_000]


def test_a_heavy_scale_corrected_by_the_station_weighs_up_to_max(tmp_path: Path) -> None:
    """A scale 1.7 % heavy, corrected station-side: true loads up to Max are weighed (they
    were refused as overload: the simulated range was the shown weight's, not the load's)."""
    with (
        ScaleSimulator("sma", gain=Decimal("1.017"), stable_timeout_s=0.5) as sim,
        sim_session(sim, tmp_path, "sma") as s,
    ):
        outcome = span(s, 10_000_000)
        assert outcome.method == "station" and outcome.correction is not None
        s.state = CalibrationState(correction=outcome.correction)
        run = check(s, plan(s.settings, [0, 5_000_000, 15_000_000])).run
    assert [p.reading_mg for p in run.points] == [0, 5_000_000, 15_000_000]
    assert all(p.passed for p in run.points)


def test_an_overload_at_max_says_why(tmp_path: Path) -> None:
    """A scale whose own range ends before Max: the check says why Max failed."""
    with (
        ScaleSimulator("sma", capacity_mg=12_000_000, stable_timeout_s=0.5) as sim,
        sim_session(sim, tmp_path, "sma") as s,
    ):
        s.state = CalibrationState(correction=Correction(0, Fraction(1000, 1017), 5_000))
        run = check(s, plan(s.settings, [0, 15_000_000], rounding="none")).run
    assert [p.note for p in run.points] == ["", "overload"]
    text = "\n".join(check_lines(run, 7))
    assert "15.000 kg: FAIL, the scale showed OVERLOAD (no weight). It reads 1.70 % heavy" in text
    assert "Adjust the scale itself" in text


def test_a_failed_check_makes_the_calibration_due_until_a_pass(tmp_path: Path) -> None:
    s, sc, _tech = scripted(attended=False, gain=Decimal("1.01"))
    failed = check(s, plan(s.settings, [0, 10_000_000], rounding="none"))
    assert failed.verdict == "fail"
    row = record(s, failed, tmp_path / "journal.db", STATION, tmp_path)
    state = load_state(tmp_path)
    assert state.failed and state.failed_id == row["uuid"]
    assert state.due(365) is None and state.overdue(365)
    sc.gain = Decimal(1)
    passed = check(s, plan(s.settings, rounding="none"))
    assert passed.verdict == "pass"
    record(s, passed, tmp_path / "journal.db", STATION, tmp_path)
    state = load_state(tmp_path)
    assert not state.failed and not state.overdue(365)


def test_a_gain_from_another_scale_is_flagged(tmp_path: Path) -> None:
    s, _sc, tech = scripted("mt-sics", attended=False)
    s.state = CalibrationState(
        in_force_id="x", correction=Correction(0, Fraction(50, 51)), in_force_scale="mt-sics:1111"
    )
    s.identify()  # this scale says I4 = 4711
    assert any(
        line.startswith("Warning: the station-side gain in force (0.98039) was set on scale "
                        "mt-sics:1111, but this is mt-sics:4711")
        for line in tech.lines
    )  # fmt: skip
    assert s.state.other_scale("mt-sics:4711") and not s.state.other_scale("mt-sics:1111")
    # a span records the scale it was made on
    s2, _sc2, _t2 = scripted("mt-sics", attended=False, gain=Decimal("1.02"))
    s2.identify()
    s2.scale.c2_first = SicsRefused("ES", command="ES", status="ES")  # type: ignore[attr-defined]
    outcome = span(s2, 10_000_000)
    record(s2, outcome, tmp_path / "journal.db", STATION, tmp_path)
    assert load_state(tmp_path).in_force_scale == "mt-sics:4711"
    # a zero that keeps an old gain does not make it this scale's: the flag stays
    s.state = CalibrationState(
        in_force_id="x",
        correction=Correction(5_000, Fraction(50, 51)),
        in_force_scale="mt-sics:1111",
    )
    zeroed = zero(s)
    assert zeroed.in_force and zeroed.correction == Correction(0, Fraction(50, 51))
    record(s, zeroed, tmp_path / "journal.db", STATION, tmp_path)
    assert load_state(tmp_path).in_force_scale == "mt-sics:1111"


def test_a_net_frame_without_its_tare_is_corrected_as_a_difference() -> None:
    """A frame marked net (SMA N) without the tare's value is a difference of two readings:
    an old stored offset cancels out, only the gain applies (issue 17 item 1)."""
    old = Correction(5_000, Fraction(50, 51), 1)
    plain = Reading(1_025_000, "kg", True)
    marked = Reading(1_020_000, "kg", True, net=True)
    assert old.apply(plain).net_mg == 1_000_000  # (1.025 kg - 5 g) × 50/51
    assert old.apply(marked).net_mg == 1_000_000  # 1.020 kg × 50/51, no offset
