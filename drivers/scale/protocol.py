"""The interface every scale wire protocol implements: pure codecs described by a ScaleProtocol."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from ..base import Reading, ScaleError
from ..serialio import Framer, LinkSettings

__all__ = ["Ack", "Command", "Reply", "ScaleProtocol"]


class Command(enum.Enum):
    """What the station may ask of a scale. A protocol may not support every command."""

    READ = "read"  # the current weight now, stable or not (MT-SICS SI)
    READ_STABLE = "read_stable"  # the next stable weight (MT-SICS S; may block on the scale)
    ZERO = "zero"
    TARE = "tare"
    CLEAR_TARE = "clear_tare"
    RESET = "reset"
    IDENTIFY = "identify"  # serial number / model, for the record's scale identity
    DESCRIBE = "describe"  # model and capacity (MT-SICS I2), for calibration records
    # span adjustment with an external reference mass, run by the scale itself (MT-SICS C2):
    # the reply ``C2 B "<mass>"`` asks for a load, further ``C2 B`` lines follow, then ``C2 A``;
    # A&D ``CAL``: acknowledged when received and again when the balance has done it
    ADJUST_EXTERNAL = "adjust_external"
    # an adjustment the station drives step by step (Kern KCP JZ, JG, JS): the empty pan is the
    # zero, the load on the pan is the adjustment weight, then the scale keeps the adjustment
    ADJUST_ZERO = "adjust_zero"
    ADJUST_SPAN = "adjust_span"
    ADJUST_SAVE = "adjust_save"


@dataclass(frozen=True, slots=True)
class Ack:
    """A reply that is not a weight: ``Z A``, ``TAC A``, ``I4 A "1126493049"``, ``T S 12.50 g``.

    ``command`` is the reply's ID token, ``status`` its status token, ``params`` the rest
    (quotes removed). ``mass_mg`` is set when the reply carries a mass (the tare taken by ``T``).
    """

    command: str
    status: str
    params: tuple[str, ...] = ()
    mass_mg: int | None = None
    raw: bytes = b""


Reply = Reading | Ack


@dataclass(frozen=True, slots=True)
class ScaleProtocol:
    """One wire protocol. Everything here is pure: bytes in, objects out, no I/O.

    - ``make_framer()`` returns a fresh framer that splits the byte stream into frames;
    - ``decode(frame)`` returns a :class:`Reading` or an :class:`Ack`, or raises
      :class:`~drivers.base.FrameError` (garbled) / :class:`~drivers.base.ScaleRefused`
      (the scale said it cannot: ``ES``, ``EL``, ``Z I``…);
    - ``encode(command)`` returns the request bytes, or raises
      :class:`~drivers.base.ScaleError` when the protocol has no such command;
    - ``streaming`` protocols send frames by themselves; the others are polled with
      ``encode(Command.READ)``;
    - ``answers(command, reply)`` says whether ``reply`` is the answer to ``command`` (so stray
      streamed weights interleaved with a command's reply are not mistaken for it);
    - ``port_url(url)`` is the pyserial URL to open for the configured port: the url itself,
      but for a device no serial driver opens (``hid-pos`` reads ``/dev/hidraw…`` as
      ``hidraw://``).
    """

    name: str
    description: str
    link: LinkSettings
    streaming: bool
    make_framer: Callable[[], Framer]
    decode: Callable[[bytes], Reply]
    encode: Callable[[Command], bytes]
    answers: Callable[[Command, Reply], bool]
    port_url: Callable[[str], str] = str

    def request(self, command: Command) -> bytes | None:
        """The request bytes for ``command``, or None when the protocol has no such command."""
        try:
            return self.encode(command)
        except ScaleError:
            return None
