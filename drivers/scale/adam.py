"""Adam Equipment counting-scale codec (CBK, CBC, CBD, Highland…): multi-line print blocks.

Frame facts and their confidence (reference §6, tags as there):

- Link: CBK 9600 8N1 by default [V], CBC 600–19200 selectable 8N1 [V], Highland and AZextra
  4800 8N1 [V]/[P]. The default here is the CBK's 9600 8N1; set 4800 for the others.
- Commands end with CR (LF optional), upper case: ``P`` print, ``T`` tare, ``Z`` zero; an
  illegal or impossible command is echoed as ``ER <cmd>`` [V: CBD manual]. Successful ``T``/``Z``
  send nothing: Odoo's IoT box driver sends them without reading a reply [P: odoo/odoo
  addons/hw_drivers/iot_handlers/drivers/SerialScaleDriver.py, ADAMEquipmentProtocol], so
  :func:`encode` follows them with ``P``: the printed block completes the exchange. The AZextra
  answers ``P`` only when a new non-zero weight lies on the pan (nothing otherwise, and it beeps
  at repeated reads) [P: same driver's comments]: no reply is "no new weight", not zero. On a
  Highland, ``P`` also adds to the accumulation memory unless it is automatic [V]; prefer
  "automatic" accumulation or a model that prints without storing.
- Print block, CR LF lines [V: CBC, CBK, Highland format 1]: optional ``Date``/``Time``/
  ``Scale ID``/``User ID`` lines (the CBK puts blank lines between them), then labelled values
  ``Gross Wt 1.234 Kg`` or ``Net Wt. 1.234 Kg``, ``Unit Wt. 123 g``, ``PCS 10 pcs``, then two or
  more blank lines. The CBC manual writes blank lines as ``<lf><cr>``: either order is accepted.
  Spacing is approximate [P]; the fields are read by label, not by column.
- A memory-recall block (``No. 5`` / ``Wt. 1.234 Kg`` / ``PCS 10 pcs``, CBC) and Highland's
  ``No.``/``Total`` lines are accumulation totals, not the weight on the pan [V]: a block
  holding only totals decodes to an :class:`Ack` ``TOTAL``.
- Highland format 2 and continuous output: one 16-character line ``±`` + value + unit
  (``-      123.45 g `` or ``         125PCS``) followed by blank lines [V]. The CBW and the
  2011 Highland label weights ``GS`` (gross) / ``NT`` (net) (``GS      123.45 g ``) [V: CBW
  manual 2007 §9, https://videogame.manualsonline.com/manuals/mfg/adam_equipment/cbw_30.html?p=21;
  Highland 2011 p. 25, https://www.manualslib.com/manual/839551/Adam-Equipment-Highland-Series.html?page=27];
  the Highland's continuous line puts ``ST``/``US`` before them and a polarity column after
  (``ST,GS-     123.45 g ``: ``-`` or blank, then the value right-justified) [V: same page];
  ``ST,GROSS``/``US NET`` spellings are [U].
- Stability is only in that ``ST``/``US`` header. A block without it is taken as stable, since
  these scales print on the Print key or ``P`` once the weight has settled [U]: set the scale to
  print stable weights only where its menu allows. Labels are matched in English only; set the
  printout language to English (the scale also prints French, German or Spanish labels, whose
  exact texts are [U]).
- Out of range, the weight field (polarity, digits and point) is filled with ``^`` (over
  capacity) or ``-`` (under) [V for the MDW-300L's command output, §8.5.1,
  http://drillspot.manualsonline.com/user-manual/adam_equipment/building_set/mdw300l/page/14;
  [U] that the counting scales print it the same way]: ``US,GS^^^^^^^^^^^ kg``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..base import FrameError, Reading, ScaleRefused
from ..serialio import LinkSettings
from ._fields import COUNT_UNITS, count, mass_mg, printable, unsupported
from .protocol import Ack, Command, Reply, ScaleProtocol

__all__ = ["MAX_BLOCK", "PROTOCOL", "BlockFramer", "answers", "decode", "encode"]

NAME = "adam"
MAX_BLOCK = 1024  # the longest documented block is ~200 bytes; beyond this it is garbage
CR, LF = 0x0D, 0x0A
_UNITS = frozenset({"g", "kg", "lb", "oz"})

_REQUESTS: dict[Command, bytes] = {
    Command.READ: b"P\r\n",
    # P after a silent command: its block is the reply that ends the exchange
    Command.ZERO: b"Z\r\nP\r\n",
    Command.TARE: b"T\r\nP\r\n",
}

# A line that carries a value with a unit (or an out-of-range field, ^^^ or ---, with its unit):
# what makes a blank line the end of a block (the CBK's header lines are separated by blank
# lines too).
_VALUE_WITH_UNIT = re.compile(rb"(?:\d|\^{3}|-{3}) *[A-Za-z]{1,3} *$")
_ERROR_LINE = re.compile(rb"ER(?: .*)?")


class BlockFramer:
    """Assembles CR LF (or LF CR) lines into one print block, ended by a blank line.

    A blank line (a run of line breaks holding two LFs or more) ends the block once the block
    holds a line with a value and a unit; before that it is kept (header lines). ``ER …``
    replies are single lines and are emitted at once. A block longer than ``max_block`` bytes is
    dropped whole, up to the next blank line. Frames keep their inner line breaks as received.
    """

    def __init__(self, max_block: int = MAX_BLOCK) -> None:
        self._max = max_block
        self._buf = bytearray()  # the block so far, inner line breaks included
        self._line = bytearray()  # the line being received
        self._end = 0  # length of the block up to the end of its last line
        self._lfs = 0  # LFs in the current run of line-break bytes
        self._valued = False  # a line with a value and a unit has been seen
        self._skipping = False
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        frames: list[bytes] = []
        for byte in data:
            if byte in (CR, LF):
                if self._line:
                    self._close_line(frames)
                self._lfs += byte == LF
                if self._lfs >= 2:
                    self._blank(frames)
                elif self._buf and not self._skipping:
                    self._buf.append(byte)
            else:
                self._lfs = 0
                if not self._skipping:
                    self._line.append(byte)
            if len(self._buf) + len(self._line) > self._max:
                self._drop()
        return frames

    def _close_line(self, frames: list[bytes]) -> None:
        line = bytes(self._line)
        self._line.clear()
        if self._skipping:
            return
        if not self._buf and _ERROR_LINE.fullmatch(line):
            frames.append(line)  # a refusal is one line with no blank line after it
            return
        self._buf += line
        self._end = len(self._buf)
        if _VALUE_WITH_UNIT.search(line):
            self._valued = True

    def _blank(self, frames: list[bytes]) -> None:
        if self._skipping:
            self._skipping = False
        elif self._valued:
            frames.append(bytes(self._buf[: self._end]))
            self._clear()
        elif self._buf:
            self._buf.append(LF)  # a blank line between header lines stays in the block

    def _drop(self) -> None:
        self._clear()
        self._skipping = True
        self.dropped += 1

    def _clear(self) -> None:
        self._buf.clear()
        self._line.clear()
        self._end = 0
        self._valued = False

    def reset(self) -> None:
        self._clear()
        self._lfs = 0
        self._skipping = False

    @property
    def pending(self) -> bytes:
        return bytes(self._buf + self._line)


def encode(command: Command) -> bytes:
    """The request bytes for ``command``; :class:`ScaleError` for commands Adam lacks here."""
    try:
        return _REQUESTS[command]
    except KeyError:
        raise unsupported(command, NAME) from None


_LABELS: dict[str, str] = {
    **dict.fromkeys(("gross", "gross wt", "gross weight", "gs"), "gross"),
    **dict.fromkeys(("net", "net wt", "net weight", "nt"), "net"),
    **dict.fromkeys(("tare", "tare wt", "tare weight"), "tare"),
    **dict.fromkeys(("unit wt", "unit weight", "apw"), "unit"),
    **dict.fromkeys(("pcs", "count", "qty", "quantity"), "pcs"),
    **dict.fromkeys(("no", "total", "wt", "total wt", "total weight", "total pcs"), "total"),
}
_MASS_KINDS = ("gross", "net", "tare", "unit")
# label, sign, number, unit: "Net Wt. 1.234 Kg", "PCS 10 pcs", "ST,GROSS -123.45 g", "No. 5"
_VALUE_LINE = re.compile(
    r"(?P<label>[A-Za-z][A-Za-z .,:]*?)[ .:]*"
    r"(?P<value>[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)) *(?P<unit>[A-Za-z]+)? *"
)
# Highland continuous line: status, kind, then a polarity column ("ST,GS-     123.45 g ")
_HEADED = re.compile(
    r"(?P<label>(?:ST|US),(?:GS|NT))"
    r"(?P<value>[ +-] *(?:\d+(?:[.,]\d*)?|[.,]\d+)) *(?P<unit>[A-Za-z]+)? *"
)
# Out of range: the weight field filled with "^" (over) or "-" (under), the label kept
_FILLED = re.compile(
    r"(?P<label>[A-Za-z][A-Za-z .,:]*?)[ .:]*(?P<fill>\^{3,}|-{3,}) *(?P<unit>[A-Za-z]+)? *"
)
# Highland format 2: "-      123.45 g " or "         125PCS", exactly 16 characters
_SHOWN = re.compile(r"(?P<value>[ +-][ +-]*(?:\d+(?:[.,]\d*)?|[.,]\d+)) *(?P<unit>[A-Za-z]+) *")
_SHOWN_WIDTH = 16
# Lines with digits that carry no value: the date, the time, IDs (also alone on their line).
_IGNORED = re.compile(r"(?:(?:date|time|scale id|user id|id)\b.*|\d+)", re.IGNORECASE)
_STATUS = re.compile(r"(ST|US)(?:[ ,]+|(?=GROSS|NET))(.+)")


def _label(text: str) -> tuple[str | None, bool | None]:
    """(kind, stable) of a label; kind None when the label is not one we know."""
    words = " ".join(text.replace(".", " ").replace(":", " ").split()).lower()
    stable: bool | None = None
    status = _STATUS.fullmatch(words.upper())
    if status is not None:
        stable = status.group(1) == "ST"
        words = status.group(2).lower().replace(",", " ").strip()
    return _LABELS.get(words), stable


@dataclass
class _Block:
    masses: dict[str, tuple[int, str]] = field(default_factory=dict)  # kind -> (mg, unit)
    pieces: int | None = None
    totals: bool = False
    stable: bool | None = None
    out_of_range: tuple[str, str, str] | None = None  # ("over" | "under", unit, gross/net)


def _line_into(block: _Block, line: str, frame: bytes) -> None:
    kind: str | None
    stable: bool | None = None
    filled = _FILLED.fullmatch(line.strip(" "))
    if filled is not None:
        _out_of_range_into(block, filled, frame)
        return
    labelled = _HEADED.fullmatch(line.strip(" ")) or _VALUE_LINE.fullmatch(line.strip(" "))
    if labelled is not None:
        label, value, unit = labelled.group("label", "value", "unit")
        kind, stable = _label(label)
        if kind is None:
            if unit is None:
                return  # "Scale ID 123456"
            raise FrameError(f"unknown label {label.strip()!r} (English printout?): {frame!r}")
    else:
        shown = _SHOWN.fullmatch(line)
        if shown is None:
            text = line.strip(" ")
            if any(c.isdigit() for c in text) and not _IGNORED.fullmatch(text):
                # a damaged value line must not vanish: with gross and tare, a lost tare
                # line would turn the gross into the net
                raise FrameError(f"unreadable line {line!r}: {frame!r}")
            return  # Date, Time, IDs, headers: not values
        if len(line) != _SHOWN_WIDTH:
            # the tail of a cut line ("1.234 Kg" of "Net Wt 11.234 Kg") is not a value
            raise FrameError(f"unlabelled value is not a 16-character line: {frame!r}")
        value, unit = shown.group("value", "unit")
        kind = "pcs" if unit.lower() in COUNT_UNITS else "shown"
    if stable is not None:
        block.stable = stable
    if kind == "total":
        block.totals = True
        return
    if kind == "pcs":
        if unit is None or unit.lower() not in COUNT_UNITS:
            # "PCS 10 pcs": without its unit the count may be cut short ("PCS 1" of "PCS 164")
            raise FrameError(f"a count without its pcs unit: {frame!r}")
        if block.pieces is not None:
            raise FrameError(f"two piece counts in one block: {frame!r}")
        block.pieces = count(value)
        return
    if unit is None or unit.lower() not in _UNITS:
        raise FrameError(f"{kind} weight without a mass unit: {frame!r}")
    if kind in block.masses:
        raise FrameError(f"two {kind} weights in one block: {frame!r}")
    block.masses[kind] = (mass_mg(value, unit), unit)


def _out_of_range_into(block: _Block, match: re.Match[str], frame: bytes) -> None:
    label, fill, unit = match.group("label", "fill", "unit")
    kind, _ = _label(label)
    if kind not in ("gross", "net"):
        raise FrameError(f"out-of-range field on a {kind or 'unknown'} line: {frame!r}")
    if unit is not None and unit.lower() not in _UNITS:
        raise FrameError(f"{kind} weight without a mass unit: {frame!r}")
    if block.out_of_range is not None:
        raise FrameError(f"two out-of-range weights in one block: {frame!r}")
    block.out_of_range = ("over" if fill[0] == "^" else "under", unit or "", kind)


def decode(frame: bytes) -> Reply:
    """Decode one print block (or an ``ER`` line) to a :class:`Reading` or an :class:`Ack`.

    ``ER <cmd>`` raises :class:`ScaleRefused`; anything malformed, contradictory or holding no
    weight raises :class:`FrameError`.
    """
    if not frame.strip(b"\r\n"):
        raise FrameError("empty block")
    lines = [printable(part) for part in re.split(rb"[\r\n]+", frame.strip(b"\r\n"))]
    if len(lines) == 1 and (lines[0] == "ER" or lines[0].startswith("ER ")):
        refused = lines[0][3:].strip()
        raise ScaleRefused(f"ER {refused}: the scale refused or did not recognise {refused!r}")
    block = _Block()
    for line in lines:
        _line_into(block, line, frame)
    masses = block.masses
    unit_weight = masses["unit"][0] if "unit" in masses else None
    stable = True if block.stable is None else block.stable
    displays = [k for k in ("gross", "net", "shown") if k in masses]
    if block.out_of_range is not None:
        if displays or block.pieces is not None:
            raise FrameError(f"a weight beside an out-of-range field: {frame!r}")
        where, unit, kind = block.out_of_range
        return Reading(
            None,
            unit,
            False,
            overload=where == "over",
            underload=where == "under",
            raw=frame,
            net=kind == "net",
        )
    if not displays:
        if "tare" in masses:
            raise FrameError(f"a tare without a gross or net weight: {frame!r}")
        if block.totals:  # memory recall: totals of stored weighings, not the pan
            return Ack("TOTAL", "A", tuple(lines), raw=frame)
        if block.pieces is None:
            raise FrameError(f"no weight or count in the block: {frame!r}")
        return Reading(
            None, "pcs", stable, pieces=block.pieces, unit_weight_mg=unit_weight, raw=frame
        )
    if "shown" in masses and len(displays) > 1:
        raise FrameError(f"an unlabelled weight beside labelled ones: {frame!r}")
    tare = masses["tare"][0] if "tare" in masses else None
    gross = masses["gross"][0] if "gross" in masses else None
    if "net" in masses:
        net, unit = masses["net"]
        if gross is not None and tare is not None and gross != net + tare:
            raise FrameError(f"gross is not net + tare: {frame!r}")
        if gross is None and tare is not None:
            gross = net + tare
    elif gross is not None:
        unit = masses["gross"][1]
        net = gross - tare if tare is not None else gross
    else:
        net, unit = masses["shown"]
    # the block's labels say net or gross ("Net Wt." when a tare is stored [V: CBC]); an
    # unlabelled Highland line does not
    marked = None if "shown" in masses else "net" in masses or bool(tare)
    return Reading(
        net,
        unit,
        stable,
        gross_mg=gross,
        tare_mg=tare,
        pieces=block.pieces,
        unit_weight_mg=unit_weight,
        raw=frame,
        net=marked,
    )


def answers(command: Command, reply: Reply) -> bool:
    """Every supported command ends with a print block, so a weight answers each of them."""
    return command in _REQUESTS and isinstance(reply, Reading)


PROTOCOL = ScaleProtocol(
    name=NAME,
    description=(
        "Adam Equipment counting scales (CBK, CBC, CBD, Highland): P prints a block of CR LF "
        "lines (Gross/Net Wt, Unit Wt., PCS) ended by blank lines; 9600 8N1 (CBK), "
        "set 4800 8N1 for Highland/AZextra"
    ),
    link=LinkSettings(9600, 8, "N", 1),
    streaming=False,
    make_framer=BlockFramer,
    decode=decode,
    encode=encode,
    answers=answers,
)
