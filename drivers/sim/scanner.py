"""Barcode scanner simulator: serial scanner bytes on a pty or TCP socket, and HID keystrokes."""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
import tty
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evdev import InputEvent

__all__ = ["ScannerSimulator", "keystrokes", "main"]

log = logging.getLogger(__name__)


class ScannerSimulator:
    """A serial barcode scanner that "scans" on request, over a pty or a TCP socket.

    * ``start_pty(link)``: the reader opens the returned ``/dev/pts/N`` (or ``link``, a symlink
      kept pointing at the current pty the way udev keeps ``/dev/serial/by-id/…``).
    * ``start_tcp(host, port)``: the reader opens ``socket://host:port``; every connected client
      gets every scan.

    ``unplug()`` makes the device vanish (pty closed and link removed, or listening socket and
    clients closed); ``replug()`` brings it back under the same link or TCP port. Writes never
    block: bytes that do not fit (nobody reading a full pty) are dropped, as on a real line.

    >>> with ScannerSimulator() as sim:  # doctest: +SKIP
    ...     path = sim.start_pty()
    ...     sim.scan("3760123456789")
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mode: str | None = None
        self._plugged = False
        self._stopped = False
        # pty mode
        self._master: int | None = None
        self._pts: str | None = None
        self._link: Path | None = None
        # tcp mode
        self._host = "127.0.0.1"
        self._port = 0
        self._server: socket.socket | None = None
        self._clients: list[socket.socket] = []
        self._accept_stop = threading.Event()
        self._acceptor: threading.Thread | None = None

    # -- set-up ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """What a reader opens: the link (or pty path), or ``socket://host:port``."""
        if self._mode == "pty":
            return str(self._link) if self._link is not None else str(self._pts)
        if self._mode == "tcp":
            return f"socket://{self._host}:{self._port}"
        raise RuntimeError("simulator not started")

    @property
    def plugged(self) -> bool:
        return self._plugged

    def start_pty(self, link: str | os.PathLike[str] | None = None) -> str:
        """Create the pty (and the symlink ``link`` to it); return the path a reader opens."""
        with self._lock:
            self._require_unstarted()
            self._mode = "pty"
            self._link = Path(link) if link is not None else None
            self._open_pty()
        return self.url

    def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on ``host:port`` (0 = a free port); return the bound ``(host, port)``."""
        with self._lock:
            self._require_unstarted()
            self._mode = "tcp"
            self._host = host
            self._listen(port)
        return self._host, self._port

    def _require_unstarted(self) -> None:
        if self._mode is not None:
            raise RuntimeError("simulator already started")

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        try:
            tty.setraw(slave)  # no echo, no line editing: bytes pass through as sent
            pts = os.ttyname(slave)
        finally:
            # Only the reader keeps the slave open, so POLLHUP on the master means "nobody reading".
            os.close(slave)
        os.set_blocking(master, False)
        self._master, self._pts = master, pts
        if self._link is not None:
            tmp = self._link.with_name(f".{self._link.name}.{os.getpid()}.tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(pts)
            tmp.replace(self._link)  # atomic, like udev updating a by-id link
        self._plugged = True
        log.debug("scanner sim on %s", pts)

    def _close_pty(self) -> None:
        if self._link is not None:
            with contextlib.suppress(FileNotFoundError):
                self._link.unlink()
        master, self._master = self._master, None
        if master is not None:
            os.close(master)

    def _listen(self, port: int) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind((self._host, port))
            server.listen(4)
        except OSError:
            server.close()
            raise
        self._server = server
        self._port = server.getsockname()[1]
        self._accept_stop = threading.Event()
        self._acceptor = threading.Thread(
            target=self._accept_loop,
            args=(server, self._accept_stop),
            name="scanner-sim",
            daemon=True,
        )
        self._acceptor.start()
        self._plugged = True

    def _accept_loop(self, server: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                ready, _, _ = select.select([server], [], [], 0.05)
                if not ready:
                    continue
                conn, _ = server.accept()
            except OSError:
                return  # listening socket closed by unplug()/stop()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if stop.is_set():
                    conn.close()
                    return
                self._clients.append(conn)

    def _close_tcp(self) -> None:
        self._accept_stop.set()
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None and acceptor is not threading.current_thread():
            acceptor.join(2.0)
        server, self._server = self._server, None
        if server is not None:
            server.close()
        clients, self._clients = self._clients, []
        for conn in clients:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    # -- life cycle -----------------------------------------------------------------------------

    def unplug(self) -> None:
        """Make the device disappear, as when its USB cable is pulled."""
        with self._lock:
            if not self._plugged:
                return
            self._plugged = False
            if self._mode == "pty":
                self._close_pty()
        if self._mode == "tcp":
            self._close_tcp()  # outside the lock: the acceptor takes it

    def replug(self) -> str:
        """Bring the device back (same link / same TCP port); return :attr:`url`."""
        with self._lock:
            if self._mode is None or self._stopped:
                raise RuntimeError("simulator not started or already stopped")
            if self._plugged:
                return self.url
            if self._mode == "pty":
                self._open_pty()
            else:
                self._listen(self._port)
        return self.url

    def stop(self) -> None:
        """Unplug for good; releases every fd and thread. Idempotent."""
        self._stopped = True
        self.unplug()

    def __enter__(self) -> ScannerSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def has_reader(self) -> bool:
        """True when a reader has the device open (pty slave opened, or a TCP client)."""
        with self._lock:
            if not self._plugged:
                return False
            if self._mode == "tcp":
                return bool(self._clients)
            assert self._master is not None
            poller = select.poll()
            poller.register(self._master, select.POLLHUP)
            return not poller.poll(0)

    def wait_reader(self, timeout: float | None = 5.0) -> bool:
        """Wait until :meth:`has_reader` (at most ``timeout`` s; ``None`` = forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.has_reader():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    # -- scanning -------------------------------------------------------------------------------

    def scan(self, code: str, terminator: bytes = b"\r\n") -> int:
        """Send one code as the scanner would (ASCII + terminator). Returns bytes delivered."""
        return self.send_raw(code.encode("ascii") + terminator)

    def send_raw(self, data: bytes) -> int:
        """Send any bytes (garbage, half codes). Returns bytes delivered (0 when unplugged)."""
        with self._lock:
            if self._mode is None:
                raise RuntimeError("simulator not started")
            if not self._plugged:
                log.debug("scanner sim unplugged: %r lost", data)
                return 0
            if self._mode == "pty":
                return self._write_pty(data)
            return self._write_tcp(data)

    def _write_pty(self, data: bytes) -> int:
        assert self._master is not None
        try:
            return os.write(self._master, data)
        except BlockingIOError:
            log.debug("scanner sim: pty full, %r lost", data)
            return 0
        except OSError as exc:
            if exc.errno == errno.EIO:  # no reader has the slave open right now
                return 0
            raise

    def _write_tcp(self, data: bytes) -> int:
        sent = 0
        for conn in list(self._clients):
            try:
                conn.sendall(data)
                sent = len(data)
            except OSError:
                self._clients.remove(conn)
                conn.close()
        return sent


# -- HID keystrokes ------------------------------------------------------------------------------


def keystrokes(code: str, t0: float = 0.0, gap: float = 0.005) -> list[InputEvent]:
    """The evdev events a US-layout keyboard-wedge scanner sends for ``code``, then Enter.

    Each character is (Shift down, SYN) + key down, SYN + key up, SYN (+ Shift up, SYN), stamped
    ``gap`` seconds apart from ``t0``. Raises ``ValueError`` for a character a US keyboard cannot
    type. (Real keyboards also send ``EV_MSC/MSC_SCAN`` before each key; decoders ignore it.)
    """
    from evdev import InputEvent, ecodes

    from ..scanner.hid import US_KEYMAP

    reverse: dict[str, tuple[int, bool]] = {}
    for key, (plain, shifted) in US_KEYMAP.items():
        reverse.setdefault(plain, (key, False))
        reverse.setdefault(shifted, (key, True))

    events: list[InputEvent] = []
    t = t0

    def emit(etype: int, ecode: int, value: int) -> None:
        sec = int(t)
        usec = round((t - sec) * 1_000_000)
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        events.append(InputEvent(sec, usec, etype, ecode, value))

    def press(ecode: int, value: int) -> None:
        emit(ecodes.EV_KEY, ecode, value)
        emit(ecodes.EV_SYN, ecodes.SYN_REPORT, 0)

    for char in code:
        if char not in reverse:
            raise ValueError(f"{char!r} cannot be typed on a US keyboard")
        ecode, shift = reverse[char]
        if shift:
            press(ecodes.KEY_LEFTSHIFT, 1)
        press(ecode, 1)
        press(ecode, 0)
        if shift:
            press(ecodes.KEY_LEFTSHIFT, 0)
        t += gap
    press(ecodes.KEY_ENTER, 1)
    press(ecodes.KEY_ENTER, 0)
    return events


# -- command line --------------------------------------------------------------------------------

_TERMINATORS = {"crlf": b"\r\n", "cr": b"\r", "lf": b"\n"}


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # run the finally blocks: close the pty, remove the link


def main(argv: Sequence[str] | None = None) -> int:
    """Run a simulated serial scanner; print its device path or socket URL on the first line."""
    parser = argparse.ArgumentParser(
        prog="pesee-scanner-sim",
        description="Simulated serial barcode scanner (pty or TCP). Scans the CODES given, "
        "or each line read from standard input.",
        epilog="examples:\n"
        "  pesee-scanner-sim --link /tmp/scanner 3760123456789 BEN-0042\n"
        "  pesee-scanner-sim --tcp 7002 < codes.txt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("codes", nargs="*", help="codes to scan (default: lines from stdin)")
    parser.add_argument("--tcp", type=int, metavar="PORT", help="listen on TCP PORT (0 = free)")
    parser.add_argument("--host", default="127.0.0.1", help="TCP address (default %(default)s)")
    parser.add_argument("--link", metavar="PATH", help="symlink to the pty, like a udev name")
    parser.add_argument(
        "--terminator", choices=sorted(_TERMINATORS), default="crlf", help="default %(default)s"
    )
    parser.add_argument(
        "--interval", type=float, default=0.2, help="seconds between scans (default %(default)s)"
    )
    parser.add_argument(
        "--linger",
        type=float,
        default=0.5,
        help="seconds to stay plugged after the last scan (default %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.tcp is not None and args.link:
        parser.error("--link applies to the pty mode only")
    terminator = _TERMINATORS[args.terminator]

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main else None
    sim = ScannerSimulator()
    try:
        if args.tcp is not None:
            sim.start_tcp(args.host, args.tcp)
        else:
            sim.start_pty(args.link)
        print(sim.url, flush=True)
        codes = args.codes or (line.strip() for line in sys.stdin)
        waited = False
        for code in codes:
            if not code:
                continue
            if not waited:
                # Bytes sent before the reader opens the port are flushed by its open(): wait.
                print("waiting for a reader…", file=sys.stderr, flush=True)
                sim.wait_reader(timeout=None)
                # The reader's open() ends by flushing its input: let it finish before the 1st scan.
                time.sleep(0.2)
                waited = True
            elif args.interval > 0:
                time.sleep(args.interval)
            sim.scan(code, terminator)
            print(f"scanned {code}", file=sys.stderr, flush=True)
        time.sleep(max(0.0, args.linger))
    except KeyboardInterrupt:
        return 130
    except (OSError, UnicodeEncodeError) as exc:
        print(f"pesee-scanner-sim: {exc}", file=sys.stderr)
        return 1
    finally:
        sim.stop()
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
