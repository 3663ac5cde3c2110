"""Scale simulator speaking each protocol's real bytes (via personalities) over a pty or TCP."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import re
import select
import socket
import threading
import time
import tty
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from ..base import MG_PER_UNIT, parse_mass
from ..serialio import Framer
from .personalities import PERSONALITIES, Personality, SimState, get_personality

__all__ = ["PROTOCOLS", "Mass", "ScaleSimulator", "SimState"]

log = logging.getLogger(__name__)

PROTOCOLS = tuple(PERSONALITIES)
Mass = str | Decimal | int

_POLL_S = 0.05  # how often blocked threads look at their stop events
_JOIN_S = 2.0  # bounded joins: stop() must return even if a thread misbehaves
_WOBBLE_DIVISIONS = 3  # motion shows values within a few divisions of the moving weight
_MASS_TEXT = re.compile(r"^\s*([+-]?\s*[\d.,]+)\s*([A-Za-z]*)\s*$")


class ScaleSimulator:
    """A weighing scale behind a pty (like a USB-serial adapter) or a TCP port (like a
    serial-to-Ethernet converter), speaking ``protocol`` through its personality
    (:mod:`drivers.sim.personalities`): request/response, or frames streamed at ``rate_hz``.

    The weight model is thread-safe: tests call :meth:`place`, :meth:`remove`,
    :meth:`set_overload`… from any thread while the simulator's threads answer the line.
    ``baud`` paces every written byte at 10 bits per byte, as on a real 8N1 wire.

    >>> with ScaleSimulator() as sim:               # doctest: +SKIP
    ...     port = sim.start_pty("/tmp/scale0")
    ...     sim.place("1.250", settle_s=0.3)
    """

    def __init__(
        self,
        protocol: str | Personality = "mt-sics",
        *,
        baud: int | None = None,
        rate_hz: float = 10.0,
        capacity_mg: int = 15_000_000,
        serial_number: str = "1126493049",
        model: str = "Pesee-Sim 15kg",
        unit: str = "kg",
        decimals: int = 3,
        stable_timeout_s: float = 2.0,
        checksum: bool = True,
        zero_range_mg: int | None = None,
        seed: int | None = None,
        gain: Decimal | str | int = 1,
        offset_mg: int = 0,
        adjust_weight_mg: int = 10_000_000,
    ) -> None:
        # a name from PERSONALITIES (ValueError if unknown), or a personality of one's own
        self.personality = (
            protocol if isinstance(protocol, Personality) else get_personality(protocol)
        )
        if unit not in ("kg", "g"):
            raise ValueError(f"unit must be 'kg' or 'g', got {unit!r}")
        step = MG_PER_UNIT[unit].scaleb(-decimals)
        if decimals < 0 or step != step.to_integral_value() or step < 1:
            raise ValueError(f"{decimals} decimals of {unit} is not a whole number of mg")
        if baud is not None and baud <= 0:
            raise ValueError("baud must be positive")
        if rate_hz <= 0:
            raise ValueError("rate_hz must be positive")
        self.protocol = self.personality.name
        self.baud = baud
        self.rate_hz = rate_hz
        self.capacity_mg = capacity_mg
        self.serial_number = serial_number
        self.model = model
        self.unit = unit
        self.decimals = decimals
        self.division_mg = int(step)
        self.stable_timeout_s = stable_timeout_s
        self.checksum = checksum
        self.zero_range_mg = zero_range_mg
        # a scale out of adjustment shows gain × load + offset (before its own zero and tare)
        self.gain = Decimal(gain)
        self.offset_mg = offset_mg
        self.adjust_weight_mg = adjust_weight_mg
        self.adjustments: list[int] = []  # reference masses of the span adjustments run
        self.personality.check(self)

        # weight model, guarded by _lock
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._target = 0
        self._start = 0
        self._settle_from = 0.0
        self._settle_until = 0.0
        self._zero = 0
        self._tare = 0
        self._force_over = False
        self._force_under = False
        self._piece: int | None = None

        # line: _plug_lock serialises plug/unplug/stop; _io_lock guards fd lifetime and writes;
        # _msg_lock keeps one message contiguous on the wire.
        self._plug_lock = threading.Lock()
        self._io_lock = threading.Lock()
        self._msg_lock = threading.Lock()
        self._stop = threading.Event()
        self._down = threading.Event()
        self._down.set()
        self._kind: str | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._device: str | None = None
        self._link: Path | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._client: socket.socket | None = None
        self._serve_thread: threading.Thread | None = None
        self._stream_thread: threading.Thread | None = None
        self._script_thread: threading.Thread | None = None
        self._script_cancel = threading.Event()
        self._wire_free_at = 0.0
        self.dropped_bytes = 0  # written while nobody was reading (pty buffer full, no client)

    # ------------------------------------------------------------------ weight model

    def _to_mg(self, mass: Mass) -> int:
        if isinstance(mass, bool):
            raise TypeError("mass must be str, Decimal or int mg, not bool")
        if isinstance(mass, int):
            return mass
        if isinstance(mass, Decimal):
            return int((mass * MG_PER_UNIT[self.unit]).to_integral_value())
        match = _MASS_TEXT.match(mass)
        if match is None:
            raise ValueError(f"not a mass: {mass!r} (e.g. '1.250', '1.250 kg', '250 g')")
        return parse_mass(match.group(1), match.group(2) or self.unit)

    def _quantize(self, mg: int) -> int:
        """Round to the display division, half-even, in integers."""
        d = self.division_mg
        q, r = divmod(mg, d)
        if 2 * r > d or (2 * r == d and q % 2):
            q += 1
        return q * d

    def _gross_locked(self, now: float) -> tuple[int, bool]:
        if now >= self._settle_until:
            return self._target, False
        span = self._settle_until - self._settle_from
        if math.isinf(span):  # settle_s=inf: wobbles around the target until the next place()
            base = self._target
        else:
            left = (self._settle_until - now) / span if span > 0 else 0.0
            base = self._target + round((self._start - self._target) * left)
        wobble = self._rng.randint(-_WOBBLE_DIVISIONS, _WOBBLE_DIVISIONS) * self.division_mg
        return base + wobble, True

    def _state_locked(self, now: float) -> SimState:
        load, motion = self._gross_locked(now)
        gross = int((load * self.gain).to_integral_value()) + self.offset_mg
        # the range is the load cell's (the raw load above the zero), not the shown weight's: a
        # scale out of adjustment still takes loads up to Max + 9 d, so a station-side span can
        # correct the top of the range instead of finding it blanked (issue 17 item 5)
        raw_zero = (self._zero - self.offset_mg) / self.gain if self.gain else 0
        over = self._force_over or load - raw_zero > self.capacity_mg + 9 * self.division_mg
        net = self._quantize(gross - self._zero - self._tare)
        piece = self._piece
        pieces = None if piece is None else _round_half_even(net, piece)
        return SimState(
            net,
            gross,
            self._tare,
            self._zero,
            motion,
            over,
            self._force_under,
            center_zero=self._quantize(gross - self._zero) == 0,
            pieces=pieces,
            unit_weight_mg=piece,
        )

    def snapshot(self) -> SimState:
        """The scale's state now (a moving scale gives a different value on each call)."""
        with self._lock:
            return self._state_locked(time.monotonic())

    def place(self, mass: Mass, settle_s: float = 0.3) -> None:
        """Put a load on the pan: the gross goes to ``mass`` (str/Decimal in the display unit,
        or ``'250 g'``, or int mg), in motion for ``settle_s`` then stable.

        ``settle_s=math.inf`` keeps the scale in motion until the next :meth:`place`.
        """
        target = self._to_mg(mass)
        now = time.monotonic()
        with self._lock:
            self._start, _ = self._gross_locked(now)
            self._target = target
            self._settle_from = now
            self._settle_until = now + max(0.0, settle_s)

    def remove(self, settle_s: float = 0.3) -> None:
        """Empty the pan (gross back to 0; the display goes negative if zeroed under a load)."""
        self.place(0, settle_s)

    def adjust(self, reference_mg: int) -> None:
        """Span adjustment (MT-SICS ``C2``, A&D ``CAL``, Kern KCP ``JG``: the scale's own): the
        load now on the pan reads ``reference_mg`` from now on, and the empty pan reads zero. A
        load that is not the reference mass leaves the scale out of adjustment, as on a real
        scale."""
        with self._lock:
            load = self._target
            if load <= 0:
                raise ValueError("nothing on the pan to adjust against")
            self.gain = Decimal(reference_mg) / Decimal(load)
            self.offset_mg = 0
            self._zero = 0
            self.adjustments.append(reference_mg)

    def set_overload(self, on: bool = True) -> None:
        with self._lock:
            self._force_over = on

    def set_underload(self, on: bool = True) -> None:
        with self._lock:
            self._force_under = on

    def zero(self) -> str:
        """The zero key / ``Z``: ``"A"`` done, ``"I"`` in motion, ``"+"``/``"-"`` out of range."""
        return self.zero_detail()[0]

    def zero_detail(self, *, immediate: bool = False) -> tuple[str, SimState]:
        """Zero (``immediate``: even in motion, like MT-SICS ``ZI``); the status as :meth:`zero`
        and the state it was judged on."""
        with self._lock:
            state = self._state_locked(time.monotonic())
            if state.motion and not immediate:
                return "I", state
            return self._zero_locked(state), state

    def _zero_locked(self, state: SimState) -> str:
        if state.overload:
            return "+"
        if state.underload:
            return "-"
        if self.zero_range_mg is not None and abs(state.gross_mg) > self.zero_range_mg:
            return "+" if state.gross_mg > 0 else "-"
        self._zero = state.gross_mg
        return "A"

    def tare(self) -> tuple[str, int]:
        """The tare key / ``T``: (status, tare mg); status as :meth:`zero`."""
        with self._lock:
            state = self._state_locked(time.monotonic())
            if state.motion:
                return "I", self._tare
            if state.overload:
                return "+", self._tare
            if state.underload or state.gross_mg - state.zero_mg < 0:
                return "-", self._tare
            self._tare = self._quantize(state.gross_mg - state.zero_mg)
            return "A", self._tare

    def clear_tare(self) -> None:
        with self._lock:
            self._tare = 0

    def preset_tare(self, mg: int) -> int:
        """Store a tare of ``mg`` (rounded to the display), as a keyed-in tare; returns it."""
        if mg < 0:
            raise ValueError("a tare cannot be negative")
        with self._lock:
            self._tare = self._quantize(mg)
            return self._tare

    def set_piece_weight(self, mg: int | None) -> None:
        """Store the unit (piece) weight of a counting scale, in mg (None: forget it). Counting
        personalities then report pieces = round(net / unit weight)."""
        if mg is not None and (isinstance(mg, bool) or mg <= 0):
            raise ValueError("the piece weight must be a positive number of mg")
        with self._lock:
            self._piece = mg

    def wait_stable(self, down: threading.Event) -> SimState:
        """The state once stable or out of range, or still moving after ``stable_timeout_s``
        or when ``down`` is set (the cable was pulled)."""
        deadline = time.monotonic() + self.stable_timeout_s
        while True:
            state = self.snapshot()
            if state.overload or state.underload or not state.motion:
                return state
            if time.monotonic() >= deadline or down.wait(0.01):
                return state

    def script(self, steps: Sequence[tuple[Mass, float, float]], *, repeat: bool = False) -> None:
        """Run ``(mass, settle_s, hold_s)`` steps in the background (replacing a running script)."""
        self._cancel_script()
        plan = list(steps)
        cancel = threading.Event()
        self._script_cancel = cancel

        def run() -> None:
            while True:
                for mass, settle_s, hold_s in plan:
                    self.place(mass, settle_s)
                    wait = settle_s + hold_s
                    if cancel.wait(None if math.isinf(wait) else wait):
                        return
                if not repeat or not plan:
                    return

        self._script_thread = threading.Thread(target=run, name="scale-sim-script", daemon=True)
        self._script_thread.start()

    def wait_script(self, timeout: float | None = None) -> bool:
        """Wait for the running script to end; True when no script is running."""
        thread = self._script_thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _cancel_script(self) -> None:
        self._script_cancel.set()
        thread = self._script_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_S)
        self._script_thread = None

    # ------------------------------------------------------------------ output

    def frame(self) -> bytes:
        """The frame a streaming protocol sends for the current state (``TypeError`` if the
        protocol does not stream)."""
        return self.personality.frame(self)

    def press_print(self) -> bool:
        """The PRINT key: send the personality's print block; False when it has none."""
        block = self.personality.print_block(self)
        if block is None:
            return False
        self._write(block)
        return True

    def _stream(self) -> None:
        period = 1.0 / self.rate_hz
        due = time.monotonic()
        while not self._stop.is_set():
            if not self._down.is_set():
                self._write(self.frame())
            due += period
            delay = due - time.monotonic()
            if delay < -period:  # fell behind (e.g. slow baud): do not burst to catch up
                due = time.monotonic()
                delay = 0.0
            if self._stop.wait(max(0.0, delay)):
                return

    # ------------------------------------------------------------------ the line

    def garbage(self, data: bytes) -> None:
        """Inject raw bytes into the line, as noise or a half frame would."""
        self._write(data)

    def _write(self, data: bytes) -> None:
        with self._msg_lock:
            down = self._down
            if down.is_set():
                self.dropped_bytes += len(data)
                return
            if self.baud is None:
                with self._io_lock:
                    self._raw_write(data)
                return
            byte_s = 10.0 / self.baud  # start + 8 data + stop bits
            chunk = max(1, int(0.002 / byte_s))  # about 2 ms of wire per sleep
            t = max(time.monotonic(), self._wire_free_at)
            for i in range(0, len(data), chunk):
                piece = data[i : i + chunk]
                t += len(piece) * byte_s
                delay = t - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
                if down.is_set():
                    return
                with self._io_lock:
                    self._raw_write(piece)
            self._wire_free_at = t

    def _raw_write(self, data: bytes) -> None:
        """Write now, dropping what does not fit (nobody reading). Call with ``_io_lock``."""
        if self._master is not None:
            view = memoryview(data)
            while view:
                try:
                    sent = os.write(self._master, view)
                except OSError:  # buffer full (no reader) or pty gone: the bytes are lost
                    self.dropped_bytes += len(view)
                    return
                view = view[sent:]
        elif self._client is not None:
            try:
                self._client.sendall(data)
            except OSError:
                self.dropped_bytes += len(data)
                with contextlib.suppress(OSError):
                    self._client.shutdown(socket.SHUT_RDWR)  # the serve thread closes it
        else:
            self.dropped_bytes += len(data)

    def _handle(self, framer: Framer, data: bytes, down: threading.Event) -> None:
        for request in framer.feed(data):
            if down.is_set():
                return
            steps = self.personality.dialogue(request, self, down)
            if steps is not None:
                for line in steps:
                    self._write(line)
                continue
            reply = self.personality.respond(request, self, down)
            if reply:
                self._write(reply)

    def _serve_pty(self, master: int, down: threading.Event) -> None:
        framer = self.personality.request_framer()
        while not down.is_set():
            try:
                ready, _, _ = select.select([master], [], [], _POLL_S)
                if not ready:
                    continue
                data = os.read(master, 1024)
            except OSError:  # EIO while no one holds the slave: wait for a reader
                down.wait(_POLL_S)
                continue
            if data:
                self._handle(framer, data, down)

    def _serve_tcp(self, listener: socket.socket, down: threading.Event) -> None:
        framer = self.personality.request_framer()
        client: socket.socket | None = None
        try:
            while not down.is_set():
                if client is None:
                    ready, _, _ = select.select([listener], [], [], _POLL_S)
                    if not ready:
                        continue
                    try:
                        client, _ = listener.accept()
                    except OSError:
                        continue
                    client.settimeout(1.0)
                    framer.reset()
                    self.personality.reset()  # a new connection: no half-said dialogue
                    with self._io_lock:
                        self._client = client
                    continue
                ready, _, _ = select.select([client], [], [], _POLL_S)
                if not ready:
                    continue
                try:
                    data = client.recv(1024)
                except OSError:
                    data = b""
                if not data:  # the client went away: serve the next one
                    with self._io_lock:
                        self._client = None
                    client.close()
                    client = None
                    continue
                self._handle(framer, data, down)
        finally:
            with self._io_lock:
                self._client = None
                if client is not None:
                    client.close()
                listener.close()

    # ------------------------------------------------------------------ plug / unplug

    @property
    def url(self) -> str:
        """What to give pyserial: the link or pty path, or ``socket://host:port``."""
        if self._kind == "tcp":
            return f"socket://{self._host}:{self._port}"
        if self._link is not None:
            return str(self._link)
        if self._device is None:
            raise RuntimeError("simulator not started")
        return self._device

    @property
    def device(self) -> str | None:
        """The current pty slave path (changes on each replug), or None."""
        return self._device

    @property
    def plugged(self) -> bool:
        return not self._down.is_set()

    def start_pty(self, link: str | Path | None = None) -> str:
        """Open a pty and serve it. Returns the slave path, or ``link`` (a symlink to it)."""
        with self._plug_lock:
            self._check_fresh()
            self._kind = "pty"
            self._link = Path(link) if link is not None else None
            self._plug_pty()
            self._start_streaming()
            return self.url

    def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on ``host:port`` (0: any free port), one client at a time; the bound address."""
        with self._plug_lock:
            self._check_fresh()
            self._kind = "tcp"
            self._host = host
            self._port = port
            self._plug_tcp()
            self._start_streaming()
            return self._host, self._port

    def _check_fresh(self) -> None:
        if self._stop.is_set():
            raise RuntimeError("simulator stopped")
        if self._kind is not None:
            raise RuntimeError("simulator already started")

    def _plug_pty(self) -> None:
        master, slave = os.openpty()
        try:
            tty.setraw(slave)  # no echo, no CR/LF translation: bytes pass as on a wire
            os.set_blocking(master, False)
            device = os.ttyname(slave)
            if self._link is not None:
                tmp = self._link.with_name(f".{self._link.name}.{os.getpid()}.tmp")
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                os.symlink(device, tmp)
                os.replace(tmp, self._link)  # atomic, like udev replacing a SYMLINK+=
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        self._device = device
        down = threading.Event()
        with self._io_lock:
            self._master, self._slave = master, slave
        self._down = down
        self._serve_thread = threading.Thread(
            target=self._serve_pty, args=(master, down), name="scale-sim-pty", daemon=True
        )
        self._serve_thread.start()

    def _plug_tcp(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self._host, self._port))
            listener.listen(1)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        self._host, self._port = listener.getsockname()[:2]
        down = threading.Event()
        self._down = down
        self._serve_thread = threading.Thread(
            target=self._serve_tcp, args=(listener, down), name="scale-sim-tcp", daemon=True
        )
        self._serve_thread.start()

    def _start_streaming(self) -> None:
        if self.personality.streaming and self._stream_thread is None:
            self._stream_thread = threading.Thread(
                target=self._stream, name="scale-sim-stream", daemon=True
            )
            self._stream_thread.start()

    def _unplug_locked(self) -> None:
        if self._down.is_set():
            return
        if self._link is not None and self._device is not None:
            with contextlib.suppress(OSError):
                if os.readlink(self._link) == self._device:  # never remove someone else's link
                    self._link.unlink()
        self._down.set()
        thread, self._serve_thread = self._serve_thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_S)
            if thread.is_alive():
                log.warning("scale simulator: %s did not stop in %.0f s", thread.name, _JOIN_S)
        with self._io_lock:
            for fd in (self._master, self._slave):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._master = self._slave = None
        self._device = None

    def unplug(self) -> None:
        """Pull the cable: the pty (and its link) or the TCP port disappears; readers get errors."""
        with self._plug_lock:
            self._unplug_locked()

    def replug(self) -> str:
        """Plug back: a new pty at the same link, or the same TCP port. Returns :attr:`url`."""
        with self._plug_lock:
            if self._stop.is_set() or self._kind is None:
                raise RuntimeError("simulator not running")
            self._unplug_locked()
            self.personality.reset()
            if self._kind == "pty":
                self._plug_pty()
            else:
                self._plug_tcp()
            return self.url

    def stop(self) -> None:
        """Close everything, remove the link, join the threads (bounded). Idempotent."""
        self._stop.set()
        self._cancel_script()
        with self._plug_lock:
            self._unplug_locked()
            thread, self._stream_thread = self._stream_thread, None
        if thread is not None:
            thread.join(_JOIN_S)

    def __enter__(self) -> ScaleSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _round_half_even(num: int, den: int) -> int:
    """round(num / den) in integers, halves to even (as Python's round)."""
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and q % 2):
        q += 1
    return q
