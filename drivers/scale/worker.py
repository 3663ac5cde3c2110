"""The scale's reader thread: owns the port, polls or listens, runs commands, reports back."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from common.service import ServiceThread

from ..base import PortError, Reading, ScaleError, ScaleRefused, ScaleTimeout
from ..serialio import LinkSettings, run_with_reconnect
from .link import ScaleLink
from .protocol import Command, Reply, ScaleProtocol

__all__ = ["ScaleWorker"]

log = logging.getLogger(__name__)

ReadingCallback = Callable[[Reading, float], None]
StateCallback = Callable[[bool, str], None]
ReplyCallback = Callable[[object, "Reply | ScaleError"], None]


@dataclass(frozen=True, slots=True)
class _Job:
    command: Command
    token: object
    queued: float


class ScaleWorker:
    """Reads one scale in its own thread and reports through callbacks that must return at once.

    - ``on_reading(reading, t)``: every decoded weight; ``t`` is the ``time.monotonic()`` at which
      the request was sent (polled protocols) or the frame arrived (streaming ones), so a caller
      can ignore weights that predate an event;
    - ``on_state(ok, detail)``: the port opened / went away / the scale stopped answering;
    - ``on_reply(token, reply_or_error)``: the outcome of a :meth:`submit`-ted command.

    Polled protocols are asked every ``poll_interval`` seconds, or back to back after
    :meth:`poll_now` until its deadline (the counter is waiting for a stable weight).

    ``settled_hold`` (s, 0: off): once an idle poll finds a new load settled (stable, in range,
    above zero, not the weight seen before), idle polling pauses for that long, or until
    :meth:`poll_now`, :meth:`relax` or a command. The next thing staff do is most likely the
    press, and a press that lands while an idle exchange is on the wire waits for that exchange
    to end before its own (a weight asked before the press never counts): up to one more
    exchange, 20 ms at 9600 Bd. A load changed during the pause is seen at the press, which
    always asks afresh, or when polling resumes.
    """

    def __init__(
        self,
        url: str,
        protocol: ScaleProtocol,
        *,
        on_reading: ReadingCallback,
        on_state: StateCallback,
        on_reply: ReplyCallback | None = None,
        settings: LinkSettings | None = None,
        poll_interval: float = 0.25,
        reply_timeout: float = 1.0,
        silent_after: int = 3,
        settled_hold: float = 0.0,
    ) -> None:
        self.protocol = protocol
        self.link = ScaleLink(url, protocol, settings, reply_timeout=reply_timeout)
        self.poll_interval = poll_interval
        self.reply_timeout = reply_timeout
        self.silent_after = silent_after
        self.settled_hold = settled_hold
        self._on_reading = on_reading
        self._on_state = on_state
        self._on_reply = on_reply
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._service = ServiceThread("scale", self._run, wake=self._wake.set)
        self._stop = self._service.stopping
        self._fast_until = 0.0
        self._quiet_until = 0.0  # no idle poll before this (a settled load, see settled_hold)
        self._last_weight: tuple[object, ...] | None = None
        self._misses = 0
        self._answering = True
        self.heartbeat = time.monotonic()  # last loop turn, for the daemon's watchdog

    # -- control (any thread) ------------------------------------------------------------------
    def start(self) -> None:
        self._service.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._service.stop(timeout)

    @property
    def garbage_frames(self) -> int:
        """Frames the codec could not decode (the status file's rejected frames)."""
        return self.link.garbage_frames

    @property
    def alive(self) -> bool:
        return self._service.running

    def poll_now(self, until: float) -> None:
        """Ask for weights back to back until ``until`` (monotonic), starting now."""
        self._fast_until = max(self._fast_until, until)
        self._quiet_until = 0.0
        self._wake.set()

    def relax(self) -> None:
        """Back to idle polling (the weight the counter waited for has come)."""
        self._fast_until = 0.0
        self._quiet_until = 0.0

    def submit(self, command: Command, token: object = None) -> None:
        """Run ``command`` on the scale; the outcome goes to ``on_reply(token, …)``."""
        self._jobs.put(_Job(command, token, time.monotonic()))
        self._wake.set()

    # -- reader thread ---------------------------------------------------------------------------
    def _run(self, stop: threading.Event) -> None:
        self._stop = stop  # the turns and the waits below watch the same event
        while not self._stop.is_set():
            try:
                run_with_reconnect(self.link.transport, self._turn, self._stop, self._state)
            except Exception:  # a bug here must not leave the counter without a scale
                log.exception("scale reader failed; restarting it")
                self.link.close()
                self._state(False, "reader restarted")
                self._stop.wait(1.0)

    def _state(self, ok: bool, detail: str) -> None:
        self.link.restart()  # a stream just (re)opened starts mid-frame
        self._last_weight = None
        self._quiet_until = 0.0
        self._misses = 0
        self._answering = ok
        self._on_state(ok, detail)

    def _turn(self) -> None:
        self.heartbeat = time.monotonic()
        self._run_jobs()
        if self.protocol.streaming:
            self._listen()
            return
        now = time.monotonic()
        if now >= self._fast_until:
            quiet = self._quiet_until - now
            # a held settled load: wait in slices of at most 1 s (the heartbeat stays fresh)
            self._wake.wait(min(quiet, 1.0) if quiet > 0 else self.poll_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            self._run_jobs()
            now = time.monotonic()
            if now < self._quiet_until and now >= self._fast_until:
                return  # still held: no idle exchange that a press would have to wait for
        self._poll()

    def _run_jobs(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            outcome: Reply | ScaleError
            if time.monotonic() - job.queued > 2 * self.reply_timeout:
                # queued while the scale was away: a tare run minutes late would be wrong
                if self._on_reply is not None:
                    self._on_reply(job.token, ScaleTimeout(f"{job.command.value}: scale not ready"))
                continue
            try:
                outcome = self._exchange(job.command)
            except ScaleError as exc:
                outcome = exc
            except PortError as exc:
                if self._on_reply is not None:
                    self._on_reply(job.token, ScaleError(f"scale unplugged: {exc}"))
                raise
            self._quiet_until = 0.0  # a tare or zero changes what the pan reads
            if self._on_reply is not None:
                self._on_reply(job.token, outcome)

    def _poll(self) -> None:
        sent = time.monotonic()
        idle = sent >= self._fast_until
        try:
            reply = self._exchange(Command.READ, patient=idle)
        except ScaleTimeout:
            self._missed("no reply")
            return
        except ScaleRefused as exc:
            # busy / not stable in time: the scale is alive, there is just no weight now
            self._heard()
            log.debug("scale refused a read: %s", exc)
            return
        except ScaleError as exc:
            self._missed(str(exc))
            return
        self._heard()
        if isinstance(reply, Reading):
            # a fast poll answered after relax() (the press is over) is as good as an idle one:
            # the load it finds may be the next item, already put down
            self._hold_if_settled(reply, idle or time.monotonic() >= self._fast_until)
            self._on_reading(reply, sent)

    def _hold_if_settled(self, reading: Reading, idle: bool) -> None:
        """Pause idle polling when an idle poll finds a new load settled (see settled_hold)."""
        weight = (
            reading.stable,
            reading.net_mg,
            reading.gross_mg,
            reading.tare_mg,
            reading.unit,
            reading.pieces,
        )
        changed, self._last_weight = weight != self._last_weight, weight
        loaded = reading.in_range and (reading.net_mg or 0) > 0  # something a press would weigh
        if idle and changed and reading.stable and loaded and self.settled_hold > 0:
            self._quiet_until = time.monotonic() + self.settled_hold

    def _listen(self) -> None:
        try:
            reading = self.link.listen(self.reply_timeout * 2, interrupt=self._interrupted)
        except ScaleTimeout:
            self._missed("no frame")
            return
        if reading is not None:
            self._heard()
            self._on_reading(reading, time.monotonic())

    def _interrupted(self) -> bool:
        return self._stop.is_set() or not self._jobs.empty()

    def _exchange(self, command: Command, patient: bool = False) -> Reply:
        """Send ``command`` and return its reply; stray or garbled frames are skipped.

        ``patient`` (idle polling, nobody waiting): once the reply starts, let it arrive whole
        before reading on, instead of waking up for every byte of a slow line."""
        # ~25 characters of wire time; a press (poll_now) cuts the wait short
        settle = min(0.05, 25 * 10 / self.link.settings.baudrate) if patient else 0.0
        return self.link.exchange(command, settle=settle, pause=self._wake.wait)

    def _heard(self) -> None:
        self._misses = 0
        if not self._answering:
            self._answering = True
            self._on_state(True, "answering")

    def _missed(self, detail: str) -> None:
        self._misses += 1
        if self._answering and self._misses >= self.silent_after:
            self._answering = False
            self._on_state(False, detail)
