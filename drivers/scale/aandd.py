"""A&D standard format codec (FX-i, FZ-i, EK-i, GX, GF, GC, FG…): ``ST,+00012.34  g`` lines.

Sources (reference §4): data format and headers, EK-L and EK-120i manuals [V]; commands, FZ-i
manual p. 61 [V]; acknowledge and error codes, FX-i manual §15-2
(auto.manualsonline.com/manuals/mfg/ad/fx120ifx200ifx300ifx1200ifx2000ifx3000i.html?p=54) [V]:
with ``erCd 1`` a control command is answered AK (0x06), and ``CAL``, ``ON``, ``P`` and ``R``
answer AK twice, on receipt and when done; a failure is ``EC,Exx``. ``CAL`` is the balance's
own calibration (the CAL key): the station drives it as the span adjustment, and the balance's
display leads the technician (empty pan, then the calibration weight it shows); ``EC,E20`` /
``EC,E21`` say the weight was too heavy / too light [P]. The standard format carries no
gross/net marker, so readings say neither. Replies to ``?SN``/``?ID``/``?TN`` (``SN,…``) are
[P]: seen in the A&D command lists, their exact padding not shown.
"""

from __future__ import annotations

import re

from ..base import MG_PER_UNIT, FrameError, Reading, ScaleError, ScaleRefused, parse_mass
from ..serialio import LineFramer, LinkSettings
from .protocol import Ack, Command, Reply, ScaleProtocol

__all__ = ["PROTOCOL", "AandDRefused", "answers", "decode", "encode"]

NAME = "a-and-d"
AK = "\x06"

_SEVEN_BITS = bytes(range(128)) * 2  # translate table that drops bit 7 (a parity bit)
_REQUESTS: dict[Command, bytes] = {
    Command.READ: b"Q\r\n",
    Command.READ_STABLE: b"S\r\n",
    Command.ZERO: b"Z\r\n",
    Command.TARE: b"T\r\n",
    Command.IDENTIFY: b"?SN\r\n",
    # the CAL key: the balance runs its own calibration; AK on receipt and when done [V: FX-i
    # manual §15-2, see the module docstring]
    Command.ADJUST_EXTERNAL: b"CAL\r\n",
}

# EC,Exx error codes [V: FX-i, GC, FG pages; E03, E17, E20, E21 [P]]
_ERROR_CODES = {
    "E00": "communication error (check baud rate, parity and terminator)",
    "E01": "undefined command",
    "E02": "not ready (not weighing, or re-zero in progress)",
    "E03": "timeout between the characters of a command",
    "E04": "too many characters",
    "E05": "ID not found",
    "E06": "format error in command data",
    "E07": "setting value out of range",
    "E11": "unstable: zero or tare not possible",
    "E17": "out of range",
    "E20": "calibration weight error (too heavy)",
    "E21": "calibration weight error (too light)",
}

# header, optional GC comparator, 9-character data, 3-character unit [V: EK-L, EK-120i, GC]
_DATA = re.compile(
    r"(?P<head>ST|US|QT|OL),(?:(?P<cmp>LO|OK|HI|--),)?"
    r"(?P<data>[ +\-0-9.,]{9})(?P<unit>[ A-Za-z%]{3})"
)
_ERROR = re.compile(r"EC,(E\d\d)")
_INFO = re.compile(r"(SN|ID|TN),([ -~]{1,32})")  # replies to ?SN, ?ID, ?TN [P]
_COUNT = re.compile(r"[+-]?\d{1,8}")
_NINES = re.compile(r"[+-]?[9 .,]*9[9 .,]*")


class AandDRefused(ScaleRefused):
    """An ``EC,Exx`` reply. ``code`` is ``"E11"`` etc."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


def encode(command: Command) -> bytes:
    """``Q`` (now), ``S`` (when stable), ``Z``, ``T``, ``?SN``; each with CR LF."""
    try:
        return _REQUESTS[command]
    except KeyError:
        raise ScaleError(f"{command.value} is not supported by this protocol ({NAME})") from None


def decode(frame: bytes) -> Reply:
    """Decode one line (CR LF stripped or not).

    ``ST``/``QT`` stable, ``US`` unstable; ``PC`` data are pieces (a :class:`Reading` without
    mass); ``OL`` is out of range: ``+`` overload, ``-`` underload. The standard format says
    nothing of gross or net. ``\\x06`` (AK) is ``Ack("AK", "A")``; ``EC,Exx`` raises
    :class:`AandDRefused`.
    """
    # Bit 7 may be a parity bit (7E1 read as 8N1): then CR arrives as 0x8D, which a CR LF line
    # framer does not see as a terminator, so it is still at the end of the line.
    line = frame.translate(_SEVEN_BITS).rstrip(b"\r\n")
    if line == b"\x06":
        return Ack("AK", "A", raw=frame)
    if not line or any(b < 0x20 or b > 0x7E for b in line):
        raise FrameError(f"not a printable ASCII line: {frame!r}")
    text = line.decode("ascii")
    error = _ERROR.fullmatch(text)
    if error is not None:
        code = error.group(1)
        reason = _ERROR_CODES.get(code, "error")
        raise AandDRefused(f"EC,{code}: {reason}", code=code)
    info = _INFO.fullmatch(text)
    if info is not None:
        return Ack(info.group(1), "A", (info.group(2).strip(),), raw=frame)
    match = _DATA.fullmatch(text)
    if match is None:
        raise FrameError(f"not an A&D data line: {frame!r}")
    head, data, unit = match.group("head"), match.group("data").strip(), match.group("unit")
    unit = unit.strip()
    if " " in unit:
        raise FrameError(f"bad unit field {match.group('unit')!r}: {frame!r}")
    stable = head != "US"
    if head == "OL":
        if not _NINES.fullmatch(data):
            raise FrameError(f"out-of-range data is all 9s: {frame!r}")
        under = data.startswith("-")
        return Reading(None, unit, False, overload=not under, underload=under, raw=frame)
    if unit.upper() == "PC":
        if not _COUNT.fullmatch(data):
            raise FrameError(f"not a piece count: {frame!r}")
        return Reading(None, unit, stable, pieces=int(data), raw=frame)
    if head == "QT":
        raise FrameError(f"QT carries counting data (PC): {frame!r}")
    if unit.lower() not in MG_PER_UNIT:
        raise FrameError(f"not a mass unit: {unit!r}")
    return Reading(parse_mass(data, unit), unit, stable, raw=frame)


def answers(command: Command, reply: Reply) -> bool:
    """Weights answer Q/S; AK answers Z/T (a GC sends a second AK when done: it is skipped as
    a stray by the next exchange); ``SN,…`` answers ``?SN``."""
    if command in (Command.READ, Command.READ_STABLE):
        return isinstance(reply, Reading)
    if command in (Command.ZERO, Command.TARE, Command.ADJUST_EXTERNAL):
        return isinstance(reply, Ack) and reply.command == "AK"
    if command is Command.IDENTIFY:
        return isinstance(reply, Ack) and reply.command == "SN"
    return False


PROTOCOL = ScaleProtocol(
    name=NAME,
    description=(
        "A&D standard format (FX-i, FZ-i, EK-i, GX, GF, GC, FG): Q -> ST/US/QT/OL,data unit "
        "CR LF; zero/tare acknowledged by AK (erCd 1); set in the 5if menu, default here 2400 7E1"
    ),
    link=LinkSettings(2400, 7, "E", 1),
    streaming=False,
    make_framer=lambda: LineFramer(b"\r\n"),
    decode=decode,
    encode=encode,
    answers=answers,
)
