"""A simulated USB HID POS scale behind a named pipe, read as the kernel serves /dev/hidrawN.

The pty line of :class:`~drivers.sim.scale.ScaleSimulator` (``protocol="hid-pos"``) carries the
same reports, but a pty is a terminal; a pipe is not, like a hidraw node, so it takes the path
the station uses for a real HID scale (``hidraw://``, no line settings). As with hidraw, reports
are only delivered while someone reads: none pile up before the station opens the device.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
from pathlib import Path

from .personalities.hidpos import HidPosPersonality
from .scale import ScaleSimulator

__all__ = ["HidrawPipe"]

_JOIN_S = 2.0


class HidrawPipe:
    """Writes ``scale``'s report ``rate_hz`` times a second into the FIFO at ``path``.

    ``scale`` is the weight model (a :class:`ScaleSimulator` speaking ``hid-pos``; a new one
    when not given): tests place loads on it as on any simulated scale. :meth:`unplug` removes
    the node and ends the stream (the reader sees end of file, as a vanished device);
    :meth:`replug` makes a new one at the same path.

    >>> with HidrawPipe("/tmp/hidraw-sim") as pipe:     # doctest: +SKIP
    ...     pipe.scale.place("1.250", settle_s=0)
    """

    def __init__(
        self, path: str | Path, scale: ScaleSimulator | None = None, *, rate_hz: float = 10.0
    ) -> None:
        if rate_hz <= 0:
            raise ValueError("rate_hz must be positive")
        self.path = Path(path)
        self.scale = scale or ScaleSimulator(HidPosPersonality())
        if self.scale.personality.name != HidPosPersonality.name:
            raise ValueError(f"the simulated scale speaks {self.scale.protocol}, not hid-pos")
        self.rate_hz = rate_hz
        self.sent = 0  # reports written
        self._fd: int | None = None
        self._plugged = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """What ``[scale] url`` takes: the node's path (hid-pos reads it through hidraw://)."""
        return str(self.path)

    def start(self) -> str:
        """Make the node and start the stream; returns :attr:`url`."""
        if self._thread is not None:
            raise RuntimeError("already started")
        self._make_node()
        self._thread = threading.Thread(target=self._run, name="hidraw-sim", daemon=True)
        self._thread.start()
        return self.url

    def _make_node(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISFIFO(os.lstat(self.path).st_mode):
                raise FileExistsError(f"{self.path} exists and is not a pipe")
            self.path.unlink()
        os.mkfifo(self.path, 0o600)
        self._plugged.set()

    def unplug(self) -> None:
        """Pull the cable: the node goes, the reader sees end of file."""
        with self._lock:
            self._plugged.clear()
            self._close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def replug(self) -> str:
        with self._lock:
            self._make_node()
        return self.url

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _run(self) -> None:
        period = 1.0 / self.rate_hz
        while not self._stop.wait(period):
            with self._lock:
                if self._plugged.is_set():
                    self._send(self.scale.frame())

    def _send(self, report: bytes) -> None:
        """Write one report whole, or drop it when nobody reads (as hidraw does)."""
        if self._fd is None:
            try:  # opening for writing succeeds only while a reader has the pipe open
                self._fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno not in (errno.ENXIO, errno.ENOENT):
                    raise
                return
        try:
            os.write(self._fd, report)  # 6 bytes < PIPE_BUF: written whole or not at all
            self.sent += 1
        except BlockingIOError:  # the reader is not reading: the report is lost
            pass
        except BrokenPipeError:  # the reader went away
            self._close()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(_JOIN_S)
        self.unplug()

    def __enter__(self) -> HidrawPipe:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
