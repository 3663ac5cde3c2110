"""Serial / USB-CDC barcode scanners: one CR/LF-terminated ASCII line per scan, read on a thread."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from common.service import ServiceThread

from ..serialio import (
    MAX_FRAME,
    Backoff,
    LineFramer,
    LinkSettings,
    SerialTransport,
    run_with_reconnect,
)

__all__ = ["SerialScanner", "check_code"]

log = logging.getLogger(__name__)

_TERMINATORS = b"\r\n"


def check_code(line: bytes) -> str:
    """Strip surrounding whitespace and return the code as text.

    Raises ``ValueError`` when the line is empty or holds anything but printable ASCII (bytes
    0x20–0x7E): a misread or a scanner sending the wrong charset must never reach the station.
    GS1 group separators (0x1D) are therefore refused too.
    """
    stripped = line.strip()
    if not stripped:
        raise ValueError("empty code")
    bad = [b for b in stripped if not 0x20 <= b <= 0x7E]
    if bad:
        raise ValueError(f"non-printable or non-ASCII byte 0x{bad[0]:02x} in {line!r}")
    return stripped.decode("ascii")


class SerialScanner:
    """Reads codes from a serial scanner opened by pyserial URL, on a daemon thread "scanner".

    Codes end with CR, LF or CR LF. Each complete line is stripped and must be printable ASCII,
    otherwise it goes to ``on_error(message)`` (never to ``on_code``). A partial line followed by
    ``idle_timeout`` seconds without any byte is discarded (logged). When the port goes away it is
    reopened with back-off; ``on_state(connected, detail)`` reports each change. All callbacks run
    on the reader thread; an exception they raise is logged and reading goes on.

    >>> with SerialScanner("/dev/serial/by-id/usb-Scanner-if00", print):  # doctest: +SKIP
    ...     input()
    """

    def __init__(
        self,
        url: str,
        on_code: Callable[[str], None],
        *,
        settings: LinkSettings | None = None,
        on_state: Callable[[bool, str], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        idle_timeout: float = 0.5,
        backoff: Backoff | None = None,
    ) -> None:
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be > 0")
        self.url = url
        self.on_code = on_code
        self.on_state = on_state
        self.on_error = on_error
        self.idle_timeout = idle_timeout
        # a scanner is idle most of the day: wake up twice a second, not twenty times
        self.transport = SerialTransport(url, settings, timeout=0.25, backoff=backoff)
        self.framer = LineFramer(_TERMINATORS)
        self.discarded = 0
        self.rejected = 0
        self._last_byte = 0.0
        self._dropped_seen = 0
        self._overflow = False
        self._service = ServiceThread(
            "scanner", self._run, lambda _exc: self._call(self.on_state, False, "reader crashed")
        )

    @property
    def running(self) -> bool:
        return self._service.running

    def start(self) -> None:
        self._service.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the reader and wait for it at most ``timeout`` seconds; the port is closed."""
        self._service.stop(timeout)

    def __enter__(self) -> SerialScanner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, stop: threading.Event) -> None:
        run_with_reconnect(self.transport, self._read_once, stop, self._state)

    def _read_once(self) -> None:
        data = self.transport.read()
        now = time.monotonic()
        if data:
            self._last_byte = now
            start = 0
            for i, byte in enumerate(data):
                if byte in _TERMINATORS:
                    self._feed(data[start : i + 1], terminated=True)
                    start = i + 1
            if start < len(data):
                self._feed(data[start:], terminated=False)
        elif (self.framer.pending or self._overflow) and now - self._last_byte > self.idle_timeout:
            log.warning("scanner: partial code %r discarded (no terminator)", self.framer.pending)
            self.framer.reset()
            self._overflow = False
            self.discarded += 1

    def _feed(self, piece: bytes, *, terminated: bool) -> None:
        """Feed at most one line's worth of bytes (``piece`` holds a terminator only at its end)."""
        frames = self.framer.feed(piece)
        if self.framer.dropped != self._dropped_seen:
            # LineFramer empties its buffer on overflow but keeps collecting, so the tail of an
            # over-long line would come out as a code of its own: refuse the whole line instead.
            self._dropped_seen = self.framer.dropped
            self._overflow = True
        if not terminated:
            return
        if self._overflow:
            self._overflow = False
            self._reject(f"line longer than {MAX_FRAME} bytes")
            return
        for line in frames:
            self._line(line)

    def _line(self, line: bytes) -> None:
        try:
            code = check_code(line)
        except ValueError as exc:
            if line.strip():
                self._reject(str(exc))
            return  # a blank line (e.g. spaces then CR) is just noise
        self._call(self.on_code, code)

    def _reject(self, message: str) -> None:
        self.rejected += 1
        log.warning("scanner: rejected %s", message)
        self._call(self.on_error, message)

    def _state(self, connected: bool, detail: str) -> None:
        if connected:
            self._overflow = False
            self.framer.reset()  # bytes from before an unplug are not half of a new code
        log.log(
            logging.INFO if connected else logging.WARNING,
            "scanner %s: %s",
            "up" if connected else "down",
            detail,
        )
        self._call(self.on_state, connected, detail)

    @staticmethod
    def _call(callback: Callable[..., None] | None, *args: object) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            log.exception("scanner callback %r failed", callback)
