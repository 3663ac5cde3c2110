"""SMA SCP-0499 codec (Scale Manufacturers Association, levels 1-2): LF … CR fixed-field frames.

Sources (reference §3): the SMA SCP-0499 standard's title page and the frame
``<LF><s><r><n><m><f><weight:10><unit:3><CR>`` (fdocuments.in/document/scale-manufacturers-
association-standard-scale-serial-.html) [V]; the field values from the Fairbanks FB2550
appendix III (azmanual.top/manuals/347098/fairbanks-fb2550-series.html?page=180) [V]: status
``Z``/``O``/``U``/``E``/``I``/``T``, range, ``G`` gross / ``N`` net / ``T`` tare (reply to ``M``)
/ ``g``/``n`` high resolution, ``M`` motion, dashes in place of the weight on errors; the
Cardinal 190 manual p. 124 for the ``LF W CR`` command framing and the ``e`` status [V]; the
``?``/``!`` replies and the ``A``/``B``/``I``/``N`` dialogues from ahmedalrifai/emupos
docs/protocols/sma.md (an emulator's documentation) [P]. Worked examples, the unit padded with
a blank (``lb ``), ``H`` answered in high resolution (``g``) and ``R`` repeating the weight
until the next command: Sartorius PR 5220 manual EN-130
(easymanua.ls/sartorius/pr-5220-series/manual?p=130) and Fairbanks PR 5410 §5.4.1 [V]; the
Cardinal 190 lists its units as ``lb ``, ``oz ``, ``kg ``, ``g `` [V]. Published tables that
write ``kg_`` use ``_`` for a blank; both are accepted.
"""

from __future__ import annotations

import re

from ..base import MG_PER_UNIT, FrameError, Reading, ScaleError, ScaleRefused, parse_mass
from ..serialio import LinkSettings
from .mtsics import parse_weight
from .protocol import Ack, Command, Reply, ScaleProtocol

__all__ = ["PROTOCOL", "LfCrFramer", "SmaRefused", "answers", "decode", "encode", "parse_value"]

NAME = "sma"
LF = 0x0A
CR = 0x0D
BODY_LEN = 18  # s r n m f + 10-character weight + 3-character unit
_MAX_FRAME = 64

_SEVEN_BITS = bytes(range(128)) * 2  # translate table that drops bit 7 (a parity bit)
_REQUESTS: dict[Command, bytes] = {
    Command.READ: b"\nW\r",
    Command.ZERO: b"\nZ\r",
    Command.TARE: b"\nT\r",
    Command.CLEAR_TARE: b"\nC\r",
}

# Status errors: the weight field is dashes and Z/O/U are overridden [V: Fairbanks, Cardinal].
_ERRORS = {
    "E": "zero error (zero refused, e.g. in motion or out of zero range)",
    "I": "initial-zero error (the scale could not zero at power-up)",
    "T": "tare error (tare refused, e.g. in motion)",
    "e": "weight not displayed",  # Cardinal addition
}
_STATUS_OK = frozenset(" ZOU")
_MODES = frozenset("GNTgn")  # gross, net, tare (reply to M), gross/net in high resolution
_DASHES = re.compile(r"-+")
# The dialogue replies (A/B "about", I/N "information", D diagnostics): "TYP:S", "END:"
_DIALOGUE = re.compile(r"([A-Z]{3}):([ -~]*)")


class SmaRefused(ScaleRefused):
    """The scale reported an error status (``E``, ``I``, ``T``, ``e``) or did not understand the
    command (``?``, ``!``). ``status`` is that character."""

    def __init__(self, message: str, *, status: str) -> None:
        super().__init__(message)
        self.status = status


class LfCrFramer:
    """Frames that *start* with LF and end with CR, both kept. An LF restarts the frame (what
    came before was a fragment); bytes outside a frame are dropped and counted. Bit 7 is
    ignored when looking for LF and CR (parity of a 7-bit device read as 8N1)."""

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
        while (cr := masked.find(b"\r")) >= 0:
            lf = masked.rfind(b"\n", 0, cr)
            if lf < 0 or cr - lf >= self._max:
                self.dropped += cr + 1  # a CR outside any frame, or an overlong frame
            else:
                self.dropped += lf
                frames.append(bytes(raw[lf : cr + 1]))
            del raw[: cr + 1], masked[: cr + 1]
        # no CR yet: keep only from the last LF (a frame in progress), unless it is overlong
        lf = masked.rfind(b"\n")
        keep = 0 if lf < 0 or len(masked) - lf > self._max else len(masked) - lf
        if len(masked) > keep:
            self.dropped += len(masked) - keep
            del raw[: len(raw) - keep], masked[: len(masked) - keep]
        return frames

    def reset(self) -> None:
        self._raw.clear()
        self._masked.clear()

    @property
    def pending(self) -> bytes:
        return bytes(self._raw)


def encode(command: Command) -> bytes:
    """``\\nW\\r`` (weight), ``\\nZ\\r`` (zero), ``\\nT\\r`` (tare), ``\\nC\\r`` (clear tare)."""
    try:
        return _REQUESTS[command]
    except KeyError:
        raise ScaleError(f"{command.value} is not supported by this protocol ({NAME})") from None


def parse_value(value: str, unit: str) -> int:
    """Exact mg from the 10-character weight field and the unit (``l/o``: pounds and ounces,
    written ``12:07.5`` or ``12 07.5`` [U: the SMA text does not show the layout])."""
    if unit.lower() == "l/o":
        match = re.fullmatch(r"\s*([+-]?\d{1,6})[: ](\d{1,2}(?:[.,]\d*)?)\s*", value)
        if match is None:
            raise FrameError(f"not a lb-oz value: {value!r}")
        return parse_weight(f"{match.group(1)}:{match.group(2)}", "lb:oz")
    if unit.lower() not in MG_PER_UNIT:
        raise FrameError(f"not a mass unit: {unit!r}")
    return parse_mass(value, unit)


def decode(frame: bytes) -> Reply:
    """Decode one whole frame ``\\n s r n m f <weight:10> <unit:3> \\r`` (LF and CR included).

    Returns a :class:`Reading` (``G``/``g`` gross, ``N``/``n`` net; ``M`` in the motion column
    means not stable; ``O``/``U`` over/under capacity, without a value), an :class:`Ack` for a
    tare report (``n`` = ``T``, reply to ``M``: ``Ack("M", "T", mass_mg=…)``) or a dialogue line
    (``TYP:S``), and raises :class:`SmaRefused` for the error statuses and ``?``/``!``.
    """
    text = frame.translate(_SEVEN_BITS)  # bit 7 may be a parity bit
    if len(text) < 3 or text[0] != LF or text[-1] != CR:
        raise FrameError(f"not an LF … CR frame: {frame!r}")
    if any(b < 0x20 or b > 0x7E for b in text[1:-1]):
        raise FrameError(f"not printable ASCII: {frame!r}")
    body = text[1:-1].decode("ascii")
    if body == "?":
        raise SmaRefused("the scale did not understand the command", status="?")
    if body == "!":
        raise SmaRefused("communication error (check baud rate and parity)", status="!")
    dialogue = _DIALOGUE.fullmatch(body)
    if dialogue is not None:
        return Ack(dialogue.group(1), "A", (dialogue.group(2),), raw=frame)
    if len(body) != BODY_LEN:
        raise FrameError(f"a standard SMA reply has {BODY_LEN} characters: {frame!r}")
    status, rng, mode, motion = body[0], body[1], body[2], body[3]
    field, unit = body[5:15], body[15:18].strip("_ ")
    if status in _ERRORS:
        raise SmaRefused(f"{status}: {_ERRORS[status]}", status=status)
    if status not in _STATUS_OK:
        raise FrameError(f"unknown status {status!r}: {frame!r}")
    if not "1" <= rng <= "9":
        raise FrameError(f"unknown range {rng!r}: {frame!r}")
    if mode not in _MODES:
        raise FrameError(f"unknown gross/net code {mode!r}: {frame!r}")
    if motion not in " M":
        raise FrameError(f"unknown motion code {motion!r}: {frame!r}")
    if not unit or " " in unit or "_" in unit:
        raise FrameError(f"bad unit field {body[15:18]!r}: {frame!r}")
    stable = motion == " "
    net = None if mode == "T" else mode in "Nn"
    if status in "OU":
        if not _DASHES.fullmatch(field.strip()):
            parse_value(field, unit)  # +weight / -weight: checked, not used (out of range)
        return Reading(
            None,
            unit,
            stable,
            overload=status == "O",
            underload=status == "U",
            raw=frame,
            net=net,
        )
    mg = parse_value(field, unit)
    if mode == "T":
        return Ack("M", "T", (field.strip(), unit), mass_mg=mg, raw=frame)
    if mode in "Gg":
        return Reading(mg, unit, stable, gross_mg=mg, raw=frame, net=False)
    return Reading(mg, unit, stable, raw=frame, net=True)


def answers(command: Command, reply: Reply) -> bool:
    """W, Z, T and C are all answered by a standard weight frame."""
    return command in _REQUESTS and isinstance(reply, Reading)


PROTOCOL = ScaleProtocol(
    name=NAME,
    description=(
        "SMA SCP-0499 (Fairbanks, Cardinal, Detecto, Brecknell, Avery Weigh-Tronix): "
        "LF W CR -> LF status range G/N motion weight unit CR; link set on the scale, "
        "default here 9600 8N1"
    ),
    link=LinkSettings(9600, 8, "N", 1),
    streaming=False,
    make_framer=LfCrFramer,
    decode=decode,
    encode=encode,
    answers=answers,
)
