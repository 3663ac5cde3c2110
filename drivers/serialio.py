"""Serial transport for scales and scanners: pyserial URLs, framing, input flush, reconnect."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import serial

from .base import PortError

try:
    from termios import error as TermiosError
except ImportError:  # pragma: no cover - not POSIX

    class TermiosError(Exception):  # type: ignore[no-redef]
        pass


# What pyserial lets escape when a USB adapter vanishes: its own error, OSError (EIO, ENODEV),
# termios.error from tcflush, and TypeError/AttributeError from inside read() on a closed fd.
_PORT_ERRORS = (serial.SerialException, OSError, TermiosError, TypeError, AttributeError)

__all__ = [
    "MAX_FRAME",
    "Backoff",
    "Framer",
    "LineFramer",
    "LinkSettings",
    "SerialTransport",
    "TermiosError",
    "escape_frame",
    "framing_text",
    "parse_framing",
    "run_with_reconnect",
]

log = logging.getLogger(__name__)

# A frame that grows past this without a terminator is garbage: drop it rather than grow forever.
MAX_FRAME = 512


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """Line settings of one serial device (ignored by ``socket://`` and other non-tty URLs)."""

    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1
    rtscts: bool = False
    xonxoff: bool = False


def escape_frame(raw: bytes) -> str:
    """A frame as printable ASCII: control and 8-bit bytes (and backslash) as ``\\xNN``.

    The one escaper: the journal stores it, the technician's commands print it."""
    return "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in raw)


_FRAMING = re.compile(r"^([5-8])([NEOMS])(1|1\.5|2)$", re.IGNORECASE)


def framing_text(settings: LinkSettings) -> str:
    """Data bits, parity, stop bits as people write them: ``8N1``, ``7E1``."""
    stop = settings.stopbits
    stop_text = str(int(stop)) if float(stop).is_integer() else str(stop)
    return f"{settings.bytesize}{settings.parity}{stop_text}"


def parse_framing(text: str) -> tuple[int, str, float]:
    """``"7E1"`` -> (7, "E", 1); ValueError when it is not a framing."""
    match = _FRAMING.match(text.strip())
    if match is None:
        raise ValueError(text)
    bits, parity, stop = match.groups()
    return int(bits), parity.upper(), float(stop) if stop == "1.5" else int(stop)


class Framer(Protocol):
    """Splits a byte stream into frames. Stateful; ``reset()`` drops any partial frame."""

    def feed(self, data: bytes) -> list[bytes]: ...

    def reset(self) -> None: ...


class LineFramer:
    """Frames terminated by one of ``terminators`` (e.g. CR LF, or CR or LF for scanners).

    The terminator is stripped. Empty lines are dropped. An over-long line is dropped whole: its
    tail up to the next terminator is skipped, so it cannot pass for a frame of its own.
    """

    def __init__(self, terminators: bytes = b"\r\n", max_frame: int = MAX_FRAME) -> None:
        self._terms = terminators
        self._max = max_frame
        self._buf = bytearray()
        self._skipping = False
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        frames: list[bytes] = []
        for byte in data:
            if byte in self._terms:
                if self._buf and not self._skipping:
                    frames.append(bytes(self._buf))
                self._buf.clear()
                self._skipping = False
                continue
            if self._skipping:
                continue
            self._buf.append(byte)
            if len(self._buf) > self._max:
                self._buf.clear()
                self._skipping = True
                self.dropped += 1
        return frames

    def reset(self) -> None:
        self._buf.clear()
        self._skipping = False

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)


class Backoff:
    """Exponential back-off with a cap: 0.5, 1, 2, 4 … ``cap`` seconds; ``reset()`` on success."""

    def __init__(self, first: float = 0.5, cap: float = 10.0) -> None:
        self.first = first
        self.cap = cap
        self._next = first

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = self.first


class SerialTransport:
    """One serial device opened by pyserial URL (``/dev/ttyUSB0``, ``hwgrep://0403:6001``,
    ``socket://127.0.0.1:7001``, ``spy:///dev/ttyUSB0``).

    Not thread-safe: one owner thread reads and writes. ``open()`` raises :class:`PortError`;
    ``read()``/``write()`` raise :class:`PortError` when the device goes away, after closing it,
    so the owner can call :meth:`reconnect`.
    """

    def __init__(
        self,
        url: str,
        settings: LinkSettings | None = None,
        timeout: float = 0.05,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        self.url = url
        self.settings = settings or LinkSettings()
        self.timeout = timeout
        self.backoff = backoff or Backoff()
        self._port: Any = None

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def open(self) -> None:
        if self._port is not None:
            return
        s = self.settings
        try:
            port = serial.serial_for_url(
                self.url,
                baudrate=s.baudrate,
                bytesize=s.bytesize,
                parity=s.parity,
                stopbits=s.stopbits,
                rtscts=s.rtscts,
                xonxoff=s.xonxoff,
                timeout=self.timeout,
                write_timeout=1.0,
                do_not_open=True,
            )
            if isinstance(port, serial.Serial) and self.url.startswith("/"):
                port.exclusive = True  # another process must not steal frames from the scale
            port.open()
        except (serial.SerialException, OSError, ValueError, TermiosError) as exc:
            # termios.error: a line setting the device refuses (some ptys and adapters: 7E1)
            raise PortError(f"{self.url}: {exc}") from exc
        self._port = port
        self.backoff.reset()
        log.debug("opened %s", self.url)

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(*_PORT_ERRORS):  # already gone: nothing to release
                port.close()

    def reconnect(self, stop: threading.Event | None = None) -> bool:
        """Close, wait the next back-off delay, try to open once. True when open."""
        self.close()
        delay = self.backoff.next()
        if stop is not None:
            if stop.wait(delay):
                return False
        else:
            time.sleep(delay)
        try:
            self.open()
        except PortError as exc:
            log.debug("reopen failed: %s", exc)
            return False
        return True

    def _require(self) -> Any:
        if self._port is None:
            raise PortError(f"{self.url}: not open")
        return self._port

    def read(self, size: int = 256) -> bytes:
        """Read what is available (up to ``size``), waiting at most ``timeout`` for a first byte."""
        port = self._require()
        try:
            data: bytes = port.read(1)
            if data and size > 1:
                data += _drain(port, size - 1)
        except _PORT_ERRORS as exc:
            self.close()
            raise PortError(f"{self.url}: {exc}") from exc
        return data

    def write(self, data: bytes) -> None:
        port = self._require()
        try:
            port.write(data)
        except _PORT_ERRORS as exc:
            self.close()
            raise PortError(f"{self.url}: {exc}") from exc

    def flush_input(self) -> None:
        """Discard stale input (``reset_input_buffer``; ``flush()`` would only drain output)."""
        port = self._require()
        try:
            port.reset_input_buffer()
        except _PORT_ERRORS as exc:
            self.close()
            raise PortError(f"{self.url}: {exc}") from exc

    def frames(self, framer: Framer, deadline: float) -> Iterator[bytes]:
        """Yield frames until ``deadline`` (monotonic). Raises :class:`PortError` on unplug."""
        while time.monotonic() < deadline:
            data = self.read()
            if data:
                yield from framer.feed(data)

    def __enter__(self) -> SerialTransport:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _drain(port: Any, size: int) -> bytes:
    """What is already received, without waiting."""
    if isinstance(port, serial.Serial):  # a tty: the kernel says how much is waiting
        waiting = port.in_waiting
        return bytes(port.read(min(size, waiting))) if waiting else b""
    # socket:// and friends report in_waiting as 0 or 1: read with a zero timeout instead
    timeout, port.timeout = port.timeout, 0
    try:
        return bytes(port.read(size))
    finally:
        port.timeout = timeout


def run_with_reconnect(
    transport: SerialTransport,
    body: Callable[[], None],
    stop: threading.Event,
    on_state: Callable[[bool, str], None],
) -> None:
    """Run ``body`` repeatedly while the port is open; reopen with back-off when it goes away.

    ``on_state(connected, detail)`` is called on each change of state only (not on every failed
    retry), so a scale unplugged for hours does not flood the log. Returns when ``stop`` is set.
    """
    connected: bool | None = None
    while not stop.is_set():
        if not transport.is_open:
            try:
                transport.open()
            except PortError as exc:
                if connected is not False:
                    connected = False
                    on_state(False, str(exc))
                if stop.wait(transport.backoff.next()):
                    break
                continue
        if connected is not True:
            connected = True
            on_state(True, transport.url)
        try:
            body()
        except PortError as exc:
            connected = False
            on_state(False, str(exc))
            transport.close()
            if stop.wait(transport.backoff.next()):
                break
    transport.close()
