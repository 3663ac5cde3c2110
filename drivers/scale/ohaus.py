"""Ohaus command set codec (Ranger, Ranger Count, Defender, Valor…): IP/SP/Z/T, CR LF print lines.

Frame facts and their confidence (reference §5, tags as there):

- Commands ``IP`` (print now, stable or not), ``SP`` (print when stable), ``Z``, ``T``, ``0T``
  (clear tare) end with CR LF [V: Ranger Count 3000 §7.3.1, Ranger 7000]. An unknown command is
  answered ``ES`` [V: Courier 5000]. Whether ``Z``/``T`` send anything back is not documented
  [U], so :func:`encode` follows them with ``IP``: the printed weight completes the exchange
  (it shows the scale received the command, not that it could carry it out).
- Print line, Defender 3000 default [V: Defender 3000 indicator manual §5.2, EN-35,
  azmanual.top/manuals/257071/ohaus-defender-3000-metal-weighing-indicator-manual-en.html?page=37]:
  polarity (1: ``-`` or blank), a blank, the weight (7, right-justified, leading zeros blanked),
  a blank, the unit (up to 5), stability (1: ``?`` when unstable), the legend (up to 3: ``G``
  gross, ``NET`` net, ``T`` tare), CR LF. Defender 5000 [V: indicator manual EN-51,
  88.208.23.73:8080/en/manual/ohaus/defender-5000-series/3571725?page=53]: the ``-`` right
  before the digits, the unit right-justified in 5, the legend ``G`` (or nothing) gross, ``N``
  net, ``T`` tare, ``PT`` preset tare, and a check-weighing status (``Under``, ``Accept``,
  ``Over``) that is not part of the weight. Ranger RC [V] writes ``NET`` / ``B/G``. Since the
  models pad differently, fields are read by position relative to each other, not by column.
  Older balances (Scout Pro, Navigator) print the same fields without a polarity column,
  optionally followed by a time [V].
- Ranger RC print-key block lines ``G``/``T``/``N`` + blanks + weight [V]; ``SCALE: n`` header.
- Counting mode prints the count with the unit ``PCS`` (``          3 PCS  ?``) [V: Ohaus RS232
  interface manual output examples]; that it is what ``IP`` prints on a Ranger Count is [U].
  The APW (``P#``) reply layout is not documented [U] and is not decoded.
- ``lb:oz``: the Defender 5000 prints pounds (4, right-justified), `` lb``, ounces (7),
  `` oz``, then stability and ``G``/``N`` (28 characters) [V: EN-51]; ``12:07.5 lb:oz`` (the
  MT-SICS form) is accepted too.
- Overload and underload have no documented print format [U]. The display shows a message in
  place of the weight; a line carrying ``-OL-`` (over) or ``-UL-`` (under) where the weight
  goes is read as out of range [U: constructed, to be checked against a capture]. Any other text
  there is refused, so an unknown message yields no weight rather than a wrong one.
- Link defaults are set in the scale's menu [U]; 9600 8N1 without handshake is the usual
  factory setting [U].
"""

from __future__ import annotations

import re

from ..base import FrameError, Reading, ScaleRefused
from ..serialio import LineFramer, LinkSettings
from ._fields import COUNT_UNITS, count, mass_mg, printable, unsupported
from .protocol import Ack, Command, Reply, ScaleProtocol

__all__ = ["PROTOCOL", "answers", "decode", "encode"]

NAME = "ohaus"
_UNITS = frozenset({"g", "kg", "lb", "oz", "lb:oz"})

_REQUESTS: dict[Command, bytes] = {
    Command.READ: b"IP\r\n",
    Command.READ_STABLE: b"SP\r\n",
    # IP after a silent command: its print line is the reply that ends the exchange
    Command.ZERO: b"Z\r\nIP\r\n",
    Command.TARE: b"T\r\nIP\r\n",
    Command.CLEAR_TARE: b"0T\r\nIP\r\n",
}

# Defender 5000 lb:oz printout: "  12 lb    7.50 oz ? N" [V: EN-51]
_LB_OZ = re.compile(
    r" *(?P<sign>-?)(?P<lb>\d{1,4}) lb +(?P<oz>\d{1,2}(?:[.,]\d*)?) oz(?P<rest>(?:[ ?].*)?)"
)
_CHECK_STATUS = frozenset({"Under", "Accept", "Over"})  # Defender 5000 check weighing
_LINE = re.compile(
    r"(?:(?P<label>[GTN]) +)?"  # Ranger RC print-key block: G / T / N lines
    r"(?P<lead> *)(?P<sign>[-+]?)(?P<gap> *)"
    r"(?P<num>\d{1,6}:\d{1,2}(?:[.,]\d*)?|\d+(?:[.,]\d*)?|[.,]\d+)"
    r" *(?P<unit>[A-Za-z]+(?::[A-Za-z]+)?)"
    r"(?P<rest>(?:[ ?].*)?)"
)
# Out of range [U]: the print line with the display's message in place of the weight.
_OUT_OF_RANGE = re.compile(
    r" *(?P<word>-OL-|-UL-)(?: +(?P<unit>[A-Za-z]+(?::[A-Za-z]+)?))?(?P<rest>(?:[ ?].*)?)"
)
_TIME = re.compile(r"\d\d:\d\d:\d\d")
_SCALE_HEADER = re.compile(r"SCALE: *(\d{1,2})")
_KIND = {
    "G": "gross",
    "B/G": "gross",
    "GROSS": "gross",
    "N": "net",
    "NET": "net",
    "T": "tare",
    "PT": "tare",  # preset tare (Defender 5000)
    "TOTAL": "total",
}


def encode(command: Command) -> bytes:
    """The request bytes for ``command``; :class:`ScaleError` for commands Ohaus lacks here."""
    try:
        return _REQUESTS[command]
    except KeyError:
        raise unsupported(command, NAME) from None


def _trailer(rest: str, frame: bytes) -> tuple[bool, str | None]:
    """(stable, legend) from what follows the unit: ``?``, a legend, a time, blanks."""
    stable = True
    legend: str | None = None
    timed = False
    for token in rest.split():
        if token.startswith("?"):
            if not stable:
                raise FrameError(f"two stability marks: {frame!r}")
            stable = False
            token = token[1:]  # the legend may follow the mark without a blank
            if not token:
                continue
        if token in _KIND and legend is None:  # legends are upper case, like PCS
            legend = token
        elif token in _CHECK_STATUS:
            continue  # a check-weighing verdict, not part of the weight
        elif _TIME.fullmatch(token) and not timed:
            timed = True
        else:
            raise FrameError(f"unexpected field {token!r} after the unit: {frame!r}")
    return stable, legend


def _out_of_range(match: re.Match[str], frame: bytes) -> Reading:
    word, unit, rest = match.group("word", "unit", "rest")
    if unit is not None and unit in _KIND:
        unit, rest = None, f" {unit}{rest}"  # no unit, a legend: "-OL-   G"
    if unit is not None and unit not in _UNITS and unit.lower() not in COUNT_UNITS:
        raise FrameError(f"not an Ohaus unit: {unit!r} in {frame!r}")
    _, legend = _trailer(rest, frame)
    if legend is not None and _KIND[legend] not in ("gross", "net"):
        raise FrameError(f"a {legend} line is not the weight on the pan: {frame!r}")
    over = word == "-OL-"
    net = None if legend is None else _KIND[legend] == "net"
    return Reading(None, unit or "", False, overload=over, underload=not over, raw=frame, net=net)


def decode(frame: bytes) -> Reply:
    """Decode one print line (CR LF stripped or not) to a :class:`Reading` or an :class:`Ack`.

    ``ES`` raises :class:`ScaleRefused`; anything malformed raises :class:`FrameError`.
    """
    text = printable(frame)
    stripped = text.strip()
    if stripped == "ES":
        raise ScaleRefused("ES: the scale did not recognise the command")
    header = _SCALE_HEADER.fullmatch(stripped)
    if header is not None:
        return Ack("SCALE", "A", (header.group(1),), raw=frame)
    out_of_range = _OUT_OF_RANGE.fullmatch(text)
    if out_of_range is not None:
        return _out_of_range(out_of_range, frame)
    lb_oz = _LB_OZ.fullmatch(text)
    if lb_oz is not None:
        return _pounds_ounces(lb_oz, frame)
    match = _LINE.fullmatch(text)
    if match is None:
        raise FrameError(f"not an Ohaus print line: {frame!r}")
    label, lead, sign, gap, num, unit, rest = match.group(
        "label", "lead", "sign", "gap", "num", "unit", "rest"
    )
    if label is None and not (lead or sign):
        # every documented line starts with its polarity column or padding: a line starting
        # with a digit is the tail of a line cut short ("2.34 kg" of "   12.34 kg")
        raise FrameError(f"line does not start with polarity or padding: {frame!r}")
    if sign and label is None and lead and gap:
        # the polarity is column 1 or touches the digits; a sign in the padding is noise
        raise FrameError(f"sign inside the padding: {frame!r}")
    stable, legend = _trailer(rest, frame)
    kind = _KIND[legend] if legend is not None else None
    if label is not None:
        if kind is not None and kind != _KIND[label]:
            raise FrameError(f"line label {label} contradicts legend {legend}: {frame!r}")
        kind = _KIND[label]
    value = f"{sign}{num}"

    if unit.lower() in COUNT_UNITS:
        if kind in ("tare", "total"):
            raise FrameError(f"not a piece count: {frame!r}")
        return Reading(net_mg=None, unit=unit, stable=stable, pieces=count(value), raw=frame)
    if unit not in _UNITS:
        # Ohaus prints units in lower case; an upper-case "G" here is a legend, not grams
        raise FrameError(f"not an Ohaus mass unit: {unit!r} in {frame!r}")
    mg = mass_mg(value, unit)
    if kind == "tare":
        return Ack("T", "A", (value, unit), mass_mg=mg, raw=frame)
    if kind == "total":  # accumulation total (Navigator): not the weight on the pan
        return Ack("TOTAL", "A", (value, unit), mass_mg=mg, raw=frame)
    if kind == "gross":
        return Reading(net_mg=mg, unit=unit, stable=stable, gross_mg=mg, raw=frame, net=False)
    net = True if kind == "net" else None  # no legend: the line does not say
    return Reading(net_mg=mg, unit=unit, stable=stable, raw=frame, net=net)


def _pounds_ounces(match: re.Match[str], frame: bytes) -> Reply:
    sign, pounds, ounces, rest = match.group("sign", "lb", "oz", "rest")
    stable, legend = _trailer(rest, frame)
    kind = _KIND[legend] if legend is not None else None
    mg = mass_mg(f"{sign}{pounds}:{ounces}", "lb:oz")
    if kind == "tare":
        return Ack("T", "A", (f"{sign}{pounds}:{ounces}", "lb:oz"), mass_mg=mg, raw=frame)
    if kind == "total":
        raise FrameError(f"not the weight on the pan: {frame!r}")
    if kind == "gross":
        return Reading(mg, "lb:oz", stable, gross_mg=mg, raw=frame, net=False)
    return Reading(mg, "lb:oz", stable, raw=frame, net=True if kind == "net" else None)


def answers(command: Command, reply: Reply) -> bool:
    """Every supported command ends with a print line, so a weight answers each of them."""
    return command in _REQUESTS and isinstance(reply, Reading)


PROTOCOL = ScaleProtocol(
    name=NAME,
    description=(
        "Ohaus command set (Ranger, Ranger Count, Defender, Valor): IP/SP print, Z, T, 0T; "
        "CR LF lines with '?' when unstable and a G/NET legend; menu default 9600 8N1 [U]"
    ),
    link=LinkSettings(9600, 8, "N", 1),
    streaming=False,
    make_framer=lambda: LineFramer(b"\r\n"),
    decode=decode,
    encode=encode,
    answers=answers,
)
