"""Mettler Toledo 8217 (POS "weight-only") codec: single-byte requests, STX … CR replies.

Sources: the Viva/DIVA service manual's 8217 section (status bits, cited by Odoo:
manualslib.com/manual/861274/Mettler-Toledo-Viva.html?page=51; reference §2.2 [V]); Odoo's IoT
box driver odoo/odoo addons/hw_drivers/iot_handlers/drivers/SerialScaleDriver.py (9600 7E1,
``W``/``Z``/``T``/``C`` without terminator, weight regex ``STX \\s*([0-9.]+)N? CR``: the ``N``
marks a net weight; ``E``-echo presence probe) [P]; pywebdriver/pywebdriver
pywebdriver/plugins/scale_protocols/mettler_toledo_8217.py (status bits 0 motion, 1 over
capacity, 2 under zero, 3 outside zero-capture range, 4 centre of zero, 5 net weight — the same
layout as the manual) [P]. pywebdriver also reports that some scales answer a status with no
bit set while the weight is unchanged since the last reply; here that status is refused, so the
caller asks again rather than assume the old weight.
"""

from __future__ import annotations

import re

from ..base import FrameError, Reading, ScaleError, ScaleRefused, parse_mass
from ..serialio import LinkSettings
from .protocol import Ack, Command, Reply, ScaleProtocol

__all__ = ["PROTOCOL", "StxCrFramer", "answers", "decode", "encode", "status_byte"]

NAME = "toledo-8217"
STX = 0x02
CR = 0x0D
UNIT = "kg"  # the reply carries no unit; these POS scales are set to kg in Europe [P]
_MAX_FRAME = 16  # STX + up to 12 characters + CR: anything longer is noise

# Status byte bits (DIVA service manual [V]); bits 6-7 differ between devices: don't care.
MOTION, OVER, UNDER, OUTSIDE_ZERO, CENTER_ZERO, NET = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

_SEVEN_BITS = bytes(range(128)) * 2  # translate table that drops bit 7 (a parity bit)
_REQUESTS: dict[Command, bytes] = {
    Command.READ: b"W",
    # Z, T and C are never acknowledged (Odoo sends them blind [P]). A ``W`` right after makes
    # the scale's reply confirm it is there and show the result (or why it has no weight).
    Command.ZERO: b"ZW",
    Command.TARE: b"TW",
    Command.CLEAR_TARE: b"CW",
}
_WEIGHT = re.compile(rb" *(\d{1,8}(?:\.\d{0,8})?|\.\d{1,8})(N?)")


class StxCrFramer:
    """Frames from STX to CR, both kept. A status reply (``STX ? s CR``) takes its status byte
    whatever it is, so a status that looks like CR or STX cannot cut the frame. Bytes outside a
    frame are dropped and counted; bit 7 is ignored (parity of a 7E1 scale read as 8N1)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        frames: list[bytes] = []
        buf = self._buf
        for byte in data:
            b = byte & 0x7F
            if not buf:
                if b == STX:
                    buf.append(byte)
                else:
                    self.dropped += 1
                continue
            if len(buf) == 2 and buf[1] & 0x7F == 0x3F:  # "?": the status byte, verbatim
                buf.append(byte)
                continue
            if len(buf) == 3 and buf[1] & 0x7F == 0x3F and b != CR:
                self._restart(b == STX, byte)  # a status reply is exactly STX ? s CR
                continue
            if b == CR:
                buf.append(byte)
                frames.append(bytes(buf))
                buf.clear()
            elif b == STX:
                self._restart(True, byte)
            elif len(buf) >= _MAX_FRAME:
                self._restart(False, byte)
            else:
                buf.append(byte)
        return frames

    def _restart(self, at_stx: bool, byte: int) -> None:
        self.dropped += len(self._buf) + (0 if at_stx else 1)
        self._buf.clear()
        if at_stx:
            self._buf.append(byte)

    def reset(self) -> None:
        self._buf.clear()

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)


def status_byte(
    *,
    motion: bool = False,
    over: bool = False,
    under: bool = False,
    outside_zero: bool = False,
    center_zero: bool = False,
    net: bool = False,
) -> int:
    """The status byte as a DIVA scale sends it (bit 6 set, no parity bit): ``0x40`` = ``@``."""
    return (
        0x40
        | motion * MOTION
        | over * OVER
        | under * UNDER
        | outside_zero * OUTSIDE_ZERO
        | center_zero * CENTER_ZERO
        | net * NET
    )


def encode(command: Command) -> bytes:
    """The request bytes: ``W``; zero/tare/clear are ``Z``/``T``/``C`` followed by ``W``."""
    try:
        return _REQUESTS[command]
    except KeyError:
        raise ScaleError(f"{command.value} is not supported by this protocol ({NAME})") from None


def decode(frame: bytes) -> Reply:
    """Decode one whole frame (``\\x0201.250\\r``, ``\\x0201.250N\\r``, ``\\x02?A\\r``).

    A weight reply is stable by definition (the scale answers with a status while in motion)
    [P]; ``N`` means net, its absence gross; the tare is not sent. A status reply gives a
    reading without a value (motion, over capacity, under zero); a status with none of those
    (outside the zero-capture range, or a bad-command answer) raises :class:`ScaleRefused`.
    """
    f = frame.translate(_SEVEN_BITS)  # bit 7 may be a parity bit
    if len(f) < 3 or f[0] != STX or f[-1] != CR:
        raise FrameError(f"not an STX … CR frame: {frame!r}")
    body = f[1:-1]
    if body[:1] == b"?":
        if len(body) != 2:
            raise FrameError(f"a status reply has one status byte: {frame!r}")
        return _status(body[1], frame)
    if body == b"E":
        return Ack("E", "A", raw=frame)  # the presence probe's answer
    match = _WEIGHT.fullmatch(body)
    if match is None:
        raise FrameError(f"not a weight: {frame!r}")
    mg = parse_mass(match.group(1).decode("ascii"), UNIT)
    if match.group(2):
        return Reading(mg, UNIT, True, raw=frame, net=True)
    return Reading(mg, UNIT, True, gross_mg=mg, raw=frame, net=False)


def _status(status: int, frame: bytes) -> Reading:
    motion, over, under = bool(status & MOTION), bool(status & OVER), bool(status & UNDER)
    if motion or over or under:
        net = bool(status & NET)  # bit 5 [V: DIVA manual; P: pywebdriver]
        return Reading(None, UNIT, not motion, overload=over, underload=under, raw=frame, net=net)
    if status & OUTSIDE_ZERO:
        raise ScaleRefused("no weight: the scale is outside its zero-capture range (re-zero it)")
    raise ScaleRefused(f"no weight: status {status:#04x} gives no reason (bad command?)")


def answers(command: Command, reply: Reply) -> bool:
    """Every supported command ends with ``W``: its weight or status reply answers it."""
    return command in _REQUESTS and isinstance(reply, Reading)


PROTOCOL = ScaleProtocol(
    name=NAME,
    description=(
        "Mettler Toledo 8217 / POS weight-only (Ariva, Viva, DIVA; Odoo's scale): request W, "
        "reply STX weight [N] CR or a status byte; 9600 7E1; weight in kg"
    ),
    link=LinkSettings(9600, 7, "E", 1),
    streaming=False,
    make_framer=StxCrFramer,
    decode=decode,
    encode=encode,
    answers=answers,
)
