"""Weight labels of certified scales at the counter: scanned after the item, recorded by the
press with ``source = "label"``; malformed labels refused with a signal, nothing recorded.

The counter's rules on their own (pure :class:`~station.counter.Counter`), then end to end
through the real daemon on the scale and scanner simulators and gpiozero mock pins."""

from __future__ import annotations

import itertools
import json
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.i18n import speaking
from station.codes import with_check_digit
from station.config import ConfigError, parse_config
from station.counter import LABEL_HOLD_S, Append, Counter, Step
from station.outcomes import Outcome
from station.sim import EXAMPLE_CONFIG, SimulatedCounter, example_config
from tests.support.counter import english_counter, weigh, weighings
from tests.support.helpers import beneficiary

VISITOR = beneficiary(123456)
LABELS = {
    "codes": {
        "weight_labels": [
            {"name": "balance-etiqueteuse", "prefix": "21", "scale_id": "bizerba:4711"},
            {"name": "kilos", "prefix": "22", "unit": "kg", "decimals": 3},
        ]
    }
}
LABEL_1250_G = with_check_digit("mod10", "211234501250")  # item 12345, 01250 g
LABEL_2345_KG = with_check_digit("mod10", "220004202345")  # item 00042, 02.345 kg
BAD_CHECK = LABEL_1250_G[:-1] + str((int(LABEL_1250_G[-1]) + 1) % 10)


# -- the counter on its own ----------------------------------------------------------------------


def _run(counter: Counter, step: Step, rows: list[dict[str, Any]]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    while True:
        outcomes += [s.outcome for s in step.signals]
        if step.write is None or step.then is None:
            return outcomes
        assert isinstance(step.write, Append)
        row = {"seq": len(rows) + 1, "kind": step.write.kind, **step.write.fields}
        rows.append(row)
        step = step.then(row)


def _pure() -> tuple[Counter, list[dict[str, Any]]]:
    ids = (f"visit-{n}" for n in itertools.count(1))
    counter = Counter(example_config(LABELS), new_id=lambda: next(ids))
    rows: list[dict[str, Any]] = []
    _run(counter, counter.code(VISITOR, 1.0, 1.0), rows)
    _run(counter, counter.code("CAT-VET", 1.1, 1.1), rows)
    return counter, rows


def test_the_press_records_the_label_without_a_serial_scale() -> None:
    counter, rows = _pure()  # scale_state never said ok: the serial scale is absent
    # read: a green signal of its own, nothing written before the press
    assert _run(counter, counter.code(LABEL_1250_G, 2.0, 2.0), rows) == [Outcome.LABEL_READ]
    assert counter.label is not None and counter.label.weight_mg == 1_250_000
    assert _run(counter, counter.press(3.0, 3.0), rows) == [Outcome.RECORDED]
    row = rows[-1]
    assert (row["source"], row["net_mg"], row["unit"], row["raw"]) == (
        "label",
        1_250_000,
        "g",
        LABEL_1250_G,
    )
    assert row["scale_id"] == "bizerba:4711" and row["calibration_id"] is None
    assert counter.label is None  # one label, one record
    assert _run(counter, counter.press(4.0, 4.0), rows) == [Outcome.NO_SCALE]


def test_a_label_left_pending_expires() -> None:
    counter, rows = _pure()
    _run(counter, counter.code(LABEL_1250_G, 2.0, 2.0), rows)
    late = 2.0 + LABEL_HOLD_S + 1
    assert _run(counter, counter.press(late, late), rows) == [Outcome.NO_SCALE]
    assert [r["kind"] for r in rows] == ["visit_open"]


def test_a_label_waits_for_the_category_and_is_dropped_with_the_visit() -> None:
    ids = (f"visit-{n}" for n in itertools.count(1))
    counter = Counter(example_config(LABELS), new_id=lambda: next(ids))
    rows: list[dict[str, Any]] = []
    _run(counter, counter.code(LABEL_1250_G, 1.0, 1.0), rows)  # before the visit: kept
    assert _run(counter, counter.press(1.5, 1.5), rows) == [Outcome.NO_BENEFICIARY]
    _run(counter, counter.code(VISITOR, 2.0, 2.0), rows)
    assert _run(counter, counter.press(2.5, 2.5), rows) == [Outcome.NO_CATEGORY]
    _run(counter, counter.code("CAT-VET", 3.0, 3.0), rows)
    assert counter.label is not None
    assert _run(counter, counter.code("FIN", 4.0, 4.0), rows) == [Outcome.VISIT_CLOSED]
    assert counter.label is None  # the next person never gets this label
    assert not [r for r in rows if r["kind"] == "weighing"]


def test_a_label_below_the_minimum_is_refused() -> None:
    counter, rows = _pure()
    light = with_check_digit("mod10", "211234500005")  # 5 g, under min_weight (20 g)
    _run(counter, counter.code(light, 2.0, 2.0), rows)
    assert _run(counter, counter.press(3.0, 3.0), rows) == [Outcome.BELOW_MINIMUM]
    assert not [r for r in rows if r["kind"] == "weighing"]


# -- end to end: the daemon, the scanner and scale simulators, the panel's mock pins ------------


@pytest.fixture
def labelled(tmp_path: Path) -> Iterator[SimulatedCounter]:
    with english_counter(tmp_path, LABELS) as c:
        yield c


def _start_visit(c: SimulatedCounter) -> None:
    c.scan(VISITOR)
    assert c.next_result().outcome is Outcome.VISIT_OPENED
    c.scan("CAT-VET")
    assert c.next_result().outcome is Outcome.CATEGORY_SET


def _until(cond: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return bool(cond())


def _label_pending(c: SimulatedCounter, code: str) -> bool:
    label = c.station.counter.label
    return label is not None and label.code == code


def test_a_label_scanned_after_the_item_is_recorded_with_its_weight(
    labelled: SimulatedCounter,
) -> None:
    c = labelled
    _start_visit(c)
    c.scale.place("3.000", settle_s=0)  # something else on the serial scale: not asked
    c.scan(LABEL_1250_G)
    read = c.next_result()
    assert (read.outcome, read.text) == (
        Outcome.LABEL_READ,
        "Weight label: 1.250 kg, press to record it",
    )
    assert _label_pending(c, LABEL_1250_G)
    c.press()
    result = c.next_result()
    assert result.outcome is Outcome.RECORDED
    assert result.text == "Recorded: 1.250 kg Vêtements (label)"
    row = c.store.get(result.seq or 0)
    assert row is not None
    assert (row["source"], row["net_mg"], row["unit"], row["stable"]) == (
        "label",
        1_250_000,
        "g",
        1,
    )
    assert (row["raw"], row["scale_id"], row["calibration_id"]) == (
        LABEL_1250_G,
        "bizerba:4711",
        None,
    )
    assert json.loads(row["data"]) == {
        "label": LABEL_1250_G,
        "label_pattern": "balance-etiqueteuse",
    }
    assert row["beneficiary"] == VISITOR and row["category"] == "CAT-VET"
    # the next press, without a label, weighs on the serial scale as before
    serial = weigh(c, "0.800")
    assert serial.outcome is Outcome.RECORDED
    assert [(w["source"], w["net_mg"]) for w in weighings(c)] == [
        ("label", 1_250_000),
        ("scale", 800_000),
    ]


def test_a_kilogram_label_with_decimals_and_the_serial_scale_unplugged(
    labelled: SimulatedCounter,
) -> None:
    c = labelled
    _start_visit(c)
    c.scale.unplug()  # the certified scale's label needs no serial scale
    assert _until(lambda: not c.station.snapshot.scale_ok)
    c.scan(LABEL_2345_KG)
    assert c.next_result().outcome is Outcome.LABEL_READ
    assert _label_pending(c, LABEL_2345_KG)
    c.press()
    result = c.next_result()
    assert result.outcome is Outcome.RECORDED, result.text
    row = c.store.get(result.seq or 0)
    assert row is not None
    assert (row["source"], row["net_mg"], row["unit"], row["scale_id"]) == (
        "label",
        2_345_000,
        "kg",
        "label",
    )


@pytest.mark.parametrize(
    ("code", "outcome", "why"),
    [
        (BAD_CHECK, Outcome.MISREAD, "wrong check digit"),
        (LABEL_1250_G[:10], Outcome.MISREAD, "not 13 digits"),
        (
            with_check_digit("mod10", "251234501250"),
            Outcome.UNKNOWN_CODE,
            "no weight label pattern for prefix 25",
        ),
    ],
)
def test_a_malformed_label_is_refused_with_a_signal_and_nothing_recorded(
    labelled: SimulatedCounter, code: str, outcome: Outcome, why: str
) -> None:
    c = labelled
    _start_visit(c)
    red, green = c.pin("red"), c.pin("green")
    assert _until(lambda: not c.daemon.panel.playing)
    red.clear_states()
    green.clear_states()
    c.scan(code)
    result = c.next_result()
    assert result.outcome is outcome and not result.ok
    assert f"weight label {code}: {why}" in result.text
    assert _until(lambda: any(s.state for s in red.states))  # the red light, as bad codes get
    assert not any(s.state for s in green.states)
    assert c.station.counter.label is None
    assert weighings(c) == []
    with pytest.raises(queue.Empty):
        c.next_result(timeout=0.2)


def test_the_refusal_is_french_by_default(tmp_path: Path) -> None:
    with SimulatedCounter(tmp_path, LABELS) as c:
        c.scan(BAD_CHECK)
        result = c.next_result()
        assert result.outcome is Outcome.MISREAD
        assert f"étiquette de poids {BAD_CHECK}" in result.text
        assert "chiffre de contrôle" in result.text
        assert weighings(c) == []


# -- the config: invalid patterns refused, one French line each -----------------------------------

_EXAMPLE = EXAMPLE_CONFIG.read_text(encoding="utf-8")


def _with_labels(block: str) -> str:
    return _EXAMPLE.replace("[[categories]]", block + "\n[[categories]]", 1)


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        (
            '[[codes.weight_labels]]\nprefix = "31"',
            "codes.weight_labels[0].prefix : un préfixe GS1 de circulation restreinte",
        ),
        (
            '[[codes.weight_labels]]\nprefix = "21"\nweight_start = 2',
            "codes.weight_labels[0] : weight_start doit venir après le préfixe",
        ),
        (
            '[[codes.weight_labels]]\nprefix = "21"\nweight_digits = 6',
            "codes.weight_labels[0] : les chiffres du poids doivent finir au plus tard au 12e",
        ),
        (
            '[[codes.weight_labels]]\nprefix = "21"\ndecimals = 4',
            "codes.weight_labels[0] : au plus 3 décimales de gramme",
        ),
        (
            '[[codes.weight_labels]]\nprefix = "21"\n[[codes.weight_labels]]\nprefix = "210"',
            "codes.weight_labels : les préfixes 21 et 210 se recouvrent",
        ),
    ],
)
def test_an_invalid_pattern_is_refused_in_french(block: str, problem: str) -> None:
    with speaking("fr"), pytest.raises(ConfigError) as info:
        parse_config(_with_labels(block), "station.toml")
    assert any(line.startswith(problem) for line in info.value.problems), info.value.problems


def test_the_example_block_is_a_valid_pattern() -> None:
    block = _EXAMPLE[_EXAMPLE.index("# [[codes.weight_labels]]") : _EXAMPLE.index("[[categories]]")]
    plain = "\n".join(line.removeprefix("# ") for line in block.splitlines())
    (label,) = parse_config(_EXAMPLE.replace(block, plain + "\n")).codes.weight_labels
    assert (label.prefix, label.weight_start, label.weight_digits, label.unit) == ("21", 8, 5, "g")
    assert with_check_digit("mod10", "211234501250") == "2112345012506"  # as the comment says
