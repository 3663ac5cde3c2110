"""The panel's one sequencer thread: a signal on the press path starts no thread, finite signals
play in order, and one cancelled by the next never switches an output again."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from drivers.panel import Panel, PanelPins, Pattern, beeps


def _wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def _ever_on(pin: Any) -> bool:
    return any(s.state for s in list(pin.states))


def _sequencers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "panel-sequencer"]


@pytest.fixture
def panel() -> Iterator[Panel]:
    factory = MockFactory()
    made = Panel(PanelPins(), pin_factory=factory)
    yield made
    made.close()
    factory.reset()


def test_signals_after_the_first_start_no_thread(panel: Panel) -> None:
    before = _sequencers()
    panel.signal(Pattern("green", beeps=beeps(1)))
    _wait_until(lambda: not panel.playing)
    threads = set(threading.enumerate())
    assert len(_sequencers()) == len(before) + 1
    for _ in range(5):
        panel.signal(Pattern("red", count=2, on_time=0.01, off_time=0.01, beeps=beeps(2)))
        assert set(threading.enumerate()) == threads  # the same threads, none started
    _wait_until(lambda: not panel.playing)


def test_a_cancelled_signal_never_switches_an_output_again(panel: Panel) -> None:
    red, amber, buzzer = panel.led("red").pin, panel.led("amber").pin, panel.buzzer.pin
    alarm = Pattern("red", count=None, on_time=0.01, off_time=0.01, beeps=((0.03, 0.01),) * 200)
    panel.signal(alarm)
    _wait_until(lambda: _ever_on(buzzer) and _ever_on(red))
    panel.signal(Pattern("green", steady=True))
    red.clear_states()
    buzzer.clear_states()
    # the next finite signal plays after the cancelled alarm's turn on the same thread: once it
    # is over, the alarm has certainly returned
    panel.signal(Pattern("amber", count=1, on_time=0.01, off_time=0.01))
    _wait_until(lambda: not panel.playing)
    assert _ever_on(amber)
    assert not _ever_on(red) and not _ever_on(buzzer)


def test_close_ends_the_sequencer(panel: Panel) -> None:
    panel.signal(Pattern("green", count=None, beeps=((0.05, 0.05),) * 100))
    (sequencer,) = [t for t in _sequencers() if t.is_alive()][-1:]
    panel.close()
    sequencer.join(5.0)
    assert not sequencer.is_alive()
