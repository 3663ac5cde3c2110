"""Simulated scale personalities: what each wire protocol says, given the simulated scale's state.

The :class:`~drivers.sim.scale.ScaleSimulator` owns the weight model and the line (pty or TCP,
unplug/replug, pacing). A *personality* owns the bytes: one small module per protocol, named in
:data:`PERSONALITIES`, each defining ``PERSONALITY`` (a :class:`Personality` subclass). Adding a
simulated protocol is one module plus one line in :data:`PERSONALITIES`.

The interface covers the three shapes of scale output:

- **request/response** (MT-SICS, SMA, NCI, A&D, Toledo 8217, Ohaus, Adam, Dini Argeo, Kern):
  :meth:`Personality.request_framer` says how requests are delimited (CR LF lines, CR, LF, or
  single bytes like Toledo 8217's ``W`` and Kern's ``w``); :meth:`Personality.respond` returns
  the reply bytes for one request, using the scale's zero and tare controls (:class:`SimScale`);
- **streaming** (Toledo continuous, the default configurable ASCII protocol): ``streaming =
  True`` and :meth:`Personality.frame` returns the next frame for the current state; the
  simulator sends one every ``1 / rate_hz`` seconds;
- **print blocks** (Adam, and any scale's PRINT key): a reply or a frame may be several lines, and
  :meth:`Personality.print_block` is what the PRINT key sends
  (:meth:`~drivers.sim.scale.ScaleSimulator.press_print`).

Personalities are pure with respect to the line: they never write, they return bytes. They may
keep per-connection state (a latched error, an echo mode), since each simulator has its own
instance; :meth:`Personality.reset` is called when the cable is plugged back.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Protocol

from ...base import MG_PER_UNIT
from ...serialio import Framer, LineFramer

__all__ = [
    "PERSONALITIES",
    "ByteFramer",
    "Personality",
    "SimScale",
    "SimState",
    "decimal_text",
    "get_personality",
    "places_in",
]


@dataclass(frozen=True, slots=True)
class SimState:
    """What the simulated scale shows now. Masses in mg; ``net_mg`` is rounded to the display.

    ``center_zero`` is true when the gross (from the last zero) rounds to 0 on the display.
    ``pieces``/``unit_weight_mg`` are set when a piece weight is stored
    (:meth:`~drivers.sim.scale.ScaleSimulator.set_piece_weight`): pieces = round(net / unit).
    """

    net_mg: int
    gross_mg: int
    tare_mg: int
    zero_mg: int
    motion: bool
    overload: bool
    underload: bool
    center_zero: bool = False
    pieces: int | None = None
    unit_weight_mg: int | None = None


class SimScale(Protocol):
    """What a personality may use of the simulator (:class:`~drivers.sim.scale.ScaleSimulator`).

    Zero and tare statuses are ``"A"`` done, ``"I"`` not now (in motion), ``"+"``/``"-"`` above
    or below the zero/tare range; each personality turns them into its protocol's words.
    """

    unit: str  # the display unit, "kg" or "g"
    decimals: int  # decimals shown in ``unit``
    division_mg: int  # the display step, in mg
    capacity_mg: int
    serial_number: str
    model: str
    checksum: bool  # continuous output: send the checksum byte
    stable_timeout_s: float  # how long a "send stable weight" request waits

    def snapshot(self) -> SimState: ...

    def wait_stable(self, down: threading.Event) -> SimState:
        """The state once stable, out of range, or after ``stable_timeout_s`` / unplug (then
        still in motion)."""
        ...

    def zero_detail(self, *, immediate: bool = False) -> tuple[str, SimState]:
        """Zero (``immediate``: even in motion); the status and the state it was judged on."""
        ...

    def tare(self) -> tuple[str, int]: ...

    def clear_tare(self) -> None: ...

    def preset_tare(self, mg: int) -> int:
        """Store a tare of ``mg`` (rounded to the display); ``ValueError`` when negative."""
        ...

    adjust_weight_mg: int  # the external weight a span adjustment asks for (MT-SICS C2)

    def adjust(self, reference_mg: int) -> None:
        """Span adjustment: from now on, the load on the pan reads ``reference_mg``."""
        ...


class Personality:
    """One protocol's behaviour. Subclasses override what their protocol has.

    Class attributes describe what the protocol can carry, so a contract test knows what to
    expect of it without a table of its own:

    - ``read_request``: the bytes a host sends to read the weight (empty when streaming);
    - ``counts``: reports pieces when the scale has a stored piece weight;
    - ``tells_underload``: underload is reported apart from overload;
    - ``shows_negative``: a negative weight is sent as a value (not only as "under zero").
    """

    name: ClassVar[str] = ""
    streaming: ClassVar[bool] = False
    read_request: ClassVar[bytes] = b""
    counts: ClassVar[bool] = False
    tells_underload: ClassVar[bool] = True
    shows_negative: ClassVar[bool] = True

    def check(self, scale: SimScale) -> None:
        """Raise ``ValueError`` when the simulator's settings cannot be said in this protocol."""

    def request_framer(self) -> Framer:
        """A fresh framer that splits what the host sends into requests (default: CR/LF lines)."""
        return LineFramer(b"\r\n")

    def respond(self, request: bytes, scale: SimScale, down: threading.Event) -> bytes | None:
        """The reply to one request (None: say nothing). May block (a "stable weight" request
        waits for stability) but must return when ``down`` is set (the cable was pulled)."""
        return None

    def dialogue(
        self, request: bytes, scale: SimScale, down: threading.Event
    ) -> Iterator[bytes] | None:
        """For a request answered by several lines as things happen on the pan (MT-SICS
        ``C2``: "load the weight", "unload", "done"): the lines, each sent when yielded; None
        for the usual single reply from :meth:`respond`. Must end when ``down`` is set."""
        return None

    def frame(self, scale: SimScale) -> bytes:
        """Streaming protocols: the next frame for the current state."""
        raise TypeError(f"{self.name} does not stream")

    def print_block(self, scale: SimScale) -> bytes | None:
        """What the PRINT key sends (None: this protocol's scale has no print output)."""
        return None

    def reset(self) -> None:
        """Forget per-connection state (the cable was plugged back)."""

    def sample(self, scale: SimScale) -> bytes:
        """What the scale sends for one weight read: a frame, or the reply to ``read_request``
        (for benchmarks and captures)."""
        if self.streaming:
            return self.frame(scale)
        reply = b""
        for request in self.request_framer().feed(self.read_request):
            reply += self.respond(request, scale, threading.Event()) or b""
        return reply


class ByteFramer:
    """Requests of one byte each (Toledo 8217 ``W``, ``Z``, ``T``, ``C``); CR and LF between
    them are ignored, as terminators a host may add."""

    def feed(self, data: bytes) -> list[bytes]:
        return [bytes([b]) for b in data if b not in (0x0A, 0x0D)]

    def reset(self) -> None:
        pass


def decimal_text(mg: int, unit: str, places: int) -> str:
    """Exact text of ``mg`` in ``unit`` with ``places`` decimals (half-even), sign only if < 0."""
    value = Decimal(mg) / MG_PER_UNIT[unit]
    return f"{value:.{places}f}"


def places_in(unit: str, division_mg: int) -> int:
    """Decimals needed in ``unit`` to show a display step of ``division_mg`` exactly."""
    step = Decimal(division_mg) / MG_PER_UNIT[unit]
    for places in range(10):
        if step.scaleb(places) == step.scaleb(places).to_integral_value():
            return places
    raise ValueError(f"a step of {division_mg} mg has no short decimal form in {unit}")


# Protocol name -> module in this package. The module defines ``PERSONALITY``.
PERSONALITIES: dict[str, str] = {
    "mt-sics": "mtsics",
    "toledo-continuous": "toledo_continuous",
    "toledo-8217": "toledo8217",
    "sma": "sma",
    "nci": "nci",
    "a-and-d": "aandd",
    "ohaus": "ohaus",
    "adam": "adam",
    "dini-argeo": "dini",
    "dini-argeo-ext": "dini_ext",
    "kern": "kern",
    "kern-tm": "kern_tm",
    "kern-kcp": "kern_kcp",
    "ascii": "ascii",
    "hid-pos": "hidpos",
}


def get_personality(name: str) -> Personality:
    """A new personality for protocol ``name``; ``ValueError`` lists the known names."""
    module_name = PERSONALITIES.get(name)
    if module_name is None:
        raise ValueError(f"unknown protocol {name!r}; known: {', '.join(PERSONALITIES)}")
    module = importlib.import_module(f"{__name__}.{module_name}")
    cls: type[Personality] = module.PERSONALITY
    return cls()
