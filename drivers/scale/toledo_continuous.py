"""Mettler Toledo Standard Continuous Output codec: STX framer, frame decoder and frame builder.

Sources (reference §2.1): the frame (STX, status words A/B/C, 6 weight and 6 tare digits, CR,
optional checksum) and the status bits from the Wildcat technical manual p. 40-41
(38.142.81.21:8001/manual/wildcat-territory/scale-e15609900a/user-s-manual-english/page-41.html)
[V], the Kern FTC manual's "TOLEDO Continuous mode" (easymanua.ls/kern/ftc/manual?p=42) and the
Ohaus Defender 5000 status-word table [V]: status B bit 0 gross (0) / net (1), bit 1 sign,
bit 2 out of range, bit 3 motion, bit 4 lb/kg; status C bits 0-2 the unit override.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from ..base import MG_PER_UNIT, FrameError, Reading, ScaleError
from ..serialio import LinkSettings
from .protocol import Command, Reply, ScaleProtocol

__all__ = ["PROTOCOL", "StxFramer", "answers", "checksum_of", "decode", "encode", "encode_frame"]

STX = 0x02
CR = 0x0D
FRAME_LEN = 17  # STX + SWA SWB SWC + 6 displayed + 6 tare + CR
FRAME_LEN_CHECKSUM = 18

# SWC bits 0-2 override SWB bit 4 (lb/kg). Codes 4-7 are read differently by different
# indicators (ozt, dwt, ton, "no unit"...), so they are refused rather than guessed.
_SWC_UNITS = {1: "g", 2: "t", 3: "oz"}
_UNIT_BITS: dict[str, tuple[int, int]] = {  # unit -> (SWB bit 4, SWC bits 0-2)
    "lb": (0, 0),
    "kg": (1, 0),
    "g": (1, 1),
    "t": (1, 2),
    "oz": (0, 3),
}
_INCREMENT_BITS = {1: 0x08, 2: 0x10, 5: 0x18}
_AUTO_VOTES = 3  # agreeing frames before an auto-detecting framer settles on a checksum mode


def checksum_of(head: bytes) -> int:
    """The optional 18th byte: two's complement of the low 7 bits of the sum of the 17 bytes."""
    return (-sum(head)) & 0x7F


class StxFramer:
    """Splits the continuous stream into frames, resynchronising on STX (never on CR: the
    checksum byte after CR may be any 7-bit value, even CR or STX).

    ``checksum=True`` expects 18-byte frames and drops any whose checksum is wrong, ``False``
    expects 17-byte frames, ``None`` auto-detects: while undecided a frame is emitted once the
    byte after its CR is seen (its checksum, or the next frame's STX), and after a few agreeing
    frames the mode is fixed (kept across :meth:`reset`, since the device is the same).

    A candidate that does not fit (no CR at index 16, an STX inside, bad checksum) costs only its
    first byte: scanning resumes at the next STX, so a real frame hidden behind noise is found.
    Bit 7 is ignored everywhere (it is the parity bit when a 7E1 device is read as 8N1).
    """

    def __init__(self, checksum: bool | None = True) -> None:
        self.checksum = checksum
        self._buf = bytearray()
        self._vote: bool | None = None
        self._votes = 0
        self.dropped = 0  # bytes discarded while resynchronising

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        frames: list[bytes] = []
        buf = self._buf
        while buf:
            start = next((i for i, b in enumerate(buf) if b & 0x7F == STX), -1)
            if start < 0:
                self.dropped += len(buf)
                buf.clear()
                break
            if start:
                self.dropped += start
                del buf[:start]
            if len(buf) < FRAME_LEN:
                break
            if buf[16] & 0x7F != CR or any(b & 0x7F == STX for b in buf[1:16]):
                self._skip()
                continue
            if self.checksum is False:
                frames.append(bytes(buf[:FRAME_LEN]))
                del buf[:FRAME_LEN]
                continue
            if len(buf) < FRAME_LEN_CHECKSUM:
                break
            summed = checksum_of(bytes(buf[:FRAME_LEN])) == buf[17] & 0x7F
            if summed:
                size = FRAME_LEN_CHECKSUM
            elif self.checksum is None and buf[17] & 0x7F == STX:
                size = FRAME_LEN  # the next frame follows right after CR: no checksum
            else:
                self._skip()
                continue
            if self.checksum is None:
                self._learn(summed)
            frames.append(bytes(buf[:size]))
            del buf[:size]
        return frames

    def _skip(self) -> None:
        self.dropped += 1
        del self._buf[:1]

    def _learn(self, summed: bool) -> None:
        self._votes = self._votes + 1 if self._vote is summed else 1
        self._vote = summed
        if self._votes >= _AUTO_VOTES:
            self.checksum = summed

    def reset(self) -> None:
        self._buf.clear()

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)


def _digits(field: bytes, places: int, what: str) -> Decimal:
    if not all(0x30 <= b <= 0x39 for b in field):
        raise FrameError(f"{what} field is not 6 digits: {field!r}")
    value = Decimal(int(field))
    # places < 0: the display has dummy zeros that the field does not carry (x10, x100).
    return value.scaleb(-places)


def decode(frame: bytes) -> Reply:
    """Decode one whole frame (STX … CR [checksum]) to a :class:`Reading`.

    Raises :class:`FrameError` for a wrong length, missing STX/CR, bad checksum, wrong fixed
    status bits, non-digit fields or an unsupported unit code.
    """
    if len(frame) not in (FRAME_LEN, FRAME_LEN_CHECKSUM):
        raise FrameError(f"continuous frame must be 17 or 18 bytes, got {len(frame)}: {frame!r}")
    f = bytes(b & 0x7F for b in frame)  # bit 7 may be a parity bit
    if f[0] != STX or f[16] != CR:
        raise FrameError(f"missing STX or CR: {frame!r}")
    if len(f) == FRAME_LEN_CHECKSUM and checksum_of(f[:FRAME_LEN]) != f[17]:
        raise FrameError(f"bad checksum: {frame!r}")
    swa, swb, swc = f[1], f[2], f[3]
    if swa & 0x60 != 0x20 or not swb & 0x20 or not swc & 0x20:
        raise FrameError(f"status bytes fail their fixed bits: {frame!r}")
    code = swc & 0x07
    if code == 0:
        unit = "kg" if swb & 0x10 else "lb"
    elif code in _SWC_UNITS:
        unit = _SWC_UNITS[code]
    else:
        raise FrameError(f"unsupported unit code {code} in status C: {frame!r}")
    places = (swa & 0x07) - 2
    shown = _digits(f[4:10], places, "weight")
    tare = _digits(f[10:16], places, "tare")
    stable = not swb & 0x08
    if swb & 0x04:
        # Out of range: the format does not say whether over capacity or under zero, so only
        # ``overload`` is set; the digits are meaningless.
        return Reading(
            net_mg=None, unit=unit, stable=stable, overload=True, raw=frame, net=bool(swb & 0x01)
        )
    with localcontext() as ctx:
        ctx.prec = 40  # exact for 6 digits times any factor
        shown_mg = int((shown * MG_PER_UNIT[unit]).to_integral_value())
        tare_mg = int((tare * MG_PER_UNIT[unit]).to_integral_value())
    if swb & 0x02:
        shown_mg = -shown_mg
    if swb & 0x01:  # net display: the tare field is the tare in use
        return Reading(shown_mg, unit, stable, shown_mg + tare_mg, tare_mg, raw=frame, net=True)
    return Reading(shown_mg, unit, stable, shown_mg, tare_mg, raw=frame, net=False)


def encode_frame(
    net_or_gross_mg: int,
    unit: str,
    places: int,
    *,
    net: bool = False,
    tare_mg: int = 0,
    motion: bool = False,
    out_of_range: bool = False,
    negative: bool | None = None,
    checksum: bool = True,
    increment: int = 1,
) -> bytes:
    """Build a frame as an indicator would send it (for simulators and tests).

    The mass is rounded (half-even) to the display resolution ``10**-places`` of ``unit``;
    ``places`` is -2…5 (negative: dummy zeros). ``negative`` defaults to the sign of the mass.
    Out of range frames carry zero digits. Raises ``ValueError`` when a value needs more than
    6 digits or an argument is not representable.
    """
    if unit not in _UNIT_BITS:
        raise ValueError(f"unit {unit!r} not representable; use one of {', '.join(_UNIT_BITS)}")
    if not -2 <= places <= 5:
        raise ValueError(f"places must be -2..5, got {places}")
    if increment not in _INCREMENT_BITS:
        raise ValueError(f"increment must be 1, 2 or 5, got {increment}")
    if negative is None:
        negative = net_or_gross_mg < 0
    kg_bit, unit_code = _UNIT_BITS[unit]

    def field(mg: int) -> bytes:
        if out_of_range:
            return b"000000"
        with localcontext() as ctx:
            ctx.prec = 40
            count = int((Decimal(abs(mg)) / MG_PER_UNIT[unit]).scaleb(places).to_integral_value())
        if count > 999_999:
            raise ValueError(f"{mg} mg does not fit 6 digits at {places} places of {unit}")
        return f"{count:06d}".encode("ascii")

    swa = 0x20 | _INCREMENT_BITS[increment] | (places + 2)
    swb = 0x20 | net | negative << 1 | out_of_range << 2 | motion << 3 | kg_bit << 4
    swc = 0x20 | unit_code
    head = bytes([STX, swa, swb, swc]) + field(net_or_gross_mg) + field(tare_mg) + bytes([CR])
    return head + bytes([checksum_of(head)]) if checksum else head


def encode(command: Command) -> bytes:
    """The continuous output defines no commands: always raises :class:`ScaleError`."""
    raise ScaleError(
        f"{command.value} is not supported by the continuous output; use the scale's keys"
    )


def answers(command: Command, reply: Reply) -> bool:
    """Only weights exist in this format: they answer READ and READ_STABLE."""
    return command in (Command.READ, Command.READ_STABLE) and isinstance(reply, Reading)


PROTOCOL = ScaleProtocol(
    name="toledo-continuous",
    description=(
        "Mettler Toledo Standard Continuous Output (streamed STX frames, optional checksum "
        "detected automatically); default 9600 8N1, many indicators are set to 7E1"
    ),
    link=LinkSettings(9600, 8, "N", 1),
    streaming=True,
    make_framer=lambda: StxFramer(checksum=None),
    decode=decode,
    encode=encode,
    answers=answers,
)
