"""Kern codecs: the older s/w/t remote control (FKB, KB, DS, DE…), TM indicators, and KCP.

Three protocols, because the families ask differently (reference §7.1, tags as there):

``kern`` (:data:`PROTOCOL`) — "rE Cr" remote control of FKB, KDE-T, DE, 572/573, KB, DS [V:
FKB/KDE-T/DE manuals]; FKT, IKT, PKT [P: SweepMe! Kern driver]:

- single lower-case letters **without CR LF**: ``w`` weight now, ``s`` next stable weight, ``t``
  tare (no data returned) [V]. No zero command. :func:`encode` sends ``tw`` for a tare, so the
  weight printed after it completes the exchange.
- 18-byte frames ending CR LF [V: KDE-T, DE]: a mark column (blank or ``M``, meaning [U], not
  the sign), a sign column (blank or ``-``), the value right-justified in 10 characters, a blank,
  the unit left-justified in 3 (``g``, ``kg``, ``pcs``, ``%``), CR LF. Unstable frames carry
  **no unit** (blanks) [V], so their mass cannot be known: they decode with ``net_mg=None``.
  The FKB manual draws the same fields one column off [V]: fields are read by position relative
  to each other, not by column.
- ``Error`` (right-justified) is the fault frame [V] → :class:`ScaleRefused`; ``=Overload=``
  is an overload [P: SweepMe! driver]; ``=Underload=`` by symmetry [U].

``kern-tm`` (:data:`PROTOCOL_TM`) — GAB, KFB-TM/KFN-TM, SFB, KXS-TM indicators [V]: upper-case
``W`` weight, ``S`` stable weight, ``T`` tare, ``Z`` zero, sent without CR LF [V: GAB manual;
KFB-TM does not say, [U]]; replies ``ST,GS 1.000KG`` / ``US,GS 1.342KG`` [V: KFB-TM], or
``ST,GS,+0123.456  kg``, ``ST,NT,…``, ``ST,TR,…`` (tare), ``OL,GS,+`` (over) / ``OL,GS,-``
(under) [V: KXS-TM]; GAB's ``ST,G,-  1.000,kg`` (one-letter kind, commas, LF only) [V, exact
padding U]; ``P`` in counting gives ``10PCS`` [V: KFB-TM]. ``T``/``Z`` send nothing, so they
are followed by ``W``. Decoded by :func:`decode_tm`, kept apart from :func:`decode`: the tail
of ``US,GS 1.342KG`` would otherwise pass for a stable s/w/t frame.

``kern-kcp`` (:data:`PROTOCOL_KCP`) — KERN Communication Protocol (KIB-TM, IOC, CKE, newer
balances): MT-SICS command names and replies (@, I0–I5, S, SI, SIR, Z, ZI, T, TA, TAC, TI),
CR LF [V: KIB-TM manual KIB-TM-ZB-e-1913 §1.4, manualslib.fr/manual/845291/Kern-Kib-Tm.html?page=33;
IOC 100K-2LM manual §10.4]; decoded by the MT-SICS codec. The adjustment is the station's to
drive, in three commands: ``JZ`` takes the empty pan as zero (``JZ A``), ``JG`` takes the load
on the pan as the adjustment weight (``JG A``; ``JDC`` says which weight the scale expects),
``JS`` saves the adjustment [V: KDP manual KDP-BA_IA-e-1710 §10.1, "Adjustment can be
initiated using the commands JZ, JG as well as JS in the KCP protocol",
manualarchiveguide.com/manuals/KERN-KDP-3000-2-Operating-And-Installation-5246360?page=14].
The reply to ``JS`` is not shown there: ``JS A`` as the other two [P]; refusals use the MT-SICS
status characters (``I``, ``L``, ``+``, ``-``) [P]. The KCP command lists of KIB-TM, IOC and
CKE name no ``C2``: it is not sent.

Links: 9600 8N1 is the usual factory setting [P: SweepMe! Kern driver; reference U].
"""

from __future__ import annotations

import re

from ..base import FrameError, Reading, ScaleRefused
from ..serialio import LineFramer, LinkSettings
from . import mtsics
from ._fields import COUNT_UNITS, count, mass_mg, printable, unsupported
from .protocol import Ack, Command, Reply, ScaleProtocol

__all__ = [
    "PROTOCOL",
    "PROTOCOL_KCP",
    "PROTOCOL_TM",
    "answers",
    "answers_kcp",
    "decode",
    "decode_kcp",
    "decode_tm",
    "encode",
    "encode_kcp",
    "encode_tm",
]

NAME = "kern"
NAME_TM = "kern-tm"
_UNITS = frozenset({"g", "kg", "mg", "lb", "oz", "ct"})

_REQUESTS: dict[Command, bytes] = {
    Command.READ: b"w",
    Command.READ_STABLE: b"s",
    Command.TARE: b"tw",  # t prints nothing: the w after it gives the reply
}
_REQUESTS_TM: dict[Command, bytes] = {
    Command.READ: b"W",
    Command.READ_STABLE: b"S",
    Command.TARE: b"TW",
    Command.ZERO: b"ZW",
}

# s/w/t frame: mark/sign columns, value, unit. "M" is a mark, not a sign.
_TWS = re.compile(r"(?P<pre>[ M-]*?)(?P<num>\d+(?:[.,]\d*)?|[.,]\d+) *(?P<unit>[A-Za-z%]{1,3})? *")
# TM indicators: "ST,GS 1.000KG", "US,NT,-0012.345  kg", "OL,GS,+", "ST,TR,+012.3456  kg"
# (GAB: one-letter kinds, fields apart by commas, "ST,G,-  1.000,kg"). The sign follows the
# kind or its separator; blanks may part it from the digits only when it is in that column.
_TM = re.compile(
    r"(?P<status>ST|US|OL) *, *"
    r"(?:(?P<kind>GS|GW|NT|NW|TR|TW)(?P<sep> *,|,? +)?|(?P<kind1>[GNT])(?P<sep1> *,))"
    r"(?P<sign>[+-]?)(?P<gap> *)"
    r"(?:(?P<num>\d+(?:[.,]\d*)?|[.,]\d+) *,? *(?P<unit>[A-Za-z]{1,3}))? *"
)
# TM counting reply to P: "10PCS" [V]. It starts with a digit, so a cut "110PCS" cannot be
# told from it: counts are never masses, and the station records the weight beside them.
_TM_COUNT = re.compile(r"(?P<num>\d+)(?P<unit>PCS) *")
_OUT_OF_RANGE = re.compile(r"=(Overload|Underload)=")
_KINDS = {"GS": "gross", "GW": "gross", "G": "gross", "NT": "net", "NW": "net", "N": "net"}


def encode(command: Command) -> bytes:
    """Request bytes for the s/w/t family (no CR LF); :class:`ScaleError` for the others."""
    try:
        return _REQUESTS[command]
    except KeyError:
        raise unsupported(command, NAME) from None


def encode_tm(command: Command) -> bytes:
    """Request bytes for the TM indicators (upper case, no CR LF)."""
    try:
        return _REQUESTS_TM[command]
    except KeyError:
        raise unsupported(command, NAME_TM) from None


def _value(sign: str, num: str, unit: str, frame: bytes) -> int:
    if unit.lower() not in _UNITS:
        raise FrameError(f"not a mass unit: {unit!r} in {frame!r}")
    return mass_mg(sign + num, unit)


def _decode_tm(match: re.Match[str], frame: bytes) -> Reply:
    status, sign, gap, num, unit = match.group("status", "sign", "gap", "num", "unit")
    kind = match.group("kind") or match.group("kind1")
    sep = match.group("sep") or match.group("sep1") or ""
    if sign and gap and num is not None and sep.endswith(" "):
        raise FrameError(f"sign inside the padding: {frame!r}")
    if status == "OL":
        if num is not None or sign == "":
            raise FrameError(f"an OL frame carries a sign and no value: {frame!r}")
        return Reading(
            None,
            "",
            False,
            overload=sign == "+",
            underload=sign == "-",
            raw=frame,
            net=_KINDS[kind] == "net" if kind in _KINDS else None,
        )
    if num is None:
        raise FrameError(f"no value: {frame!r}")
    stable = status == "ST"
    if unit.lower() in COUNT_UNITS:
        return Reading(None, unit, stable, pieces=count(sign + num), raw=frame)
    mg = _value(sign, num, unit, frame)
    if kind in ("TR", "TW", "T"):
        return Ack("TR", status, (sign + num, unit), mass_mg=mg, raw=frame)
    if _KINDS[kind] == "gross":
        return Reading(mg, unit, stable, gross_mg=mg, raw=frame, net=False)
    return Reading(mg, unit, stable, raw=frame, net=True)


def _decode_tws(match: re.Match[str], frame: bytes) -> Reply:
    pre, num, unit = match.group("pre", "num", "unit")
    if not pre:
        # frames start with the mark and sign columns: a digit first is the tail of a cut frame
        raise FrameError(f"frame does not start with its mark/sign columns: {frame!r}")
    if pre.count("-") > 1 or pre.count("M") > 1:
        raise FrameError(f"malformed sign columns: {frame!r}")
    sign = ""
    if "-" in pre:
        where = pre.index("-")
        if where > 1 and where != len(pre) - 1:
            # the sign is in column 2 or touches the digits; one inside the padding is noise
            raise FrameError(f"sign inside the padding: {frame!r}")
        sign = "-"
    if "M" in pre and pre.index("M") > 1:
        raise FrameError(f"mark outside its column: {frame!r}")
    if unit is None:
        # unstable frames carry no unit, so the value cannot be converted [V]
        return Reading(None, "", False, raw=frame)
    if unit == "%":
        raise FrameError(f"percent is not a mass: {frame!r}")
    if unit.lower() in COUNT_UNITS:
        return Reading(None, unit, True, pieces=count(sign + num), raw=frame)
    return Reading(_value(sign, num, unit, frame), unit, True, raw=frame)


def decode(frame: bytes) -> Reply:
    """Decode one s/w/t frame (CR LF stripped or not).

    ``Error`` raises :class:`ScaleRefused`; anything malformed raises :class:`FrameError`.
    """
    text = printable(frame)
    word = text.strip(" ")
    if word == "Error":
        raise ScaleRefused("Error: the balance reports a fault (out of range or not ready)")
    out_of_range = _OUT_OF_RANGE.fullmatch(word)
    if out_of_range is not None:
        over = out_of_range.group(1) == "Overload"
        return Reading(None, "", False, overload=over, underload=not over, raw=frame)
    tws = _TWS.fullmatch(text)
    if tws is None:
        raise FrameError(f"not a Kern s/w/t frame: {frame!r}")
    return _decode_tws(tws, frame)


def decode_tm(frame: bytes) -> Reply:
    """Decode one TM indicator string (CR LF or LF stripped or not).

    Kept apart from :func:`decode`: the tail of ``US,GS 1.342KG`` would pass for a stable s/w/t
    frame. Anything malformed raises :class:`FrameError`.
    """
    text = printable(frame)
    tm = _TM.fullmatch(text)
    if tm is not None:
        return _decode_tm(tm, frame)
    tm_count = _TM_COUNT.fullmatch(text)
    if tm_count is not None:
        return Reading(None, "PCS", True, pieces=count(tm_count.group("num")), raw=frame)
    raise FrameError(f"not a Kern TM string: {frame!r}")


def answers(command: Command, reply: Reply) -> bool:
    """Weights answer every command sent (tare and zero are followed by a weight request)."""
    return command in _REQUESTS_TM and isinstance(reply, Reading)


PROTOCOL = ScaleProtocol(
    name=NAME,
    description=(
        "Kern s/w/t remote control (FKB, KB, DS, DE, 572/573): single letters without CR LF, "
        "18-byte CR LF frames (no unit while unstable); 9600 8N1 [P]"
    ),
    link=LinkSettings(9600, 8, "N", 1),
    streaming=False,
    make_framer=lambda: LineFramer(b"\r\n"),
    decode=decode,
    encode=encode,
    answers=answers,
)

PROTOCOL_TM = ScaleProtocol(
    name=NAME_TM,
    description=(
        "Kern TM indicators (GAB, KFB-TM, KFN-TM, SFB, KXS-TM): W/S/T/Z without CR LF, "
        "replies ST,GS 1.000KG; 9600 8N1 [P]"
    ),
    link=LinkSettings(9600, 8, "N", 1),
    streaming=False,
    make_framer=lambda: LineFramer(b"\r\n"),
    decode=decode_tm,
    encode=encode_tm,
    answers=answers,
)

_KCP_ADJUST: dict[Command, str] = {
    Command.ADJUST_ZERO: "JZ",
    Command.ADJUST_SPAN: "JG",
    Command.ADJUST_SAVE: "JS",
}
_KCP_J = re.compile(r"(JZ|JG|JS) +(\S)")
_KCP_REFUSED = {
    "I": "not possible now (busy or not stable)",
    "L": "logical error (not allowed, e.g. the adjustment switch is locked)",
    "+": "the load is above the adjustment range",
    "-": "the load is below the adjustment range",
}


def encode_kcp(command: Command) -> bytes:
    """MT-SICS request bytes, and ``JZ``/``JG``/``JS`` for the adjustment steps; no ``C2``."""
    if command in _KCP_ADJUST:
        return _KCP_ADJUST[command].encode("ascii") + b"\r\n"
    if command is Command.ADJUST_EXTERNAL:
        raise unsupported(command, "kern-kcp")
    return mtsics.encode(command)


def decode_kcp(frame: bytes) -> Reply:
    """``JZ A``/``JG A``/``JS A`` (an :class:`Ack`; other statuses raise
    :class:`~drivers.scale.mtsics.SicsRefused`), else the MT-SICS reply."""
    match = _KCP_J.fullmatch(frame.rstrip(b"\r\n").decode("ascii", "replace"))
    if match is None:
        return mtsics.decode(frame)
    ident, status = match.groups()
    if status == "A":
        return Ack(ident, status, raw=frame)
    if status in _KCP_REFUSED:
        raise mtsics.SicsRefused(
            f"{ident} {status}: {_KCP_REFUSED[status]}", command=ident, status=status
        )
    raise FrameError(f"unknown status {status!r} for {ident}: {frame!r}")


def answers_kcp(command: Command, reply: Reply) -> bool:
    if command in _KCP_ADJUST:
        return isinstance(reply, Ack) and reply.command == _KCP_ADJUST[command]
    return mtsics.answers(command, reply)


PROTOCOL_KCP = ScaleProtocol(
    name="kern-kcp",
    description=(
        "Kern KCP (KIB-TM, IOC, CKE and newer balances): MT-SICS-like S/SI/Z/T/TAC/@/I4, "
        "JZ/JG/JS adjustment, CR LF; 9600 8N1 [P]"
    ),
    link=LinkSettings(9600, 8, "N", 1),
    streaming=False,
    make_framer=lambda: LineFramer(b"\r\n"),
    decode=decode_kcp,
    encode=encode_kcp,
    answers=answers_kcp,
)
