"""Dini Argeo codec (DFW, 3590E, DGT4X, LTP…): standard and extended strings, READ/TARE/ZERO.

Frame facts and their confidence (reference §7.3; extended layouts from the 3590E technical
manual E-AF03 §5.4/5.6, https://manualshive.com/ru/manual/dini-argeo/3590-ebox-series/2505688):

- Standard string ``[CC]HH,KK,PPPPPPPP,UM`` CR LF [V]: ``CC`` the RS-485 address (two digits,
  only in 485 mode), ``HH`` ``ST`` stable / ``US`` unstable / ``OL`` overload / ``UL``
  underload (LTP adds ``TL``, not level), ``KK`` ``GS`` gross / ``NT`` net (``VL`` µV and ``RZ``
  ADC points are not masses), an 8-character weight with sign and point, a 2-character unit
  (``kg``, ``Kg``, `` g``, `` t``, ``lb``). Example ``ST,GS,     0.0,kg``.
- ``REXT`` reply ``[CC]B,hh,NNNNNNNNNN,YYTTTTTTTTTT,PPPPPPPPPP,MMMMMMMMMM,uu`` [V: 3590E]: scale
  number, status, 10-character net, ``PT`` (preset tare) or two blanks then a 10-character tare,
  two fields documented as "always 0", the unit.
- AF string ``[CC]SS,B,LLLLLLLLLLUM,YYTTTTTTTTTTUM`` [V: 3590E]: status, scale number,
  10-character gross + unit, ``PT``/blanks + 10-character tare + unit.
- ``ER`` in place of the status: the remote scale is in error [V: 3590E]. The LTP piece count
  in its extended string is documented [V] but its layout was not found [U]: not decoded.
- Commands end with CR LF: ``READ``, ``REXT``, ``TARE``, ``ZERO``, ``CLEAR`` [V]; a correct
  command is answered ``OK`` (which "does not imply that the instrument executes" it), a wrong
  one ``ERR01``…``ERR04`` [V: 3590E §5.6; 3590ET serial commands §3].
- Link parameters are set in the indicator's menu ("Serial ports → PC port configuration",
  3590ET serial commands manual §1 [V]); 9600 8N1 is the default here, the factory value was not
  found in the manuals read [U]. No serial command calibrates the span: the DFW command list
  (TECH-MAN-ENG-DFW-SERIAL-PROTOCOL, scribd.com/document/706025244) and the 3590ET/EGT list
  (manualslib.com/manual/1419863/Dini-Argeo-3590et.html) have none [V], so `station calibrate
  span` keeps the station-side gain. ``NTGS`` switches the display between gross and net [V].
"""

from __future__ import annotations

import dataclasses
import re

from ..base import FrameError, Reading, ScaleRefused
from ..serialio import LineFramer, LinkSettings
from ._fields import mass_mg, printable, unsupported
from .protocol import Ack, Command, Reply, ScaleProtocol

__all__ = ["PROTOCOL", "PROTOCOL_EXT", "answers", "decode", "encode", "encode_ext"]

NAME = "dini-argeo"
_UNITS = frozenset({"kg", "g", "t", "lb"})

_REQUESTS: dict[Command, bytes] = {
    Command.READ: b"READ\r\n",
    Command.TARE: b"TARE\r\n",
    Command.ZERO: b"ZERO\r\n",
    Command.CLEAR_TARE: b"CLEAR\r\n",
}
_OK_COMMANDS = frozenset({Command.TARE, Command.ZERO, Command.CLEAR_TARE})

_ERRORS = {
    "01": "command format wrong",
    "02": "command parameter error",
    "03": "command not allowed in the scale's present state",
    "04": "unrecognised command",
}
_STATUS = re.compile(r"(?:\d\d)?(ST|US|OL|UL|TL|ER)")
_REXT_HEAD = re.compile(r"(?:\d\d)?(\d)")
_REPLY = re.compile(r"(?:\d\d)?(OK|ERR(\d\d))")
_WEIGHT_WIDTH = 8
_EXT_WIDTH = 10


def encode(command: Command) -> bytes:
    """The request bytes for ``command``; :class:`ScaleError` for commands DFW lacks here."""
    try:
        return _REQUESTS[command]
    except KeyError:
        raise unsupported(command, NAME) from None


def encode_ext(command: Command) -> bytes:
    """As :func:`encode`, but weights are asked with ``REXT`` (net and tare in one string)."""
    return b"REXT\r\n" if command is Command.READ else encode(command)


def _mass(field: str, width: int, unit: str, frame: bytes) -> int:
    if len(field) != width:
        # fixed widths: a lost or extra byte (a digit, maybe) is caught here
        raise FrameError(f"weight field is not {width} characters: {frame!r}")
    return mass_mg(field, unit, allowed=_UNITS)


def _unit(text: str, frame: bytes) -> str:
    if len(text) != 2 or text.strip().lower() not in _UNITS:
        raise FrameError(f"not a Dini Argeo unit: {text!r} in {frame!r}")
    return text.strip()


def _tare(field: str, frame: bytes) -> str:
    """The tare digits of ``YYTTTTTTTTTT``: ``YY`` is ``PT`` (preset) or two blanks."""
    if field[:2] not in ("PT", "  "):
        raise FrameError(f"tare field must start with 'PT' or two blanks: {frame!r}")
    return field[2:]


def _status(status: str, frame: bytes) -> bool | None:
    """True stable, False unstable, None over/under range; raises for TL and ER."""
    if status == "TL":
        raise ScaleRefused("TL: the scale is not level")
    if status == "ER":
        raise ScaleRefused("ER: the remote scale is in error")
    if status in ("OL", "UL"):
        return None
    return status == "ST"


def _out_of_range(status: str, unit: str, frame: bytes, net: bool | None = None) -> Reading:
    return Reading(
        None,
        unit,
        False,
        overload=status == "OL",
        underload=status == "UL",
        raw=frame,
        net=net,
    )


def _standard(status: str, fields: list[str], frame: bytes) -> Reading:
    kind, weight, unit_field = fields[1:]
    unit = _unit(unit_field, frame)
    stable = _status(status, frame)
    if kind in ("VL", "RZ"):
        raise FrameError(f"{kind} is not a mass (set the indicator to gross or net): {frame!r}")
    if kind not in ("GS", "NT"):
        raise FrameError(f"unknown weight kind {kind!r}: {frame!r}")
    if stable is None:
        return _out_of_range(status, unit, frame, net=kind == "NT")
    mg = _mass(weight, _WEIGHT_WIDTH, unit, frame)
    if kind == "GS":
        return Reading(mg, unit, stable, gross_mg=mg, raw=frame, net=False)
    return Reading(mg, unit, stable, raw=frame, net=True)


def _af(status: str, fields: list[str], frame: bytes) -> Reading:
    gross_field, tare_field = fields[2:]
    if len(gross_field) != _EXT_WIDTH + 2 or len(tare_field) != _EXT_WIDTH + 4:
        raise FrameError(f"AF string fields have the wrong width: {frame!r}")
    unit = _unit(gross_field[_EXT_WIDTH:], frame)
    if _unit(tare_field[-2:], frame).lower() != unit.lower():
        raise FrameError(f"gross and tare in different units: {frame!r}")
    stable = _status(status, frame)
    if stable is None:
        return _out_of_range(status, unit, frame)
    gross = _mass(gross_field[:_EXT_WIDTH], _EXT_WIDTH, unit, frame)
    tare = _mass(_tare(tare_field[:-2], frame), _EXT_WIDTH, unit, frame)
    return Reading(
        gross - tare, unit, stable, gross_mg=gross, tare_mg=tare, raw=frame, net=tare != 0
    )


def _rext(fields: list[str], frame: bytes) -> Reading:
    status, net_field, tare_field, p_field, m_field, unit_field = fields[1:]
    if status not in ("ST", "US", "OL", "UL", "TL", "ER"):
        raise FrameError(f"unknown status {status!r}: {frame!r}")
    unit = _unit(unit_field, frame)
    if len(p_field) != _EXT_WIDTH or len(m_field) != _EXT_WIDTH:
        # documented as "always 0"; their content is not used, their width checks the layout
        raise FrameError(f"REXT fields have the wrong width: {frame!r}")
    stable = _status(status, frame)
    if stable is None:
        return _out_of_range(status, unit, frame)
    net = _mass(net_field, _EXT_WIDTH, unit, frame)
    tare = _mass(_tare(tare_field, frame), _EXT_WIDTH, unit, frame)
    return Reading(net, unit, stable, gross_mg=net + tare, tare_mg=tare, raw=frame, net=tare != 0)


def decode(frame: bytes) -> Reply:
    """Decode one line (CR LF stripped or not) to a :class:`Reading` or an ``OK`` :class:`Ack`.

    ``ERRnn``, ``TL`` (not level) and ``ER`` (scale in error) raise :class:`ScaleRefused`;
    anything malformed raises :class:`FrameError`.
    """
    text = printable(frame)
    reply = _REPLY.fullmatch(text)
    if reply is not None:
        if reply.group(1) == "OK":
            return Ack("OK", "A", raw=frame)
        code = reply.group(2)
        raise ScaleRefused(f"ERR{code}: {_ERRORS.get(code, 'error')}")
    fields = text.split(",")
    head = _STATUS.fullmatch(fields[0])
    if head is not None and len(fields) == 4:
        if fields[1].isdigit() and len(fields[1]) == 1:
            return _af(head.group(1), fields, frame)
        return _standard(head.group(1), fields, frame)
    if _REXT_HEAD.fullmatch(fields[0]) and len(fields) == 7:
        return _rext(fields, frame)
    raise FrameError(f"not a Dini Argeo string: {frame!r}")


def answers(command: Command, reply: Reply) -> bool:
    """Weights answer READ; ``OK`` answers TARE, ZERO and CLEAR_TARE."""
    if command is Command.READ:
        return isinstance(reply, Reading)
    return command in _OK_COMMANDS and isinstance(reply, Ack) and reply.command == "OK"


PROTOCOL = ScaleProtocol(
    name=NAME,
    description=(
        "Dini Argeo DFW/3590E/DGT (standard string ST,GS,     0.0,kg): READ, TARE, ZERO, "
        "CLEAR with OK/ERRnn replies; CR LF; menu default 9600 8N1 [U]"
    ),
    link=LinkSettings(9600, 8, "N", 1),
    streaming=False,
    make_framer=lambda: LineFramer(b"\r\n"),
    decode=decode,
    encode=encode,
    answers=answers,
)

# Same codec, weights asked with REXT: the reply carries net and tare (3590E family [V]).
PROTOCOL_EXT = dataclasses.replace(
    PROTOCOL,
    name="dini-argeo-ext",
    description=(
        "Dini Argeo with the extended string (REXT: net and tare in one reply, 3590E/DFW); "
        "otherwise as dini-argeo"
    ),
    encode=encode_ext,
)
