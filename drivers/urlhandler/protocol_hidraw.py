"""``hidraw://PATH``: a HID device (``/dev/hidrawN``), a FIFO or a pty read as a byte stream.

pyserial opens only terminals: ``tcgetattr`` fails on ``/dev/hidraw0``. This handler opens the
path read-only and serves what ``read()`` returns, through pyserial's interface, so
:class:`~drivers.serialio.SerialTransport` (timeouts, reconnect, unplug as an error) is unchanged.

Each ``read()`` of a hidraw device returns one whole report and drops what does not fit the
buffer, so reports are read whole into a buffer of our own and served from it byte by byte.
A FIFO (the simulator's hidraw) says end of file while no writer has it open: before anything
came, while its node is still there, that is a quiet device; after, or once the node is gone or
replaced, it is a lost one, like ENODEV from hidraw on unplug.
"""

from __future__ import annotations

import os
import select
import time
from typing import Any

from serial.serialutil import PortNotOpenError, SerialBase, SerialException, Timeout

__all__ = ["Serial"]

_READ = 4096  # larger than any HID report: a short buffer would truncate it
_QUIET_S = 0.05  # a writerless FIFO reads as end of file at once: wait this long instead


class Serial(SerialBase):  # type: ignore[misc]  # pyserial has no type hints
    """A read-only report stream; line settings are accepted and ignored."""

    is_open: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._fd: int | None = None
        self._pending = bytearray()
        self._heard = False  # something was read since the device was opened
        self._node = (0, 0)  # the device's (st_dev, st_ino) when opened
        super().__init__(*args, **kwargs)

    @property
    def path(self) -> str:
        port = str(self.portstr or self.port or "")
        return port.split("://", 1)[1] if "://" in port else port

    def open(self) -> None:
        if self.port is None:
            raise SerialException("Port must be configured before it can be used.")
        if self.is_open:
            raise SerialException("Port is already open.")
        try:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError as exc:
            raise SerialException(exc.errno, f"could not open {self.path}: {exc}") from exc
        stat = os.fstat(self._fd)
        self._node = (stat.st_dev, stat.st_ino)
        self._pending.clear()
        self._heard = False
        self.is_open = True

    def _reconfigure_port(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to set on a report stream."""

    def close(self) -> None:
        fd, self._fd = self._fd, None
        self.is_open = False
        if fd is not None:
            os.close(fd)

    def _fill(self, wait: float | None) -> bool:
        """Read what the device has (waiting up to ``wait`` s for it); False when nothing came."""
        fd = self._fd
        if fd is None:
            raise PortNotOpenError()
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            # a FIFO that never had a writer does not even wake select: watch its node
            if not self._heard and not self._node_there():
                raise SerialException(f"{self.path}: gone")
            return False
        try:
            chunk = os.read(fd, _READ)
        except BlockingIOError:
            return False
        if not chunk:
            if self._heard or not self._node_there():
                raise SerialException(f"{self.path}: end of file (device gone)")
            time.sleep(min(wait, _QUIET_S) if wait is not None else _QUIET_S)  # no busy loop
            return False
        self._heard = True
        self._pending += chunk
        return True

    def _node_there(self) -> bool:
        """The path still names the device opened (not unplugged, not replaced)."""
        try:
            stat = os.stat(self.path)
        except OSError:
            return False
        return (stat.st_dev, stat.st_ino) == self._node

    @property
    def in_waiting(self) -> int:
        while self._fill(0):
            pass
        return len(self._pending)

    def read(self, size: int = 1) -> bytes:
        if not self.is_open:
            raise PortNotOpenError()
        timeout = Timeout(self._timeout)
        while len(self._pending) < size:
            wait = None if timeout.is_infinite else timeout.time_left()
            if not self._fill(wait) or timeout.expired():
                break
        data = bytes(self._pending[:size])
        del self._pending[:size]
        return data

    def write(self, data: bytes) -> int:
        raise SerialException(f"{self.path}: a report stream is read-only")

    def reset_input_buffer(self) -> None:
        while self._fill(0):
            pass
        self._pending.clear()

    def reset_output_buffer(self) -> None:
        """Nothing is ever written."""
