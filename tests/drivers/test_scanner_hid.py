"""Keyboard-wedge scanner: KeyDecoder on recorded event streams, HidScanner over a real fd."""

from __future__ import annotations

import errno
import os
import string
import struct
import threading
import time
from collections.abc import Callable, Iterable

import pytest
from evdev import InputEvent, ecodes
from evdev.eventio import EventIO
from hypothesis import given
from hypothesis import strategies as st

from drivers.scanner.hid import HidScanner, KeyDecoder
from drivers.serialio import Backoff
from drivers.sim.scanner import keystrokes

SYMBOLS = "-_=+[{]}\\|;:'\",<.>/?`~ !@#$%^&*()"
TYPEABLE = string.ascii_letters + string.digits + SYMBOLS


def decode(events: Iterable[InputEvent], decoder: KeyDecoder | None = None) -> list[str]:
    decoder = decoder or KeyDecoder()
    codes = []
    for ev in events:
        code = decoder.feed(ev.type, ev.code, ev.value, ev.timestamp())
        if code is not None:
            codes.append(code)
    return codes


def ev(code: int, value: int, t: float = 0.0, etype: int = ecodes.EV_KEY) -> InputEvent:
    sec = int(t)
    return InputEvent(sec, round((t - sec) * 1e6), etype, code, value)


def tap(*keys: int, t: float = 0.0) -> list[InputEvent]:
    out = []
    for key in keys:
        out += [ev(key, 1, t), ev(ecodes.SYN_REPORT, 0, t, ecodes.EV_SYN), ev(key, 0, t)]
    return out


# -- KeyDecoder ----------------------------------------------------------------------------------


def test_lower_and_upper_case() -> None:
    assert decode(keystrokes("abcXYZ")) == ["abcXYZ"]


def test_digits_and_symbols() -> None:
    assert decode(keystrokes("0123456789")) == ["0123456789"]
    assert decode(keystrokes(SYMBOLS)) == [SYMBOLS]


def test_right_shift_tracked_from_down_and_up() -> None:
    events = [
        ev(ecodes.KEY_RIGHTSHIFT, 1),
        *tap(ecodes.KEY_A),
        ev(ecodes.KEY_RIGHTSHIFT, 2),  # autorepeat of a held Shift: still held
        *tap(ecodes.KEY_1),
        ev(ecodes.KEY_RIGHTSHIFT, 0),
        *tap(ecodes.KEY_A, ecodes.KEY_1, ecodes.KEY_ENTER),
    ]
    assert decode(events) == ["A!a1"]


def test_keypad_digits_and_keypad_enter() -> None:
    keys = [getattr(ecodes, f"KEY_KP{d}") for d in "9081"]
    events = tap(*keys, ecodes.KEY_KPDOT, ecodes.KEY_KPMINUS, ecodes.KEY_KPENTER)
    assert decode(events) == ["9081.-"]


def test_autorepeat_ignored() -> None:
    events = [
        ev(ecodes.KEY_7, 1),
        ev(ecodes.KEY_7, 2),
        ev(ecodes.KEY_7, 2),
        ev(ecodes.KEY_7, 0),
        ev(ecodes.KEY_ENTER, 1),
        ev(ecodes.KEY_ENTER, 2),
        ev(ecodes.KEY_ENTER, 0),
    ]
    assert decode(events) == ["7"]


def test_inter_key_timeout_discards_partial_code() -> None:
    decoder = KeyDecoder(inter_key_timeout=0.15)
    partial = keystrokes("LOST", t0=100.0)[:-4]  # without Enter down/SYN/up/SYN
    assert partial[-1].type == ecodes.EV_SYN
    full = keystrokes("KEPT", t0=101.0)
    assert decode(partial + full, decoder) == ["KEPT"]
    assert decoder.discarded == 1


def test_slow_but_within_timeout_is_one_code() -> None:
    decoder = KeyDecoder(inter_key_timeout=0.15)
    assert decode(keystrokes("SLOW", t0=5.0, gap=0.1), decoder) == ["SLOW"]
    assert decoder.discarded == 0


def test_enter_on_empty_buffer_gives_none() -> None:
    decoder = KeyDecoder()
    assert decode(tap(ecodes.KEY_ENTER, ecodes.KEY_KPENTER), decoder) == []
    assert decoder.feed(ecodes.EV_KEY, ecodes.KEY_ENTER, 1, 0.0) is None


def test_unknown_keys_ignored_and_counted() -> None:
    decoder = KeyDecoder()
    events = tap(ecodes.KEY_A, ecodes.KEY_TAB, ecodes.KEY_F5, ecodes.KEY_B, ecodes.KEY_ENTER)
    assert decode(events, decoder) == ["ab"]
    assert decoder.unknown == 2


def test_capslock_inverts_letters_only() -> None:
    events = [
        *tap(ecodes.KEY_CAPSLOCK, ecodes.KEY_A, ecodes.KEY_1),
        ev(ecodes.KEY_LEFTSHIFT, 1),
        *tap(ecodes.KEY_B, ecodes.KEY_1),
        ev(ecodes.KEY_LEFTSHIFT, 0),
        *tap(ecodes.KEY_CAPSLOCK, ecodes.KEY_C, ecodes.KEY_ENTER),
    ]
    assert decode(events) == ["A1b!c"]


def test_alt_code_mode() -> None:
    decoder = KeyDecoder()
    events = [
        *tap(ecodes.KEY_NUMLOCK),
        ev(ecodes.KEY_LEFTALT, 1),
        *tap(ecodes.KEY_KP6, ecodes.KEY_KP5),
        ev(ecodes.KEY_LEFTALT, 0),
        ev(ecodes.KEY_LEFTALT, 1),
        *tap(ecodes.KEY_KP0, ecodes.KEY_KP2, ecodes.KEY_KP3, ecodes.KEY_KP3),  # é: refused
        ev(ecodes.KEY_LEFTALT, 0),
        *tap(ecodes.KEY_ENTER),
    ]
    assert decode(events, decoder) == ["A"]
    assert decoder.unknown == 1


def test_other_event_types_ignored() -> None:
    events = [ev(ecodes.MSC_SCAN, 0x70004, etype=ecodes.EV_MSC), *keystrokes("q")]
    assert decode(events) == ["q"]


def test_keystrokes_refuses_untypeable() -> None:
    with pytest.raises(ValueError):
        keystrokes("café")


@given(st.lists(st.text(alphabet=TYPEABLE, min_size=1, max_size=40), min_size=1, max_size=5))
def test_round_trip_any_typeable_codes(codes: list[str]) -> None:
    events: list[InputEvent] = []
    for i, code in enumerate(codes):
        events += keystrokes(code, t0=10.0 * i)
    assert decode(events) == codes


# -- HidScanner over a real file descriptor ------------------------------------------------------

# struct input_event as the kernel writes it on this machine: struct timeval, __u16, __u16, __s32.
INPUT_EVENT = struct.Struct("@llHHi")


class PipeDevice(EventIO):
    """An event device backed by a pipe: evdev's own C reader parses the kernel structs."""

    def __init__(self, fd: int, keyboard: VirtualKeyboard) -> None:
        self.fd = fd
        self.keyboard = keyboard
        self.closed = False

    def grab(self) -> None:
        if self.keyboard.refuse_grabs > 0:
            self.keyboard.refuse_grabs -= 1
            raise OSError(errno.EBUSY, "Device or resource busy")
        self.keyboard.grabbed = True

    def ungrab(self) -> None:
        self.keyboard.grabbed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)


class VirtualKeyboard:
    """A pluggable keyboard: open() fails while unplugged; unplug() gives the reader EOF."""

    def __init__(self) -> None:
        self.refuse_grabs = 0
        self.grabbed = False
        self.opened: list[PipeDevice] = []
        self._read_fd: int | None = None
        self._write_fd: int | None = None

    def plug(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)  # evdev opens O_NONBLOCK

    def unplug(self) -> None:
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None
        if self._read_fd is not None:  # never opened: drop it
            os.close(self._read_fd)
            self._read_fd = None

    def open(self, path: str) -> PipeDevice:
        if self._read_fd is None:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        device = PipeDevice(self._read_fd, self)
        self._read_fd = None  # the device owns it now
        self.opened.append(device)
        return device

    def send(self, events: Iterable[InputEvent]) -> None:
        assert self._write_fd is not None
        data = b"".join(INPUT_EVENT.pack(e.sec, e.usec, e.type, e.code, e.value) for e in events)
        step = INPUT_EVENT.size * (4096 // INPUT_EVENT.size)  # whole structs, atomic writes
        for i in range(0, len(data), step):
            os.write(self._write_fd, data[i : i + step])

    def type(self, code: str, *, enter: bool = True) -> None:
        events = keystrokes(code, t0=time.time(), gap=0.001)
        self.send(events if enter else events[:-4])

    def close(self) -> None:
        self.unplug()
        for device in self.opened:
            device.close()


class Recorder:
    def __init__(self) -> None:
        self.codes: list[str] = []
        self.states: list[tuple[bool, str]] = []
        self._cond = threading.Condition()

    def code(self, code: str) -> None:
        with self._cond:
            self.codes.append(code)
            self._cond.notify_all()

    def state(self, connected: bool, detail: str) -> None:
        with self._cond:
            self.states.append((connected, detail))
            self._cond.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        with self._cond:
            assert self._cond.wait_for(predicate, timeout), "timed out"


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def keyboard() -> Iterable[VirtualKeyboard]:
    kb = VirtualKeyboard()
    yield kb
    kb.close()


def make_scanner(kb: VirtualKeyboard, rec: Recorder, **kwargs: object) -> HidScanner:
    return HidScanner(
        "/dev/input/by-id/usb-Test_Scanner-event-kbd",
        rec.code,
        on_state=rec.state,
        opener=kb.open,
        backoff=Backoff(0.01, 0.05),
        **kwargs,  # type: ignore[arg-type]
    )


def test_hid_scanner_reads_codes(keyboard: VirtualKeyboard) -> None:
    rec = Recorder()
    keyboard.plug()
    with make_scanner(keyboard, rec) as scanner:
        rec.wait(lambda: rec.states == [(True, scanner.path)])
        assert keyboard.grabbed
        keyboard.type("BEN-0042")
        keyboard.type("cat:textile")
        rec.wait(lambda: len(rec.codes) == 2)
    assert rec.codes == ["BEN-0042", "cat:textile"]
    assert not scanner.running
    assert keyboard.opened[-1].closed and not keyboard.grabbed


def test_hid_scanner_silence_discards_partial(keyboard: VirtualKeyboard) -> None:
    rec = Recorder()
    keyboard.plug()
    with make_scanner(keyboard, rec, inter_key_timeout=0.05) as scanner:
        rec.wait(lambda: bool(rec.states))
        keyboard.type("HALF", enter=False)
        wait_until(lambda: scanner.decoder.discarded == 1)
        keyboard.type("WHOLE")
        rec.wait(lambda: bool(rec.codes))
    assert rec.codes == ["WHOLE"]


def test_hid_scanner_survives_callback_error(keyboard: VirtualKeyboard) -> None:
    rec = Recorder()

    def on_code(code: str) -> None:
        rec.code(code)
        if code == "BOOM":
            raise RuntimeError("station bug")

    keyboard.plug()
    scanner = HidScanner(
        "kbd", on_code, on_state=rec.state, opener=keyboard.open, backoff=Backoff(0.01, 0.05)
    )
    with scanner:
        rec.wait(lambda: bool(rec.states))
        keyboard.type("BOOM")
        keyboard.type("AFTER")
        rec.wait(lambda: len(rec.codes) == 2)
    assert rec.codes == ["BOOM", "AFTER"]


def test_hid_scanner_retries_refused_grab(keyboard: VirtualKeyboard) -> None:
    rec = Recorder()
    keyboard.plug()
    keyboard.refuse_grabs = 1
    original_open = keyboard.open

    def reopenable(path: str) -> PipeDevice:
        if keyboard._read_fd is None:  # the refused device was closed: same node, new fd
            keyboard.plug()
        return original_open(path)

    keyboard.open = reopenable  # type: ignore[method-assign]
    with make_scanner(keyboard, rec):
        rec.wait(lambda: len(rec.states) == 2)
        assert rec.states[0][0] is False and "grab" in rec.states[0][1]
        assert rec.states[1][0] is True
        keyboard.type("GRABBED")
        rec.wait(lambda: bool(rec.codes))
    assert rec.codes == ["GRABBED"]
    assert keyboard.opened[0].closed


def test_hid_scanner_reopens_after_unplug(keyboard: VirtualKeyboard) -> None:
    rec = Recorder()
    keyboard.plug()
    with make_scanner(keyboard, rec):
        rec.wait(lambda: len(rec.states) == 1)
        keyboard.type("ONE")
        rec.wait(lambda: rec.codes == ["ONE"])
        keyboard.type("CUT", enter=False)
        keyboard.unplug()
        rec.wait(lambda: len(rec.states) == 2)
        assert rec.states[1][0] is False
        keyboard.plug()
        rec.wait(lambda: len(rec.states) == 3)
        assert rec.states[2][0] is True
        keyboard.type("TWO")
        rec.wait(lambda: len(rec.codes) == 2)
    assert rec.codes == ["ONE", "TWO"]  # the half code cut by the unplug is not glued to TWO
    assert [d.closed for d in keyboard.opened] == [True, True]


def test_hid_scanner_missing_device_reports_down(tmp_path: os.PathLike[str]) -> None:
    rec = Recorder()
    path = os.path.join(tmp_path, "usb-Nothing-event-kbd")
    with HidScanner(path, rec.code, on_state=rec.state, backoff=Backoff(0.01, 0.05)):
        rec.wait(lambda: bool(rec.states))
    assert rec.states[0][0] is False and path in rec.states[0][1]
    assert len(rec.states) == 1  # retries are not reported again
