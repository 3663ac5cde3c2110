"""Keyboard-wedge (USB HID) barcode scanners read through evdev: a pure key decoder and a reader."""

from __future__ import annotations

import contextlib
import errno
import logging
import select
import string
import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from evdev import InputDevice, InputEvent, ecodes

from common.service import ServiceThread

from ..serialio import Backoff

__all__ = [
    "ENTER_KEYS",
    "KEYPAD",
    "SHIFT_KEYS",
    "US_KEYMAP",
    "EventSource",
    "HidScanner",
    "KeyDecoder",
]

log = logging.getLogger(__name__)

# Key codes are positions named after the US key at that position: the scanner must be set to a
# US layout, otherwise digits come out as AZERTY's unshifted row. Values are (plain, shifted).
US_KEYMAP: dict[int, tuple[str, str]] = {
    getattr(ecodes, f"KEY_{c.upper()}"): (c, c.upper()) for c in string.ascii_lowercase
}
US_KEYMAP |= {
    getattr(ecodes, f"KEY_{d}"): (d, s) for d, s in zip("1234567890", "!@#$%^&*()", strict=True)
}
US_KEYMAP |= {
    ecodes.KEY_MINUS: ("-", "_"),
    ecodes.KEY_EQUAL: ("=", "+"),
    ecodes.KEY_LEFTBRACE: ("[", "{"),
    ecodes.KEY_RIGHTBRACE: ("]", "}"),
    ecodes.KEY_BACKSLASH: ("\\", "|"),
    ecodes.KEY_SEMICOLON: (";", ":"),
    ecodes.KEY_APOSTROPHE: ("'", '"'),
    ecodes.KEY_GRAVE: ("`", "~"),
    ecodes.KEY_COMMA: (",", "<"),
    ecodes.KEY_DOT: (".", ">"),
    ecodes.KEY_SLASH: ("/", "?"),
    ecodes.KEY_SPACE: (" ", " "),
}

# Keypad keys give the same character with or without Shift and whatever NumLock says: a scanner
# that types on the keypad always means the digit, never Home/End.
KEYPAD: dict[int, str] = {getattr(ecodes, f"KEY_KP{d}"): d for d in "0123456789"}
KEYPAD |= {
    ecodes.KEY_KPDOT: ".",
    ecodes.KEY_KPMINUS: "-",
    ecodes.KEY_KPPLUS: "+",
    ecodes.KEY_KPASTERISK: "*",
    ecodes.KEY_KPSLASH: "/",
    ecodes.KEY_KPEQUAL: "=",
}

SHIFT_KEYS = frozenset({ecodes.KEY_LEFTSHIFT, ecodes.KEY_RIGHTSHIFT})
ALT_KEYS = frozenset({ecodes.KEY_LEFTALT, ecodes.KEY_RIGHTALT})
CTRL_KEYS = frozenset({ecodes.KEY_LEFTCTRL, ecodes.KEY_RIGHTCTRL})
ENTER_KEYS = frozenset({ecodes.KEY_ENTER, ecodes.KEY_KPENTER})
# Sent by scanners but meaningless for decoding: NumLock (before Alt codes), the Meta keys.
SILENT_KEYS = frozenset({ecodes.KEY_NUMLOCK, ecodes.KEY_LEFTMETA, ecodes.KEY_RIGHTMETA})

_KEY_UP, _KEY_DOWN = 0, 1


class KeyDecoder:
    """Turns a US-layout keyboard-wedge event stream into barcodes. Pure: no I/O, no clock.

    Feed every event; :meth:`feed` returns the code when Enter (or keypad Enter) ends it.

    * Only key-down (value 1) produces characters; autorepeat (2) is ignored.
    * Shift is tracked from down and up events of both Shift keys.
    * CapsLock is handled like a keyboard does: each CapsLock key-down toggles it and it inverts the
      case of letters only (Shift+letter with CapsLock on gives lower case). The state is the
      scanner's own: a CapsLock pressed on another keyboard is not seen here.
    * Alt + keypad digits ("Alt code" mode of some scanners) gives the ASCII character of that
      number when Alt is released; values outside printable ASCII are counted as unknown.
    * Keys held with Ctrl, and keys not in the tables (Tab, F-keys, arrows…) are ignored and
      counted in :attr:`unknown`. Enter on an empty buffer returns ``None``.
    * A gap longer than ``inter_key_timeout`` between two key events (by event timestamps)
      discards the partial code before the new key is handled, counted in :attr:`discarded`.

    >>> d = KeyDecoder()
    >>> [d.feed(ecodes.EV_KEY, k, 1, 0.0) for k in (ecodes.KEY_4, ecodes.KEY_2, ecodes.KEY_ENTER)]
    [None, None, '42']
    """

    def __init__(self, inter_key_timeout: float = 0.15) -> None:
        if inter_key_timeout <= 0:
            raise ValueError("inter_key_timeout must be > 0")
        self.inter_key_timeout = inter_key_timeout
        self.discarded = 0
        self.unknown = 0
        self._buf: list[str] = []
        self._shift: set[int] = set()
        self._alt: set[int] = set()
        self._ctrl: set[int] = set()
        self._alt_digits = ""
        self._caps = False
        self._last: float | None = None

    @property
    def pending(self) -> str:
        """The partial code typed so far (empty when idle)."""
        return "".join(self._buf)

    @property
    def busy(self) -> bool:
        """True while a partial code (or Alt code) is being typed."""
        return bool(self._buf or self._alt_digits)

    def expire(self) -> bool:
        """Discard the partial code (the caller saw silence longer than the timeout).

        Returns True when something was discarded.
        """
        if not self.busy:
            return False
        log.warning("scanner: partial code %r discarded (no Enter)", self.pending)
        self.discarded += 1
        self._buf.clear()
        self._alt_digits = ""
        return True

    def reset(self) -> None:
        """Forget everything typed and every held modifier (after the device was reopened)."""
        self._buf.clear()
        self._shift.clear()
        self._alt.clear()
        self._ctrl.clear()
        self._alt_digits = ""
        self._caps = False
        self._last = None

    def feed(self, type: int, code: int, value: int, timestamp: float) -> str | None:
        """Handle one event; return the complete code when this event ends one."""
        if type != ecodes.EV_KEY:
            return None  # SYN reports, MSC scan codes, LED echoes
        if self._last is not None and timestamp - self._last > self.inter_key_timeout:
            self.expire()
        self._last = timestamp

        if code in SHIFT_KEYS or code in ALT_KEYS or code in CTRL_KEYS:
            self._modifier(code, value)
            return None
        if value != _KEY_DOWN:
            return None
        if code in ENTER_KEYS:
            text = "".join(self._buf)
            self._buf.clear()
            self._alt_digits = ""
            return text or None
        if code == ecodes.KEY_CAPSLOCK:
            self._caps = not self._caps
            return None
        if code in SILENT_KEYS:
            return None
        if self._ctrl:
            self.unknown += 1
            return None
        if self._alt:
            digit = KEYPAD.get(code, "")
            if digit.isdigit():
                self._alt_digits += digit
            else:
                self.unknown += 1
            return None
        char = self._char(code)
        if char is None:
            self.unknown += 1
        else:
            self._buf.append(char)
        return None

    def _modifier(self, code: int, value: int) -> None:
        held = self._shift if code in SHIFT_KEYS else self._alt if code in ALT_KEYS else self._ctrl
        if value == _KEY_UP:
            held.discard(code)
            if code in ALT_KEYS and not self._alt:
                self._end_alt_code()
        else:  # down or autorepeat: still held
            held.add(code)

    def _end_alt_code(self) -> None:
        digits, self._alt_digits = self._alt_digits, ""
        if not digits:
            return
        number = int(digits)
        if 0x20 <= number <= 0x7E:
            self._buf.append(chr(number))
        else:  # code-page dependent (Alt+0233 is é in CP1252, Ú in CP437): refuse to guess
            self.unknown += 1

    def _char(self, code: int) -> str | None:
        if code in KEYPAD:
            return KEYPAD[code]
        pair = US_KEYMAP.get(code)
        if pair is None:
            return None
        shifted = bool(self._shift)
        if self._caps and pair[0].isalpha():
            shifted = not shifted
        return pair[1] if shifted else pair[0]


class EventSource(Protocol):
    """What :class:`HidScanner` needs from an input device; :class:`evdev.InputDevice` is one."""

    def fileno(self) -> int: ...

    def read(self) -> Iterable[InputEvent]: ...

    def grab(self) -> None: ...

    def ungrab(self) -> None: ...

    def close(self) -> None: ...


def _open_input_device(path: str) -> EventSource:
    return InputDevice(path)


class HidScanner:
    """Reads a keyboard-wedge scanner from ``/dev/input/by-id/…-event-kbd`` on a daemon thread.

    The device is grabbed (EVIOCGRAB) so that scans are not also typed into a login prompt; a grab
    refused (another process holds it) is reported through ``on_state(False, why)`` and retried.
    When the device goes away (unplug: ``OSError`` ENODEV) it is reopened with back-off.
    ``on_code(code)`` and ``on_state(connected, detail)`` run on the reader thread; an exception
    they raise is logged and the reader carries on.

    ``opener(path)`` returns the device; any object with ``fileno()``, ``read()``, ``grab()``,
    ``ungrab()`` and ``close()`` will do (tests feed real ``input_event`` structs through a pipe).

    >>> with HidScanner("/dev/input/by-id/usb-Scanner-event-kbd", print):  # doctest: +SKIP
    ...     input()
    """

    # How often the thread looks at the stop flag and the silence timer while the device is quiet.
    POLL = 0.1

    def __init__(
        self,
        path: str,
        on_code: Callable[[str], None],
        *,
        grab: bool = True,
        on_state: Callable[[bool, str], None] | None = None,
        inter_key_timeout: float = 0.15,
        opener: Callable[[str], EventSource] = _open_input_device,
        backoff: Backoff | None = None,
    ) -> None:
        self.path = path
        self.on_code = on_code
        self.on_state = on_state
        self.grab = grab
        self.decoder = KeyDecoder(inter_key_timeout)
        self.backoff = backoff or Backoff()
        self._opener = opener
        self._service = ServiceThread(
            "scanner", self._run, lambda _exc: self._state(False, "reader crashed")
        )
        self._stop = self._service.stopping
        self._connected: bool | None = None

    @property
    def running(self) -> bool:
        return self._service.running

    def start(self) -> None:
        if self.running:
            return
        self._connected = None
        self._service.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the reader and wait for it at most ``timeout`` seconds."""
        self._service.stop(timeout)

    def __enter__(self) -> HidScanner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, stop: threading.Event) -> None:
        self._stop = stop  # _pump waits on the same event
        while not self._stop.is_set():
            try:
                device = self._opener(self.path)
            except OSError as exc:
                self._state(False, f"{self.path}: {exc}")
                self._stop.wait(self.backoff.next())
                continue
            try:
                if self.grab:
                    try:
                        device.grab()
                    except OSError as exc:
                        raise OSError(exc.errno, f"cannot grab (in use elsewhere?): {exc}") from exc
                self.backoff.reset()
                self._state(True, self.path)
                self._pump(device)
            except OSError as exc:
                self._state(False, f"{self.path}: {exc}")
            finally:
                self._release(device)
                self.decoder.reset()
            self._stop.wait(self.backoff.next())

    def _pump(self, device: EventSource) -> None:
        """Read events until stopped; raise OSError when the device goes away."""
        fd = device.fileno()
        last = time.monotonic()
        while not self._stop.is_set():
            wait = min(self.POLL, self.decoder.inter_key_timeout)
            ready, _, _ = select.select([fd], [], [], wait)
            now = time.monotonic()
            if not ready:
                if self.decoder.busy and now - last > self.decoder.inter_key_timeout:
                    self.decoder.expire()
                continue
            try:
                events = list(device.read())
            except BlockingIOError:
                continue
            if not events:  # readable yet nothing: end of file (an evdev node would say ENODEV)
                raise OSError(errno.ENODEV, "device closed")
            last = now
            for event in events:
                code = self.decoder.feed(event.type, event.code, event.value, event.timestamp())
                if code is not None:
                    try:
                        self.on_code(code)
                    except Exception:
                        log.exception("scanner on_code callback failed for %r", code)

    def _release(self, device: EventSource) -> None:
        if self.grab:
            with contextlib.suppress(OSError):  # unplugged or never grabbed: nothing to release
                device.ungrab()
        with contextlib.suppress(OSError):
            device.close()

    def _state(self, connected: bool, detail: str) -> None:
        if connected == self._connected:
            return  # report changes only: an absent scanner must not flood the log
        self._connected = connected
        log.log(
            logging.INFO if connected else logging.WARNING,
            "scanner %s: %s",
            "up" if connected else "down",
            detail,
        )
        if self.on_state is not None:
            try:
                self.on_state(connected, detail)
            except Exception:
                log.exception("scanner on_state callback failed")
