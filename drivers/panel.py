"""The counter's GPIO panel: one big button (press / hold), green, red and amber LEDs, a buzzer."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from gpiozero import LED, Buzzer, DigitalInputDevice

__all__ = ["LedName", "Panel", "PanelPins", "Pattern", "beeps"]

log = logging.getLogger(__name__)

LedName = Literal["green", "red", "amber"]
_LED_NAMES: tuple[LedName, ...] = ("green", "red", "amber")
# one finite signal for the sequencer: its cancel event, (time, device, on) steps, the time
# the idle state comes back (None: never), and when it was asked for (monotonic)
_Sequence = tuple[threading.Event, list[tuple[float, Any, bool]], float | None, float]


@dataclass(frozen=True, slots=True)
class PanelPins:
    """Wiring of the panel (BCM numbers or gpiozero pin names); ``None`` = not fitted.

    The button is wired to GND with the internal pull-up by default (``button_pull_up=True``).
    ``hold_time`` is how long a press must last to count as a hold (void the last record).
    """

    button: int | str = 17
    green: int | str = 22
    red: int | str = 27
    amber: int | str | None = 23
    buzzer: int | str | None = 24
    button_pull_up: bool = True
    hold_time: float = 2.0
    bounce_time: float | None = 0.05

    def __post_init__(self) -> None:
        if self.hold_time <= 0:
            raise ValueError("hold_time must be > 0")
        if self.bounce_time is not None and self.bounce_time < 0:
            raise ValueError("bounce_time must be >= 0 or None")


def beeps(n: int, on_s: float = 0.1, off_s: float = 0.1) -> tuple[tuple[float, float], ...]:
    """``n`` identical beeps for :attr:`Pattern.beeps`: ``beeps(2)`` is two short beeps."""
    return ((on_s, off_s),) * n


def _train(device: Any, pairs: tuple[tuple[float, float], ...]) -> list[tuple[float, Any, bool]]:
    """``(time, device, on)`` steps for ``(on_s, off_s)`` pairs played back to back from 0."""
    steps: list[tuple[float, Any, bool]] = []
    t = 0.0
    for on_s, off_s in pairs:
        steps += [(t, device, True), (t + on_s, device, False)]
        t += on_s + off_s
    return steps


@dataclass(frozen=True, slots=True)
class Pattern:
    """A light-and-sound signal for the panel.

    ``led`` blinks ``count`` times (``on_time`` lit, ``off_time`` dark); ``count=None`` blinks
    until replaced and ``steady=True`` lights it continuously until replaced. ``beeps`` is the
    buzzer sequence as ``(on_s, off_s)`` pairs, played once. The station owns the table that maps
    outcomes to patterns; for example::

        RECORDED = Pattern("green", on_time=0.3, off_time=0.1, beeps=beeps(1))
        NO_CATEGORY = Pattern("red", count=3, beeps=beeps(2))
        UNSTABLE = Pattern("red", count=3, beeps=beeps(3))
        VOIDED = Pattern("amber", on_time=1.0, beeps=((0.6, 0.1),))
        CALL_TECHNICIAN = Pattern("red", count=None, beeps=((0.6, 0.2), (0.1, 0.1), (0.1, 0.1)))
        NOT_READY = Pattern("amber", steady=True)  # for Panel.idle()
    """

    led: LedName | None = None
    on_time: float = 0.2
    off_time: float = 0.2
    count: int | None = 1
    steady: bool = False
    beeps: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if self.led is not None and self.led not in _LED_NAMES:
            raise ValueError(f"led must be one of {_LED_NAMES} or None, not {self.led!r}")
        if self.on_time <= 0 or self.off_time <= 0:
            raise ValueError("on_time and off_time must be > 0")
        if self.count is not None and self.count < 1:
            raise ValueError("count must be >= 1 or None")
        for on_s, off_s in self.beeps:
            if on_s <= 0 or off_s < 0:
                raise ValueError(f"bad beep {(on_s, off_s)!r}: on must be > 0, off >= 0")

    @property
    def endless(self) -> bool:
        """True when the light stays until the next signal or idle state."""
        return self.led is not None and (self.steady or self.count is None)

    @property
    def duration(self) -> float | None:
        """Seconds until the signal is over, or ``None`` when it is :attr:`endless`."""
        if self.endless:
            return None
        light = 0.0 if self.led is None or self.count is None else self.count * self.cycle
        return max(light, sum(on_s + off_s for on_s, off_s in self.beeps))

    @property
    def cycle(self) -> float:
        return self.on_time + self.off_time


class Panel:
    """The counter's button, LEDs and buzzer, built with an injected gpiozero pin factory.

    A press shorter than ``pins.hold_time`` calls ``on_press()`` when the button is released; a
    press reaching ``hold_time`` calls ``on_hold()`` once and its release calls nothing (gpiozero
    FAQ: ``when_held`` + ``when_released`` and a was-held flag). Both callbacks run on gpiozero's
    threads: they must only post an event and return. An exception they raise is logged.

    :meth:`signal` plays a :class:`Pattern` without blocking, cancelling the one playing; after a
    finite signal the :meth:`idle` pattern comes back. Thread-safe; :meth:`close` is idempotent
    and later calls are ignored.

    >>> from gpiozero.pins.mock import MockFactory
    >>> with Panel(PanelPins(), pin_factory=MockFactory()) as panel:
    ...     panel.signal(Pattern("green", beeps=beeps(1)))
    """

    def __init__(
        self,
        pins: PanelPins,
        *,
        pin_factory: Any = None,
        on_press: Callable[[], None] | None = None,
        on_hold: Callable[[], None] | None = None,
    ) -> None:
        self.pins = pins
        self.on_press = on_press
        self.on_hold = on_hold
        self._lock = threading.Lock()  # outputs, idle/signal state
        self._press_lock = threading.Lock()  # button state, shared by gpiozero's two threads
        self._down = False
        self._held = False
        self._closed = False
        self._idle: Pattern | None = None
        self._playing_finite = False
        self._cancel = threading.Event()
        # one sequencer thread for the panel's life, fed by signal(): starting a thread per
        # signal made the press path wait for the new thread to be scheduled (ms on a busy CPU)
        self._sequencer: threading.Thread | None = None
        self._sequences: queue.SimpleQueue[_Sequence | None] = queue.SimpleQueue()
        self._devices: list[Any] = []
        self._leds: dict[LedName, Any] = {}
        self._buzzer: Any = None
        try:
            for name in _LED_NAMES:
                pin = getattr(pins, name)
                if pin is not None:
                    self._leds[name] = self._add(LED(pin, pin_factory=pin_factory))
            if pins.buzzer is not None:
                self._buzzer = self._add(Buzzer(pins.buzzer, pin_factory=pin_factory))
            # a plain input, not gpiozero's Button: Button's hold thread polls ten times a
            # second all day long; a timer started by the press does the same job idle-free
            self._button: Any = self._add(
                DigitalInputDevice(
                    pins.button,
                    pull_up=pins.button_pull_up,
                    bounce_time=pins.bounce_time,
                    pin_factory=pin_factory,
                )
            )
        except Exception:
            self._close_devices()
            raise
        self._hold_timer: threading.Timer | None = None
        self._button.when_activated = self._pressed
        self._button.when_deactivated = self._released

    def _add(self, device: Any) -> Any:
        self._devices.append(device)
        return device

    # -- devices, for diagnostics (the technician's "test the panel") ----------------------------

    @property
    def button(self) -> Any:
        return self._button

    @property
    def buzzer(self) -> Any:
        return self._buzzer

    def led(self, name: LedName) -> Any:
        """The gpiozero LED called ``name``, or ``None`` when it is not fitted."""
        return self._leds.get(name)

    # -- button ---------------------------------------------------------------------------------

    @property
    def held(self) -> bool:
        """True once the button has been down for ``hold_time`` (until it is released)."""
        with self._press_lock:
            return self._held

    def _pressed(self) -> None:
        timer = threading.Timer(self.pins.hold_time, self._was_held)
        timer.daemon = True
        with self._press_lock:
            self._down, self._held = True, False
            if self._hold_timer is not None:
                self._hold_timer.cancel()
            self._hold_timer = timer
        timer.start()

    def _was_held(self) -> None:
        with self._press_lock:
            # The hold thread may wake just after the release: that press was already a press.
            if not self._down or self._held:
                return
            self._held = True
        self._fire(self.on_hold, "on_hold")

    def _released(self) -> None:
        with self._press_lock:
            was_press = self._down and not self._held
            self._down = self._held = False
            if self._hold_timer is not None:
                self._hold_timer.cancel()
                self._hold_timer = None
        if was_press:
            self._fire(self.on_press, "on_press")

    @staticmethod
    def _fire(callback: Callable[[], None] | None, name: str) -> None:
        if callback is None:
            return
        try:
            callback()
        except Exception:  # an exception would kill gpiozero's hold thread: no more holds
            log.exception("panel %s callback failed", name)

    # -- lights and sound -----------------------------------------------------------------------

    def signal(self, pattern: Pattern) -> None:
        """Play ``pattern`` now, cancelling whatever is playing. Never blocks.

        Endless lights use gpiozero's own ``on()``/``blink()``. Everything finite (counted blinks,
        beeps) runs on one timeline in a small daemon thread per signal, so the idle state comes
        back strictly after the last step, and the next signal cancels it at once.
        """
        with self._lock:
            if self._closed:
                return
            self._stop_locked()
            steps: list[tuple[float, Any, bool]] = []
            led = self._leds.get(pattern.led) if pattern.led is not None else None
            if pattern.led is not None and led is None:
                log.debug("panel: no %s LED fitted", pattern.led)
            if pattern.endless:
                self._light_locked(pattern)
            elif led is not None and pattern.count is not None:
                steps += _train(led, ((pattern.on_time, pattern.off_time),) * pattern.count)
            if self._buzzer is not None:
                steps += _train(self._buzzer, pattern.beeps)
            steps.sort(key=lambda step: step[0])  # stable: an "off" stays before an "on" at t
            while (
                steps and steps[0][0] <= 0
            ):  # the first light and beep now, not after a thread hop
                _, device, on = steps.pop(0)
                device.on() if on else device.off()
            duration = pattern.duration
            self._playing_finite = duration is not None
            if steps or duration is not None:
                self._sequences.put((self._cancel, steps, duration, time.monotonic()))
                if self._sequencer is None:  # the first finite signal starts it, once
                    self._sequencer = threading.Thread(
                        target=self._run_sequences, name="panel-sequencer", daemon=True
                    )
                    self._sequencer.start()

    @property
    def playing(self) -> bool:
        """True while a finite signal plays; the idle state is back once this turns False."""
        with self._lock:
            return self._playing_finite

    def idle(self, pattern: Pattern | None) -> None:
        """Set the background state shown when no signal plays (``None``: all dark).

        Applied now, or when the finite signal playing ends. An endless signal is replaced. The
        beeps of an idle pattern are ignored: sound belongs to :meth:`signal`.
        """
        with self._lock:
            if self._closed:
                return
            self._idle = pattern
            if not self._playing_finite:
                self._stop_locked()
                self._show_idle_locked()

    def _run_sequences(self) -> None:
        """The sequencer thread: plays the finite signals in the order given, until close().
        A signal cancels the one before it, which returns at once, so the next starts on time."""
        while True:
            job = self._sequences.get()
            if job is None:
                return
            self._sequence(*job)

    def _sequence(
        self,
        cancel: threading.Event,
        steps: list[tuple[float, Any, bool]],
        end: float | None,
        started: float,
    ) -> None:
        """Switch outputs at their times from ``started``, then bring the idle state back (if
        ``end``).

        Returns as soon as ``cancel`` is set; whoever sets it (under the lock) has already turned
        every output off. Late steps (a loaded CPU) run late but in order: none is skipped.
        """
        for at, device, on in steps:
            if cancel.wait(max(0.0, started + at - time.monotonic())):
                return
            with self._lock:
                if cancel.is_set():
                    return
                if on:
                    device.on()
                else:
                    device.off()
        if end is None:
            return
        if cancel.wait(max(0.0, started + end - time.monotonic())):
            return
        with self._lock:
            if cancel.is_set():
                return
            for led in self._leds.values():
                led.off()
            if self._buzzer is not None:
                self._buzzer.off()
            self._show_idle_locked()
            self._playing_finite = False

    def _light_locked(self, pattern: Pattern) -> None:
        assert pattern.led is not None
        led = self._leds.get(pattern.led)
        if led is None:
            log.debug("panel: no %s LED fitted", pattern.led)
        elif pattern.steady:
            led.on()
        else:
            led.blink(pattern.on_time, pattern.off_time, n=pattern.count, background=True)

    def _show_idle_locked(self) -> None:
        if self._idle is not None and self._idle.led is not None:
            self._light_locked(self._idle)

    def _stop_locked(self) -> None:
        """Cancel the running sequence and turn every output off (stops gpiozero's blinks)."""
        self._cancel.set()
        self._cancel = threading.Event()
        self._playing_finite = False
        for led in self._leds.values():
            led.off()
        if self._buzzer is not None:
            self._buzzer.off()

    # -- life cycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Turn everything off and release the pins. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._cancel.set()
            sequencer, self._sequencer = self._sequencer, None
            self._sequences.put(None)
        with self._press_lock:
            if self._hold_timer is not None:
                self._hold_timer.cancel()
                self._hold_timer = None
        if sequencer is not None and sequencer is not threading.current_thread():
            sequencer.join(1.0)
        self._close_devices()

    def _close_devices(self) -> None:
        # The button first, so no callback fires into a half-closed panel.
        for device in reversed(self._devices):
            try:
                device.close()
            except Exception:
                log.exception("panel: closing %r failed", device)
        self._devices.clear()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Panel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
