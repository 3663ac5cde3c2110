"""Mettler Toledo MT-SICS (levels 0/1) codec: pure encode/decode of CR LF terminated ASCII lines.

Sources (reference §1): the AT balance manual's MT-SICS summary (manualshelf.com/manual/
mettler-toledo/at-balances/2-operating-instructions-english/page-87.html) [V]: CR LF both ways,
``<ID> <status> <value> <unit>``, ``S``/``SI``, statuses ``S``/``D``/``I``/``+``/``-``, the
weight is the net weight (no gross/net marker: :attr:`Reading.net` stays None); the general
errors ``ES``/``ET``/``EL`` and ``A``/``L`` statuses from dotnet/iot src/devices/MettlerToledo and
InstrumentKit src/instruments/mettler_toledo/mt_sics.py [V: code read]; ``I2``/``I4`` replies
and the 9600 8N1 default from janelia-python/mettler_toledo_device_python [P]. ``C2`` (span
adjustment with an external weight) replies ``C2 B`` per step and ``C2 A`` when done [P: two
client implementations wait for ``C3 B`` then ``C3 A``; the ``C2 B "<mass>"`` wording is [U]].
"""

from __future__ import annotations

import re

from ..base import FrameError, Reading, ScaleRefused
from ..serialio import LineFramer, LinkSettings
from ._fields import mass_mg, unsupported
from .protocol import Ack, Command, Reply, ScaleProtocol

__all__ = ["PROTOCOL", "SicsRefused", "answers", "decode", "encode", "parse_weight"]


class SicsRefused(ScaleRefused):
    """An MT-SICS refusal. ``command`` is the reply's ID (``"S"``, ``"Z"``, ``"ES"``), ``status``
    its status character (``"I"`` busy / no stability in time, ``"+"``/``"-"`` out of range,
    ``"L"`` logical error), or the error token itself for ``ES``/``ET``/``EL``."""

    def __init__(self, message: str, *, command: str, status: str) -> None:
        super().__init__(message)
        self.command = command
        self.status = status


_REQUESTS: dict[Command, bytes] = {
    Command.READ: b"SI\r\n",
    Command.READ_STABLE: b"S\r\n",
    Command.ZERO: b"Z\r\n",
    Command.TARE: b"T\r\n",
    Command.CLEAR_TARE: b"TAC\r\n",
    Command.RESET: b"@\r\n",
    Command.IDENTIFY: b"I4\r\n",
    Command.DESCRIBE: b"I2\r\n",
    Command.ADJUST_EXTERNAL: b"C2\r\n",
}

# The Ack ID that answers each non-weight command (``@`` is answered by ``I4 A "<serial>"``).
_ACK_ID: dict[Command, str] = {
    Command.ZERO: "Z",
    Command.TARE: "T",
    Command.CLEAR_TARE: "TAC",
    Command.RESET: "I4",
    Command.IDENTIFY: "I4",
    Command.DESCRIBE: "I2",
    Command.ADJUST_EXTERNAL: "C2",
}

_GENERAL_ERRORS = {
    "ES": "syntax error: the scale did not recognise the command",
    "ET": "transmission error: the scale received a garbled command (check baud/parity)",
    "EL": "logical error: the scale cannot execute the command",
}

# Status characters that mean success, per reply ID. Anything else known is a refusal below.
_OK_STATUS: dict[str, frozenset[str]] = {
    "Z": frozenset("A"),
    "ZI": frozenset("SD"),
    "T": frozenset("S"),
    "TI": frozenset("SD"),
    "TA": frozenset("A"),
    "TAC": frozenset("A"),
    "D": frozenset("A"),
    "DW": frozenset("A"),
    "K": frozenset("A"),
    **{f"I{n}": frozenset("AB") for n in range(6)},
    **{f"C{n}": frozenset("AB") for n in range(4)},
}
_MASS_IDS = frozenset({"T", "TI", "TA"})  # replies that carry a tare value
_BARE_IDS = frozenset({"Z", "ZI", "TAC", "D", "DW", "K"})  # replies with no parameters
_REFUSAL_STATUS = frozenset("IL+-")

_RANGE_WORD = {"Z": "zero", "ZI": "zero", "T": "tare", "TI": "tare", "TA": "tare"}

_TOKEN = re.compile(r'"[^"]*"|[^ "]+')
# Fields separated by spaces (several when a value is right-aligned); quoted text is one field.
_LINE = re.compile(r'(?:"[^"]*"|[^ "]+)(?: +(?:"[^"]*"|[^ "]+))* *')
_MAX_VALUE_CHARS = 16  # MT-SICS pads to 10; a longer "number" is garbage, not a huge weight


def encode(command: Command) -> bytes:
    """The request bytes for ``command``; :class:`ScaleError` for the steps of other
    protocols' adjustments (MT-SICS adjusts with ``C2``)."""
    try:
        return _REQUESTS[command]
    except KeyError:
        raise unsupported(command, "mt-sics") from None


def parse_weight(value: str, unit: str) -> int:
    """Exact mg from an MT-SICS value and unit (``"100.00", "g"`` or ``"12:07.50", "lb:oz"``)."""
    if len(value) > _MAX_VALUE_CHARS:
        raise FrameError(f"value field too long: {value!r}")
    return mass_mg(value.strip(), unit)


def _refusal(ident: str, status: str) -> SicsRefused:
    if ident == "S":
        reasons = {
            "I": "scale busy or no stable weight in time",
            "L": "logical error: weight cannot be sent",
        }
        return SicsRefused(f"S {status}: {reasons[status]}", command=ident, status=status)
    word = _RANGE_WORD.get(ident)
    if status == "I":
        what = f"{word} not possible now (busy or not stable)" if word else "busy, try later"
    elif status == "L":
        what = "logical error (parameter not allowed)"
    elif status == "+":
        what = f"above {word} range" if word else "upper limit exceeded"
    else:
        what = f"below {word} range" if word else "lower limit exceeded"
    return SicsRefused(f"{ident} {status}: {what}", command=ident, status=status)


def decode(frame: bytes) -> Reply:
    """Decode one reply line (CR LF stripped or not) to a :class:`Reading` or an :class:`Ack`.

    Raises :class:`FrameError` for anything malformed and :class:`SicsRefused` (a
    :class:`ScaleRefused`) when the scale says it cannot (``S I``, ``Z I``, ``ES``…).
    """
    line = frame[:-2] if frame.endswith(b"\r\n") else frame
    if not line or any(b < 0x20 or b > 0x7E for b in line):
        # Printable ASCII only: bytes with bit 7 set usually mean a 7E1/8N1 framing mismatch.
        raise FrameError(f"not a printable ASCII line: {frame!r}")
    text = line.decode("ascii")
    if not _LINE.fullmatch(text):
        raise FrameError(f"malformed fields: {frame!r}")
    tokens: list[str] = _TOKEN.findall(text)
    ident = tokens[0]

    if ident in _GENERAL_ERRORS:
        if len(tokens) != 1:
            raise FrameError(f"unexpected fields after {ident}: {frame!r}")
        raise SicsRefused(f"{ident}: {_GENERAL_ERRORS[ident]}", command=ident, status=ident)
    if len(tokens) < 2:
        raise FrameError(f"missing status: {frame!r}")
    status = tokens[1]

    if ident == "S":
        if status in ("S", "D"):
            if len(tokens) != 4:
                raise FrameError(f"a weight reply has 4 fields: {frame!r}")
            mg = parse_weight(tokens[2], tokens[3])
            return Reading(net_mg=mg, unit=tokens[3], stable=status == "S", raw=frame)
        if len(tokens) != 2:
            raise FrameError(f"unexpected fields after status {status!r}: {frame!r}")
        if status == "+":
            return Reading(net_mg=None, unit="", stable=False, overload=True, raw=frame)
        if status == "-":
            return Reading(net_mg=None, unit="", stable=False, underload=True, raw=frame)
        if status in ("I", "L"):
            raise _refusal(ident, status)
        raise FrameError(f"unknown weight status {status!r}: {frame!r}")

    ok = _OK_STATUS.get(ident)
    if ok is None:
        raise FrameError(f"unknown reply ID {ident!r}: {frame!r}")
    if status in _REFUSAL_STATUS and status not in ok:
        if len(tokens) != 2:
            raise FrameError(f"unexpected fields after status {status!r}: {frame!r}")
        raise _refusal(ident, status)
    if status not in ok:
        raise FrameError(f"unexpected status {status!r} for {ident}: {frame!r}")

    params = tuple(t[1:-1] if t.startswith('"') else t for t in tokens[2:])
    if ident in _MASS_IDS:
        if len(params) == 2:
            mass = parse_weight(params[0], params[1])
            return Ack(ident, status, params, mass_mg=mass, raw=frame)
        if not (ident == "TA" and not params):  # bare ``TA A`` acknowledges a tare preset
            raise FrameError(f"{ident} {status} needs a value and a unit: {frame!r}")
    elif ident in _BARE_IDS and params:
        raise FrameError(f"unexpected fields after {ident} {status}: {frame!r}")
    elif ident.startswith("I") and status == "A" and not params:
        raise FrameError(f"{ident} A without data: {frame!r}")
    return Ack(ident, status, params, raw=frame)


def answers(command: Command, reply: Reply) -> bool:
    """Whether ``reply`` answers ``command`` (weights come with ID ``S``, ``@`` with ``I4``)."""
    if command in (Command.READ, Command.READ_STABLE):
        return isinstance(reply, Reading)
    return isinstance(reply, Ack) and reply.command == _ACK_ID[command]


PROTOCOL = ScaleProtocol(
    name="mt-sics",
    description=(
        "Mettler Toledo MT-SICS request/response (also Kern KCP, Ohaus after PSI): "
        "S/SI/Z/T/TAC/@/I2/I4, C2 adjustment, CR LF lines, usually 9600 8N1 (some devices 7E1)"
    ),
    link=LinkSettings(9600, 8, "N", 1),
    streaming=False,
    make_framer=lambda: LineFramer(b"\r\n"),
    decode=decode,
    encode=encode,
    answers=answers,
)
