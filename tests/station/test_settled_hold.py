"""[scale] settled_hold on the real daemon: while a settled load waits for its press, the scale
is not polled, and the press still records what is on the pan when it goes down."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from station.outcomes import Outcome
from station.sim import SimulatedCounter
from tests.support.helpers import beneficiary

VISITOR = beneficiary(123456)


def _until(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def _shown(c: SimulatedCounter, mg: int) -> bool:
    weight = c.station.snapshot.weight
    return weight is not None and weight.stable and weight.net_mg == mg


def _start_visit(c: SimulatedCounter) -> None:
    c.scan(VISITOR)
    assert c.next_result().outcome is Outcome.VISIT_OPENED
    c.scan("CAT-VET")
    assert c.next_result().outcome is Outcome.CATEGORY_SET


def test_a_load_swapped_while_held_is_what_the_press_records(counter: SimulatedCounter) -> None:
    assert counter.daemon.scale.settled_hold > 0  # the shipped default, no screen
    _start_visit(counter)
    counter.scale.place("1.250", settle_s=0)
    assert _until(lambda: _shown(counter, 1_250_000))  # settled: idle polling now paused
    counter.scale.place("2.000", settle_s=0)  # swapped before the press
    counter.press()
    result = counter.next_result()
    assert result.outcome is Outcome.RECORDED
    assert result.net_mg == 2_000_000
    assert _until(lambda: _shown(counter, 2_000_000))


def test_two_identical_items_in_a_row_are_both_recorded(counter: SimulatedCounter) -> None:
    """The pan emptied between them is seen (an empty pan is never held, and a record never
    starts a hold), so the second is not refused as the same item pressed twice."""
    _start_visit(counter)
    counter.scale.place("1.000", settle_s=0)
    assert _until(lambda: _shown(counter, 1_000_000))
    counter.press()
    assert counter.next_result().outcome is Outcome.RECORDED
    counter.scale.place("0", settle_s=0)
    assert _until(lambda: _shown(counter, 0))
    counter.scale.place("1.000", settle_s=0)
    assert _until(lambda: _shown(counter, 1_000_000))
    counter.press()
    assert counter.next_result().outcome is Outcome.RECORDED
    assert counter.store.count("weighing") == 2


def test_no_hold_with_the_counter_screen(tmp_path: Path) -> None:
    """The screen shows the live weight: the daemon polls all along when it is enabled."""
    c = SimulatedCounter(tmp_path / "c", {"screen": {"enabled": True, "port": 0}})
    try:
        assert c.daemon.scale.settled_hold == 0
    finally:
        c.stop()
