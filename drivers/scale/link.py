"""The one way to talk to a scale: a port opened by pyserial URL, requests and streamed frames.

The daemon's reader thread (:class:`~drivers.scale.worker.ScaleWorker`), the technician's
``station scale`` commands, calibration and ``station doctor`` all use :class:`ScaleLink`, as
Klipper's daemon and console share ``serialhdl``. One error contract for every caller:

- :class:`~drivers.base.ScaleTimeout`: no answer (no weight) in time;
- :class:`~drivers.base.ScaleRefused`: the scale answered with an error reply (``ES``, ``Z I``…);
- :class:`~drivers.base.PortError`: the port could not be opened, or went away;
- :class:`~drivers.base.ScaleError`: the protocol has no such command, or a reply without a weight
  where a weight was asked for.

A frame the codec cannot decode is never an error of the exchange: whatever the codec raises
(a :class:`~drivers.base.FrameError`, or any other exception from a codec bug), the frame is
counted in :attr:`ScaleLink.garbage_frames` and skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from common.i18n import _

from ..base import FrameError, PortError, Reading, ScaleError, ScaleRefused, ScaleTimeout
from ..serialio import Backoff, LinkSettings, SerialTransport, TermiosError, escape_frame
from .protocol import Command, Reply, ScaleProtocol

__all__ = ["ScaleLink", "as_reading", "decode_frame", "supports"]

log = logging.getLogger(__name__)

# read() returns at most this many bytes; a shorter chunk means the input was drained
_CHUNK = 256


def supports(protocol: ScaleProtocol, command: Command) -> bool:
    """Whether ``protocol`` has a request for ``command``."""
    return protocol.request(command) is not None


def decode_frame(protocol: ScaleProtocol, frame: bytes) -> Reply:
    """``protocol.decode``, with any codec exception but a refusal turned into a FrameError.

    A codec is pure and should only raise FrameError or ScaleRefused; a bug that lets a
    ValueError or an IndexError escape must cost one frame, never the reader."""
    try:
        return protocol.decode(frame)
    except (FrameError, ScaleRefused):
        raise
    except Exception as exc:
        raise FrameError(f"decoder failed: {type(exc).__name__}: {exc}") from exc


def as_reading(reply: Reply) -> Reading:
    """The reply as a weight; ScaleError when the scale answered without one."""
    if isinstance(reply, Reading):
        return reply
    raise ScaleError(
        _("the scale answered without a weight: {raw}").format(raw=escape_frame(reply.raw))
    )


class ScaleLink:
    """One scale port: send a command and get its answer, or listen to a streaming scale.

    Not thread-safe: one owner thread uses it. A stream just opened (or reopened) usually
    starts mid-frame, so its first frame is dropped: a fragment such as ``"  3.2 kg"`` cut from
    ``"-  3.2 kg"`` would decode, with the wrong sign.
    """

    def __init__(
        self,
        url: str,
        protocol: ScaleProtocol,
        settings: LinkSettings | None = None,
        *,
        reply_timeout: float = 1.0,
        read_timeout: float = 0.05,
        backoff: Backoff | None = None,
    ) -> None:
        self.protocol = protocol
        self.reply_timeout = reply_timeout
        self.transport = SerialTransport(
            protocol.port_url(url), settings or protocol.link, timeout=read_timeout, backoff=backoff
        )
        self.garbage_frames = 0  # frames the codec could not decode, since this link was made
        self._framer = protocol.make_framer()
        self._frames: deque[bytes] = deque()  # framed, not yet decoded
        self._skip_first = False

    # -- the port ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.transport.url

    @property
    def settings(self) -> LinkSettings:
        return self.transport.settings

    @property
    def is_open(self) -> bool:
        return self.transport.is_open

    def open(self) -> None:
        """Open the port; :class:`PortError` when it cannot be."""
        try:
            self.transport.open()
        except TermiosError as exc:  # pyserial lets it escape when a setting is refused
            raise PortError(f"{self.url}: {exc}") from exc
        self.restart()

    def close(self) -> None:
        self.transport.close()

    def reconnect(self, stop: threading.Event | None = None) -> bool:
        """Close, wait the next back-off delay (``stop``: an Event that cuts it short), try to
        open once. True when open again."""
        try:
            reopened = self.transport.reconnect(stop)
        except TermiosError:  # the new device refuses a setting
            self.transport.close()
            return False
        if reopened:
            self.restart()
        return reopened

    def restart(self) -> None:
        """Forget partial frames: the port was just (re)opened, or came back after a silence."""
        self._framer.reset()
        self._frames.clear()
        self._skip_first = self.protocol.streaming

    def supports(self, command: Command) -> bool:
        return supports(self.protocol, command)

    # -- frames ------------------------------------------------------------------------------
    def _fill(self) -> int:
        """Read once (at most the transport's timeout); frame what came. The bytes read."""
        data = self.transport.read(_CHUNK)
        if data:
            try:
                self._frames.extend(self._framer.feed(data))
            except Exception as exc:  # a framer bug: lose what it held, never the reader
                self._framer.reset()
                self.garbage_frames += 1
                log.debug("framer failed on %s: %r", escape_frame(data), exc)
        return len(data)

    def _next(self) -> Reply | None:
        """Decode the next framed frame; None when it was skipped (garbage or a first fragment).
        Raises ScaleRefused for an error reply."""
        frame = self._frames.popleft()
        if self._skip_first:
            self._skip_first = False
            return None
        try:
            return decode_frame(self.protocol, frame)
        except FrameError as exc:
            self.garbage_frames += 1
            log.debug("dropped frame %s: %s", escape_frame(frame), exc)
            return None

    def _answers(self, command: Command, reply: Reply) -> bool:
        try:
            return self.protocol.answers(command, reply)
        except Exception as exc:  # a codec bug: the frame is garbage, the exchange goes on
            self.garbage_frames += 1
            log.debug("answers() failed on %s: %r", escape_frame(reply.raw), exc)
            return False

    def read_frame(self, deadline: float) -> Reply | None:
        """The next reply the scale sends by itself before ``deadline`` (``time.monotonic()``),
        garbled frames skipped; None when none came. Raises ScaleRefused for an error reply
        (e.g. the scale aborting an adjustment), PortError when the port goes away."""
        while True:
            while self._frames:
                reply = self._next()
                if reply is not None:
                    return reply
            if time.monotonic() >= deadline:
                return None
            self._fill()

    def exchange(
        self,
        command: Command,
        timeout: float | None = None,
        *,
        settle: float = 0.0,
        pause: Callable[[float], object] = time.sleep,
    ) -> Reply:
        """Send ``command`` and return its answer; stray and garbled frames are skipped.

        ``timeout`` defaults to the link's ``reply_timeout``. ``settle``: once the answer starts
        to arrive, ``pause(settle)`` before reading on, so that a slow line delivers it whole
        instead of waking up for every byte (the daemon's idle polling; its ``pause`` is an
        event wait that a press cuts short)."""
        limit = self.reply_timeout if timeout is None else timeout
        request = self.protocol.encode(command)
        self.transport.flush_input()  # a stale frame must not pass for the answer
        self._framer.reset()
        self._frames.clear()
        self._skip_first = False  # what comes now answers this request
        self.transport.write(request)
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self._fill() and settle:
                pause(settle)
                settle = 0.0
                self._fill()
            while self._frames:
                reply = self._next()
                if reply is not None and self._answers(command, reply):
                    return reply
        raise ScaleTimeout(_("no answer within {s:g} s").format(s=limit))

    def listen(
        self,
        timeout: float | None = None,
        *,
        stable: bool = False,
        interrupt: Callable[[], bool] | None = None,
    ) -> Reading | None:
        """The newest weight a streaming scale sent, once the input is drained.

        With ``stable``, only a stable weight (or an overload/underload) will do. Error replies
        and frames without a weight are skipped. Raises ScaleTimeout when none came within
        ``timeout`` (default: twice the reply timeout), with the last weight seen as
        ``args[1]``; returns None when ``interrupt()`` says to stop while the line is quiet."""
        limit = 2 * self.reply_timeout if timeout is None else timeout
        newest: Reading | None = None
        last: Reading | None = None
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            got = self._fill()
            while self._frames:
                try:
                    reply = self._next()
                except ScaleRefused:
                    continue
                if not isinstance(reply, Reading):
                    continue
                last = reply
                if not stable or reply.stable or reply.overload or reply.underload:
                    newest = reply
            if got < _CHUNK and newest is not None:
                return newest  # input drained: this is the newest frame
            if not got and interrupt is not None and interrupt():
                return None
        if newest is not None:
            return newest
        raise ScaleTimeout(_("no weight received within {s:g} s").format(s=limit), last)

    def reading(self, stable: bool = False, timeout: float | None = None) -> Reading:
        """One weight: the newest streamed one, or READ / READ_STABLE on a polled scale.

        Raises ScaleTimeout (with the last unstable weight as ``args[1]`` when ``stable``),
        ScaleRefused, ScaleError (an answer without a weight) or PortError."""
        limit = self.reply_timeout if timeout is None else timeout
        if self.protocol.streaming:
            reading = self.listen(limit, stable=stable)
            assert reading is not None  # only an interrupt returns None
            return reading
        deadline = time.monotonic() + limit
        if stable and self.supports(Command.READ_STABLE):
            return as_reading(self.exchange(Command.READ_STABLE, limit))
        last: Reading | None = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ScaleTimeout(_("no stable weight within {s:g} s").format(s=limit), last)
            reading = as_reading(self.exchange(Command.READ, left))
            if not stable or reading.stable or reading.overload or reading.underload:
                return reading
            last = reading
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    def __enter__(self) -> ScaleLink:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
