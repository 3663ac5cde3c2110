"""NCI / Weigh-Tronix SCP-01 codec: ``W``/``S``/``Z`` requests, LF … CR ETX replies, status bits.

Sources (reference §3.4): the SCP-01 status-byte table as reproduced in the Ohaus Aviator 7000
service manual p. 49 (manualshive.com/en/manual/ohaus/aviator-7000-series/4154010?page=49) and
in a public Arduino simulator transcribing Weigh-Tronix document 8408-14788-01 [V]: byte 1
motion / at zero / RAM / EEPROM, byte 2 under / over / ROM / faulty calibration, byte 3 range,
net (bit 2: net, else gross) and initial zero, bit 6 "another byte follows". The weight field's
width and padding vary by model [U]: the field is read as a number and a unit.
"""

from __future__ import annotations

import re

from ..base import FrameError, Reading, ScaleError, ScaleRefused, parse_mass
from ..serialio import LinkSettings
from .protocol import Ack, Command, Reply, ScaleProtocol

__all__ = ["PROTOCOL", "NciFramer", "answers", "decode", "encode", "status_bytes"]

NAME = "nci"
LF = 0x0A
CR = 0x0D
ETX = 0x03
_MAX_FRAME = 48

_SEVEN_BITS = bytes(range(128)) * 2  # translate table that drops bit 7 (a parity bit)
_REQUESTS: dict[Command, bytes] = {
    Command.READ: b"W\r",
    Command.ZERO: b"Z\r",  # zeroes, then replies with the status bytes
}

# A frame ending at ETX: LF [weight+unit CR LF] status CR ETX. The earliest LF that starts
# one wins, so a fragment before it (a frame cut by a reopened port) is skipped.
_FRAME = re.compile(rb"\n(?P<weight>[^\r\n\x03]*\r\n)?[^\r\n\x03]*\r\x03\Z")
_WEIGHT = re.compile(r"([+-]? *[0-9.,]{1,12}) *([A-Za-z]{1,3})")

# Status bits [V: Ohaus Aviator 7000 service manual; SCP-01 transcription]
_B1_MOTION, _B1_ZERO, _B1_RAM, _B1_EEPROM = 0x01, 0x02, 0x04, 0x08
_B2_UNDER, _B2_OVER, _B2_ROM, _B2_CAL = 0x01, 0x02, 0x04, 0x08
_B3_NET, _B3_INIT_ZERO = 0x04, 0x08
_MORE = 0x40  # bit 6 of bytes 2 and 3: another status byte follows
_ERRORS = (
    (0, _B1_RAM, "RAM error"),
    (0, _B1_EEPROM, "EEPROM error"),
    (1, _B2_ROM, "ROM error"),
    (1, _B2_CAL, "faulty calibration"),
    (2, _B3_INIT_ZERO, "initial-zero error"),
)


class NciFramer:
    """Frames from LF to ETX, kept whole. Inside a frame an LF follows a CR (the weight line's
    end), so an LF right after CR starts a frame only when a weight line follows it. Garbage or
    a cut frame before a frame is dropped (and counted). Bit 7 is ignored (the status bytes'
    parity bit)."""

    def __init__(self, max_frame: int = _MAX_FRAME) -> None:
        self._raw = bytearray()
        self._masked = bytearray()  # the same bytes without bit 7, searched at C speed
        self._max = max_frame
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        frames: list[bytes] = []
        raw, masked = self._raw, self._masked
        raw += data
        masked += data.translate(_SEVEN_BITS)
        while (etx := masked.find(b"\x03")) >= 0:
            match = _FRAME.search(masked, 0, etx + 1)
            if match is not None and match.group("weight") is None:
                start = match.start()
                if start and masked[start - 1] == CR:
                    # LF right after CR: the status part of a cut frame, not a status reply
                    match = None
            if match is None:
                self.dropped += etx + 1
            else:
                self.dropped += match.start()
                frames.append(bytes(raw[match.start() : etx + 1]))
            del raw[: etx + 1], masked[: etx + 1]
        if len(masked) > self._max:  # no ETX in sight: keep the last possible frame start
            start = _last_start(masked)
            if len(masked) - start > self._max:
                start = len(masked)  # even that is too long to be a frame
            self.dropped += start
            del raw[:start], masked[:start]
        return frames

    def reset(self) -> None:
        self._raw.clear()
        self._masked.clear()

    @property
    def pending(self) -> bytes:
        return bytes(self._raw)


def _last_start(masked: bytes | bytearray) -> int:
    """Index of the last LF that can start a frame (not the one after the weight line's CR)."""
    i = len(masked)
    while (i := masked.rfind(b"\n", 0, i)) > 0 and masked[i - 1] == CR:
        pass
    return i if i >= 0 else len(masked)


def status_bytes(
    *,
    motion: bool = False,
    at_zero: bool = False,
    under: bool = False,
    over: bool = False,
    net: bool | None = None,
) -> bytes:
    """Status bytes as a scale sends them (no parity bit): ``b"00"``, ``b"10"``, ``b"0p4"``.
    ``net`` not None adds byte 3 (gross/net), announced by bit 6 of byte 2."""
    b1 = 0x30 | motion * _B1_MOTION | at_zero * _B1_ZERO
    b2 = 0x30 | under * _B2_UNDER | over * _B2_OVER
    if net is None:
        return bytes([b1, b2])
    return bytes([b1, b2 | _MORE, 0x30 | net * _B3_NET])


def encode(command: Command) -> bytes:
    """``W\\r`` (weight and status) and ``Z\\r`` (zero); SCP-01 has no tare command."""
    try:
        return _REQUESTS[command]
    except KeyError:
        raise ScaleError(f"{command.value} is not supported by this protocol ({NAME})") from None


def _flags(status: bytes, frame: bytes) -> tuple[int, int, int | None]:
    if not 2 <= len(status) <= 4:
        raise FrameError(f"expected 2 to 4 status bytes: {frame!r}")
    for i, byte in enumerate(status):
        if byte & 0x30 != 0x30:
            raise FrameError(f"status byte {i + 1} lacks its fixed bits 4 and 5: {frame!r}")
        # byte 1 bit 6 is always 0; in bytes 2.. it announces one more byte
        more = bool(byte & _MORE)
        if (i == 0 and more) or (i > 0 and more != (i + 1 < len(status))):
            raise FrameError(f"status byte {i + 1}: wrong 'more bytes' bit: {frame!r}")
    b3 = status[2] if len(status) >= 3 else None
    return status[0], status[1], b3


def decode(frame: bytes) -> Reply:
    """Decode one whole frame (``\\n0001.25LB\\r\\n00\\r\\x03`` or status only ``\\n00\\r\\x03``).

    A weight frame gives a :class:`Reading` (gross or net only when status byte 3 is sent).
    A status-only frame (reply to ``S`` and ``Z``) gives an :class:`Ack` ``("S", <status>,
    <flags>)``, or a value-less :class:`Reading` when it says over or under capacity. Hardware
    error bits and ``?`` (unknown command) raise :class:`ScaleRefused`.
    """
    f = frame.translate(_SEVEN_BITS)  # bit 7 is a parity bit
    if len(f) < 4 or f[0] != LF or not f.endswith(b"\r\x03"):
        raise FrameError(f"not an LF … CR ETX frame: {frame!r}")
    inner = f[1:-2]
    weight_part, sep, status = inner.partition(b"\r\n")
    if not sep:
        weight_part, status = b"", inner
    if status == b"?":
        raise ScaleRefused("the scale did not understand the command")
    if any(b < 0x20 or b > 0x7E for b in weight_part):
        raise FrameError(f"not printable ASCII: {frame!r}")
    if sep and not weight_part:
        raise FrameError(f"empty weight line: {frame!r}")
    b1, b2, b3 = _flags(status, frame)
    for index, bit, what in _ERRORS:
        value = (b1, b2, b3)[index]
        if value is not None and value & bit:
            raise ScaleRefused(f"the scale reports a {what}")
    motion, over, under = bool(b1 & _B1_MOTION), bool(b2 & _B2_OVER), bool(b2 & _B2_UNDER)
    stable = not motion
    unit = ""
    mg: int | None = None
    if weight_part:
        match = _WEIGHT.fullmatch(weight_part.decode("ascii").strip())
        if match is None:
            raise FrameError(f"not a weight and unit: {frame!r}")
        unit = match.group(2)
        mg = parse_mass(match.group(1), unit)
    net = None if b3 is None else bool(b3 & _B3_NET)
    if over or under:
        return Reading(None, unit, stable, overload=over, underload=under, raw=frame, net=net)
    if mg is None:
        names = [name for name, on in (("motion", motion), ("zero", b1 & _B1_ZERO)) if on]
        if b3 is not None:
            names.append("net" if b3 & _B3_NET else "gross")
        return Ack("S", status.decode("ascii"), tuple(names), raw=frame)
    if net is False:
        return Reading(mg, unit, stable, gross_mg=mg, raw=frame, net=False)
    return Reading(mg, unit, stable, raw=frame, net=net)


def answers(command: Command, reply: Reply) -> bool:
    """``W`` is answered by a weight (or an over/under reading), ``Z`` by the status bytes."""
    if command is Command.READ:
        return isinstance(reply, Reading)
    if command is Command.ZERO:
        return isinstance(reply, Ack) or (isinstance(reply, Reading) and reply.net_mg is None)
    return False


PROTOCOL = ScaleProtocol(
    name=NAME,
    description=(
        "NCI / Weigh-Tronix SCP-01 (Brecknell, Avery Weigh-Tronix, NCI POS scales): W CR -> "
        "LF weight unit CR LF status CR ETX; status bits for motion, zero, over, under; "
        "often 9600 7E1"
    ),
    link=LinkSettings(9600, 7, "E", 1),
    streaming=False,
    make_framer=NciFramer,
    decode=decode,
    encode=encode,
    answers=answers,
)
