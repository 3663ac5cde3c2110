"""The GPIO panel on gpiozero's MockFactory: press vs hold, LED and buzzer patterns, close."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from drivers.panel import Panel, PanelPins, Pattern, beeps


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def rising_edges(pin: Any) -> int:
    states = [s.state for s in list(pin.states)]
    return sum(1 for a, b in itertools.pairwise(states) if not a and b)


def ever_on(pin: Any) -> bool:
    return any(s.state for s in list(pin.states))


class Counts:
    def __init__(self) -> None:
        self.presses = 0
        self.holds = 0
        self.threads: set[str] = set()

    def press(self) -> None:
        self.presses += 1

    def hold(self) -> None:
        self.holds += 1
        self.threads.add(threading.current_thread().name)


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    pin_factory = MockFactory()
    yield pin_factory
    pin_factory.reset()


@pytest.fixture
def make_panel(factory: MockFactory) -> Iterator[Callable[..., tuple[Panel, Counts]]]:
    made: list[Panel] = []

    def make(**pin_args: Any) -> tuple[Panel, Counts]:
        counts = Counts()
        panel = Panel(
            PanelPins(**pin_args),
            pin_factory=factory,
            on_press=counts.press,
            on_hold=counts.hold,
        )
        made.append(panel)
        return panel, counts

    yield make
    for panel in made:
        panel.close()


# -- button --------------------------------------------------------------------------------------


def test_short_press_calls_on_press_once(make_panel: Callable[..., tuple[Panel, Counts]]) -> None:
    panel, counts = make_panel(hold_time=5.0)  # far longer than two statements take
    pin = panel.button.pin
    pin.drive_low()
    assert counts.presses == 0  # a press is known only at release (it might become a hold)
    pin.drive_high()
    assert (counts.presses, counts.holds) == (1, 0)
    pin.drive_low()
    pin.drive_high()
    assert (counts.presses, counts.holds) == (2, 0)


def test_hold_calls_on_hold_once_and_no_press(
    make_panel: Callable[..., tuple[Panel, Counts]],
) -> None:
    panel, counts = make_panel(hold_time=0.05)
    pin = panel.button.pin
    pin.drive_low()
    wait_until(lambda: counts.holds == 1)
    pin.drive_high()
    assert (counts.presses, counts.holds) == (0, 1)
    # the next press starts afresh: a hold again
    pin.drive_low()
    wait_until(lambda: counts.holds == 2)
    pin.drive_high()
    assert (counts.presses, counts.holds) == (0, 2)


def test_release_without_press_is_ignored(
    make_panel: Callable[..., tuple[Panel, Counts]],
) -> None:
    panel, counts = make_panel(hold_time=5.0)
    panel.button.pin.drive_high()  # already released: no edge
    assert counts.presses == 0


def test_callbacks_raising_do_not_break_the_button(factory: MockFactory) -> None:
    calls: list[str] = []

    def bad(name: str) -> Callable[[], None]:
        def callback() -> None:
            calls.append(name)
            raise RuntimeError("station bug")

        return callback

    with Panel(PanelPins(hold_time=5.0), pin_factory=factory, on_press=bad("press")) as panel:
        for _ in range(2):
            panel.button.pin.drive_low()
            panel.button.pin.drive_high()
    assert calls == ["press", "press"]

    calls.clear()
    with Panel(PanelPins(hold_time=0.05), pin_factory=factory, on_hold=bad("hold")) as panel:
        for n in (1, 2):  # gpiozero's hold thread must survive the first exception
            panel.button.pin.drive_low()
            wait_until(lambda n=n: len(calls) == n)  # type: ignore[misc]
            panel.button.pin.drive_high()
    assert calls == ["hold", "hold"]


# -- lights and sound ----------------------------------------------------------------------------


def test_signal_lights_the_right_led(make_panel: Callable[..., tuple[Panel, Counts]]) -> None:
    panel, _ = make_panel()
    green, red, amber = (panel.led(n).pin for n in ("green", "red", "amber"))
    panel.signal(Pattern("green", steady=True))
    assert green.state is True
    assert not ever_on(red) and not ever_on(amber)
    panel.signal(Pattern("red", on_time=0.05, off_time=0.05, count=2))
    assert green.state is False
    wait_until(lambda: not panel.playing)
    wait_until(lambda: rising_edges(red) == 2 and red.state is False)
    assert not ever_on(amber)


@pytest.mark.parametrize(
    "sequence",
    [beeps(1), beeps(2), beeps(3, 0.02, 0.02), ((0.15, 0.0),), ((0.06, 0.02), (0.02, 0.02))],
    ids=["1-short", "2-short", "3-short", "1-long", "long-short"],
)
def test_buzzer_beeps_the_right_number_of_times(
    make_panel: Callable[..., tuple[Panel, Counts]], sequence: tuple[tuple[float, float], ...]
) -> None:
    panel, _ = make_panel()
    buzzer = panel.buzzer.pin
    panel.signal(Pattern(beeps=sequence))
    wait_until(lambda: not panel.playing)
    wait_until(lambda: rising_edges(buzzer) == len(sequence) and buzzer.state is False)
    panel.close()  # joins the sequencer: nothing it still had to play is missed
    assert rising_edges(buzzer) == len(sequence)


def test_new_signal_cancels_the_previous_one(
    make_panel: Callable[..., tuple[Panel, Counts]],
) -> None:
    panel, _ = make_panel()
    red, green, buzzer = panel.led("red").pin, panel.led("green").pin, panel.buzzer.pin
    alarm = Pattern("red", count=None, on_time=0.01, off_time=0.01, beeps=((0.03, 0.01),) * 200)
    panel.signal(alarm)
    wait_until(lambda: rising_edges(buzzer) >= 1 and rising_edges(red) >= 2)
    panel.signal(Pattern("green", steady=True))
    assert (red.state, buzzer.state, green.state) == (False, False, True)
    red.clear_states()
    buzzer.clear_states()
    assert green.state is True
    # a finite signal queued behind the cancelled alarm: once it has played, the one sequencer
    # is past the alarm, which must have left red and the buzzer off meanwhile
    panel.signal(Pattern("green", on_time=0.01, count=1))
    wait_until(lambda: not panel.playing)
    assert not ever_on(red) and not ever_on(buzzer)


def test_idle_state_returns_after_a_finite_signal(
    make_panel: Callable[..., tuple[Panel, Counts]],
) -> None:
    panel, _ = make_panel()
    amber, green = panel.led("amber").pin, panel.led("green").pin
    panel.idle(Pattern("amber", steady=True))
    assert amber.state is True
    panel.signal(Pattern("green", on_time=0.03, off_time=0.03, beeps=beeps(1, 0.02, 0.02)))
    assert amber.state is False  # the signal has the panel to itself
    wait_until(lambda: not panel.playing)
    assert amber.state is True and green.state is False


def test_idle_during_a_signal_waits_for_its_end(
    make_panel: Callable[..., tuple[Panel, Counts]],
) -> None:
    panel, _ = make_panel()
    amber = panel.led("amber").pin
    panel.signal(Pattern("green", on_time=30.0))
    panel.idle(Pattern("amber", steady=True))
    assert panel.playing and amber.state is False
    panel.signal(Pattern("red", on_time=0.01, off_time=0.01))
    wait_until(lambda: amber.state is True)
    panel.idle(None)
    assert amber.state is False


def test_endless_signal_is_replaced_by_idle(
    make_panel: Callable[..., tuple[Panel, Counts]],
) -> None:
    panel, _ = make_panel()
    red, amber = panel.led("red").pin, panel.led("amber").pin
    panel.signal(Pattern("red", steady=True))
    assert not panel.playing and red.state is True
    panel.idle(Pattern("amber", count=None, on_time=0.01, off_time=0.01))
    assert red.state is False
    wait_until(lambda: rising_edges(amber) >= 2)


def test_missing_amber_and_buzzer_are_skipped(
    make_panel: Callable[..., tuple[Panel, Counts]],
) -> None:
    panel, _ = make_panel(amber=None, buzzer=None)
    assert panel.led("amber") is None and panel.buzzer is None
    panel.signal(Pattern("amber", beeps=beeps(2)))
    panel.idle(Pattern("amber", steady=True))
    panel.signal(Pattern("green", steady=True, beeps=((0.01, 0.0), (0.02, 0.0))))
    assert panel.led("green").pin.state is True


def test_close_is_idempotent_and_releases_pins(factory: MockFactory) -> None:
    counts = Counts()
    panel = Panel(PanelPins(hold_time=5.0), pin_factory=factory, on_press=counts.press)
    button_pin = panel.button.pin
    panel.signal(Pattern("red", count=None, on_time=0.01, off_time=0.01, beeps=beeps(50)))
    panel.close()
    panel.close()
    assert panel.closed
    panel.signal(Pattern("green", steady=True))  # ignored, no error
    panel.idle(Pattern("amber", steady=True))
    button_pin.drive_low()
    button_pin.drive_high()
    assert counts.presses == 0
    # the pins are free again: a new panel can claim them
    with Panel(PanelPins(), pin_factory=factory) as again:
        again.signal(Pattern("green", steady=True))
        assert again.led("green").pin.state is True


def test_pattern_validation() -> None:
    with pytest.raises(ValueError):
        Pattern("blue")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Pattern("red", count=0)
    with pytest.raises(ValueError):
        Pattern("red", on_time=0)
    with pytest.raises(ValueError):
        Pattern(beeps=((0.0, 0.1),))
    with pytest.raises(ValueError):
        PanelPins(hold_time=0)
    assert Pattern("green", on_time=0.2, off_time=0.1, count=3).duration == pytest.approx(0.9)
    assert Pattern("green", count=None).duration is None
    assert Pattern(beeps=beeps(2)).duration == pytest.approx(0.4)
