"""The counter's state machine on its own: events in, outcomes and records out, no I/O."""

from __future__ import annotations

import itertools
from typing import Any

from drivers.base import Reading, ScaleError
from drivers.scale import Ack, Command
from station.config import Config
from station.counter import Append, Counter, PieceWeight, Signal, Step
from station.outcomes import Outcome
from station.sim import example_config
from tests.support.helpers import beneficiary

VISITOR = beneficiary(123456)
OTHER = beneficiary(654321, "014")


class Journal:
    """Plays the loop's part: writes what a step asks for (or refuses it) and follows on."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.refuse = False
        self.effects: list[Step] = []

    def run(self, step: Step) -> list[Signal]:
        signals: list[Signal] = []
        while True:
            self.effects.append(step)
            signals += step.signals
            if step.write is None or step.then is None:
                return signals
            row: dict[str, Any] | None = None
            if self.refuse:
                row = None
            elif isinstance(step.write, Append):
                row = {"seq": len(self.rows) + 1, "kind": step.write.kind, **step.write.fields}
                self.rows.append(row)
            else:
                row = {}
            step = step.then(row)

    def outcomes(self, step: Step) -> list[Outcome]:
        return [s.outcome for s in self.run(step)]


def _counter(config: Config | None = None) -> Counter:
    ids = (f"visit-{n}" for n in itertools.count(1))
    counter = Counter(config or example_config(), new_id=lambda: next(ids))
    counter.scale_state(True)
    return counter


def _stable(kg: str, **kw: Any) -> Reading:
    mg = int(float(kg) * 1_000_000)
    return Reading(net_mg=mg, unit="kg", stable=True, raw=f"S S {kg} kg".encode(), **kw)


def _visit(c: Counter, j: Journal, category: str = "CAT-VET") -> None:
    assert j.outcomes(c.code(VISITOR, 1.0, 1.0)) == [Outcome.VISIT_OPENED]
    assert j.outcomes(c.code(category, 1.1, 1.1)) == [Outcome.CATEGORY_SET]


def _weigh(c: Counter, j: Journal, kg: str, t: float) -> list[Signal]:
    step = c.press(t, t)
    assert step.poll_until == t + c.config.scale.stable_wait
    return j.run(c.weight(_stable(kg), t + 0.1))


def test_a_visit_opens_only_once_its_record_is_written() -> None:
    c, j = _counter(), Journal()
    assert j.outcomes(c.press(0.5, 0.5)) == [Outcome.NO_BENEFICIARY]
    j.refuse = True
    assert j.outcomes(c.code(VISITOR, 1.0, 1.0)) == []  # the loop signals its refusal
    assert c.visit is None
    j.refuse = False
    signals = j.run(c.code(VISITOR, 2.0, 2.0))
    assert [s.outcome for s in signals] == [Outcome.VISIT_OPENED]
    assert signals[0].detail == "•" * (len(VISITOR) - 4) + VISITOR[-4:]
    assert c.visit is not None and c.visit.beneficiary == VISITOR
    assert (j.rows[0]["kind"], j.rows[0]["visit"], j.rows[0]["referrer"]) == (
        "visit_open",
        "visit-2",  # the refused try had its own id
        "001",
    )
    assert c.visit_deadline == 2.0 + c.config.visit.timeout


def test_a_weighing_records_the_stable_weight_after_the_press() -> None:
    c, j = _counter(), Journal()
    _visit(c, j)
    assert j.outcomes(c.weight(_stable("9.000"), 2.0)) == []  # no press waits: nothing
    c.press(3.0, 3.0)
    assert c.waiting
    assert j.run(c.weight(_stable("1.250"), 2.9)) == []  # asked before the press
    unsteady = Reading(net_mg=1_250_000, unit="kg", stable=False, raw=b"S D 1.250 kg")
    assert j.run(c.weight(unsteady, 3.1)) == []
    step = c.weight(_stable("1.250"), 3.2)
    assert step.relax and isinstance(step.write, Append)
    signals = j.run(step)
    assert [(s.outcome, s.detail, s.net_mg) for s in signals] == [
        (Outcome.RECORDED, "1.250 kg Vêtements", 1_250_000)
    ]
    row = j.rows[-1]
    assert (row["kind"], row["category"], row["net_mg"], row["raw"]) == (
        "weighing",
        "CAT-VET",
        1_250_000,
        "S S 1.250 kg",
    )
    assert not c.waiting
    assert [i.net_mg for i in c.visit.items] == [1_250_000]


def test_a_refused_write_changes_nothing() -> None:
    c, j = _counter(), Journal()
    _visit(c, j)
    j.refuse = True
    assert [s.outcome for s in _weigh(c, j, "1.000", 2.0)] == []
    assert c.visit is not None and c.visit.items == []
    j.refuse = False
    # the same item again is not "already recorded": it never was
    assert [s.outcome for s in _weigh(c, j, "1.000", 3.0)] == [Outcome.RECORDED]


def test_the_same_item_twice_is_refused_until_the_pan_changes() -> None:
    c, j = _counter(), Journal()
    _visit(c, j)
    _weigh(c, j, "1.000", 2.0)
    assert [s.outcome for s in _weigh(c, j, "1.000", 3.0)] == [Outcome.SAME_ITEM]
    c.weight(_stable("0"), 3.5)  # emptied
    assert [s.outcome for s in _weigh(c, j, "1.000", 4.0)] == [Outcome.RECORDED]


def test_refusals_of_the_weight() -> None:
    c, j = _counter(example_config({"scale": {"capacity": "10 kg"}})), Journal()
    _visit(c, j)
    assert [s.outcome for s in _weigh(c, j, "0.010", 2.0)] == [Outcome.BELOW_MINIMUM]
    assert [s.outcome for s in _weigh(c, j, "12.000", 3.0)] == [Outcome.ABOVE_CAPACITY]
    c.press(4.0, 4.0)
    over = Reading(net_mg=None, unit="kg", stable=False, raw=b"S +", overload=True)
    step = c.weight(over, 4.1)
    assert step.relax and j.outcomes(step) == [Outcome.OVERLOAD]
    assert j.rows[-1]["kind"] == "visit_open"  # nothing recorded


def test_no_category_and_no_scale() -> None:
    c, j = _counter(), Journal()
    j.run(c.code(VISITOR, 1.0, 1.0))
    assert j.outcomes(c.press(2.0, 2.0)) == [Outcome.NO_CATEGORY]
    j.run(c.code("CAT-VET", 2.1, 2.1))
    c.scale_state(False)
    assert j.outcomes(c.press(3.0, 3.0)) == [Outcome.NO_SCALE]
    assert j.outcomes(c.code("TARE", 3.1, 3.1)) == [Outcome.NO_SCALE]


def test_deadlines_refuse_a_press_and_close_an_idle_visit() -> None:
    c, j = _counter(), Journal()
    _visit(c, j)
    c.press(2.0, 2.0)
    assert j.outcomes(c.tick(2.5)) == []
    step = c.tick(2.0 + c.config.scale.stable_wait)
    assert step.relax and j.outcomes(step) == [Outcome.NO_SCALE]  # no weight came at all
    c.press(10.0, 10.0)
    c.weight(Reading(net_mg=5, unit="kg", stable=False, raw=b"S D"), 10.1)
    assert j.outcomes(c.tick(20.0)) == [Outcome.UNSTABLE]
    assert c.next_deadline() == c.visit_deadline == 10.0 + c.config.visit.timeout
    assert j.outcomes(c.tick(c.visit_deadline)) == [Outcome.VISIT_CLOSED]
    assert (j.rows[-1]["kind"], j.rows[-1]["reason"]) == ("visit_close", "timeout")
    assert c.visit is None and c.next_deadline() is None


def test_a_new_beneficiary_closes_then_opens_and_cancels_a_waiting_press() -> None:
    c, j = _counter(), Journal()
    _visit(c, j)
    _weigh(c, j, "1.500", 2.0)
    c.press(3.0, 3.0)
    step = c.code(OTHER, 3.1, 3.1)
    assert step.relax
    assert j.outcomes(step) == [
        Outcome.CANCELLED,
        Outcome.VISIT_CLOSED,
        Outcome.VISIT_OPENED,
    ]
    close = j.rows[-2]
    assert (close["kind"], close["reason"], close["data"]) == (
        "visit_close",
        "new_beneficiary",
        {"items": 1, "net_mg": 1_500_000},
    )
    assert c.visit is not None and c.visit.beneficiary == OTHER and c.visit.id == "visit-2"


def test_a_close_that_cannot_be_written_keeps_the_visit_and_opens_nothing() -> None:
    c, j = _counter(), Journal()
    _visit(c, j)
    j.refuse = True
    assert j.outcomes(c.code(OTHER, 5.0, 5.0)) == []
    assert c.visit is not None and c.visit.beneficiary == VISITOR
    assert c.visit_deadline == 5.0 + 30.0  # tried again later, not on every turn


def test_hold_voids_the_last_standing_weighing() -> None:
    c, j = _counter(), Journal()
    assert j.outcomes(c.hold(0.5, 0.5)) == [Outcome.NOTHING_TO_VOID]
    _visit(c, j)
    first = _weigh(c, j, "1.000", 2.0)[0].seq
    second = _weigh(c, j, "2.000", 3.0)[0].seq
    signals = j.run(c.hold(4.0, 4.0))
    assert (signals[0].outcome, signals[0].detail) == (
        Outcome.VOIDED,
        f"2.000 kg Vêtements (record {second})",  # names what was voided: no confirmation
    )
    assert j.rows[-1]["voids"] == second
    j.run(c.hold(5.0, 5.0))
    assert j.rows[-1]["voids"] == first
    assert j.outcomes(c.hold(6.0, 6.0)) == [Outcome.NOTHING_TO_VOID]
    # the voided item may be weighed again at once (the usual correction)
    assert [s.outcome for s in _weigh(c, j, "2.000", 7.0)] == [Outcome.RECORDED]


def test_the_category_carries_into_the_next_visit_and_is_shown() -> None:
    c, j = _counter(), Journal()
    _visit(c, j)
    j.run(c.code("FIN", 2.0, 2.0))
    signals = j.run(c.code(OTHER, 3.0, 3.0))
    assert signals[-1].outcome is Outcome.VISIT_OPENED
    assert signals[-1].detail.endswith(", category Vêtements")
    assert c.category is not None and c.category.code == "CAT-VET"


def test_the_category_resets_at_a_new_visit_when_configured() -> None:
    c, j = _counter(example_config({"visit": {"category_resets": True}})), Journal()
    _visit(c, j)
    j.run(c.code("FIN", 2.0, 2.0))
    signals = j.run(c.code(OTHER, 3.0, 3.0))
    assert signals[-1].detail.endswith(OTHER[-4:])  # nothing carried, nothing to show
    assert c.category is None
    assert j.outcomes(c.press(4.0, 4.0)) == [Outcome.NO_CATEGORY]


def test_scale_commands_and_replies() -> None:
    c, j = _counter(example_config({"scale": {"scale_id": ""}})), Journal()
    assert c.scale_state(True).command == (Command.IDENTIFY, "identify")
    c.scale_reply("identify", Ack("I4", "A", ("1126493049",)))
    assert c.scale_id == "mt-sics:1126493049"
    assert c.code("TARE", 1.0, 1.0).command == (Command.TARE, "tare")
    assert j.outcomes(c.scale_reply("tare", Ack("TAC", "A"))) == [Outcome.TARED]
    assert c.code("ZERO", 2.0, 2.0).command == (Command.ZERO, "zero")
    assert j.outcomes(c.scale_reply("zero", ScaleError("motion"))) == [Outcome.SCALE_REFUSED]


def test_counting_by_sampling() -> None:
    c, j = _counter(), Journal()
    _visit(c, j, "CAT-HYG")
    step = c.code("ECH-10", 2.0, 2.0)
    assert step.poll_until is not None
    learn = c.weight(_stable("0.234"), 2.1)
    assert isinstance(learn.write, PieceWeight) and learn.write.mg == 23_400
    assert j.outcomes(learn) == [Outcome.SAMPLED]
    _weigh(c, j, "0.468", 3.0)
    row = j.rows[-1]
    assert (row["pieces"], row["unit_weight_mg"], row["pieces_computed"]) == (20, 23_400, True)


def test_a_code_read_twice_is_ignored_within_the_window() -> None:
    c, j = _counter(example_config({"scanner": {"dedupe_window": 1.0}})), Journal()
    assert j.outcomes(c.code("CAT-VET", 1.0, 1.0)) == [Outcome.CATEGORY_SET]
    twice = c.code("CAT-VET", 1.5, 1.5)
    assert twice.signals == () and "read twice" in twice.note
    assert j.outcomes(c.code("CAT-VET", 3.0, 3.0)) == [Outcome.CATEGORY_SET]
    assert j.outcomes(c.code("NOPE", 4.0, 4.0)) == [Outcome.UNKNOWN_CODE]


def test_a_misread_beneficiary_code_is_shown_masked() -> None:
    c, j = _counter(), Journal()
    wrong = VISITOR[:-1] + str((int(VISITOR[-1]) + 3) % 10)
    signals = j.run(c.code(wrong, 1.0, 1.0))
    assert [(s.outcome, s.detail) for s in signals] == [(Outcome.MISREAD, "•" * 7 + wrong[-4:])]
    assert j.run(c.code("ECH-abc", 2.0, 2.0))[0].detail == "ECH-abc"  # a sheet, not a person


def test_restore_carries_on_within_the_boot_and_closes_otherwise() -> None:
    opened = {"visit": "v1", "beneficiary": VISITOR, "referrer": "001"}
    weighing = {
        "seq": 2,
        "net_mg": 1000,
        "category": "CAT-VET",
        "referrer": "014",
        "data": '{"profile": ["bebe"]}',
    }
    c, j = _counter(), Journal()
    step = c.restore(opened, [weighing], weighing, idle_s=5.0, same_boot=True, now=100.0)
    assert j.run(step) == []
    assert c.visit is not None
    assert (c.visit.referrer, c.visit.profile, len(c.visit.items)) == ("014", ["bebe"], 1)
    c2, j2 = _counter(), Journal()
    step = c2.restore(opened, [weighing], weighing, idle_s=5.0, same_boot=False, now=100.0)
    assert j2.outcomes(step) == [Outcome.VISIT_CLOSED]
    assert (j2.rows[-1]["reason"], c2.visit) == ("restart", None)
