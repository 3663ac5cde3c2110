"""Dini Argeo personality: READ/REXT/TARE/ZERO/CLEAR CR LF, standard and REXT strings, OK/ERRnn."""

from __future__ import annotations

import threading
from typing import ClassVar

from . import Personality, SimScale, SimState, decimal_text

__all__ = ["PERSONALITY", "DiniPersonality"]

OK = b"OK\r\n"
ERR_NOT_NOW = b"ERR03\r\n"  # command not allowed in the scale's present state
ERR_UNKNOWN = b"ERR04\r\n"
_WIDTH = 8  # standard string weight field, sign and point included
_EXT_WIDTH = 10  # REXT fields
_ZEROS = f"{'0':>{_EXT_WIDTH}},{'0':>{_EXT_WIDTH}}"  # the two REXT fields "always 0"


class DiniPersonality(Personality):
    """A DFW / 3590E indicator with the standard string: ``READ`` gives
    ``ST,GS,   1.250,kg`` (``US`` in motion, ``NT`` with a tare, ``OL``/``UL`` out of range with
    dashes), ``REXT`` the extended ``1,ST,     1.250,       0.000,         0,         0,kg``
    (scale 1, net, tare). ``TARE``/``ZERO``/``CLEAR`` (or ``T``/``Z``/``C``) answer ``OK``, or
    ``ERR03`` when the scale cannot (in motion, out of range); an unknown command ``ERR04``. The
    PRINT key sends the standard string."""

    name: ClassVar[str] = "dini-argeo"
    read_request: ClassVar[bytes] = b"READ\r\n"

    def respond(self, request: bytes, scale: SimScale, down: threading.Event) -> bytes | None:
        try:
            text = request.decode("ascii").strip()
        except UnicodeDecodeError:
            return b"ERR01\r\n"  # command format wrong
        if not text:
            return None
        if text == "READ":
            return _standard(scale, scale.snapshot())
        if text == "REXT":
            return _extended(scale, scale.snapshot())
        if text in ("TARE", "T"):
            status, _ = scale.tare()
            return OK if status == "A" else ERR_NOT_NOW
        if text in ("ZERO", "Z"):
            status, _ = scale.zero_detail()
            return OK if status == "A" else ERR_NOT_NOW
        if text in ("CLEAR", "C"):
            scale.clear_tare()
            return OK
        return ERR_UNKNOWN

    def print_block(self, scale: SimScale) -> bytes | None:
        return _standard(scale, scale.snapshot())


def _status(state: SimState, fits: bool) -> str:
    """``OL``/``UL`` out of range (``OL`` too when the value does not fit its field), else
    ``US``/``ST``."""
    if state.underload and not state.overload:
        return "UL"
    if state.overload or not fits:
        return "OL"
    return "US" if state.motion else "ST"


def _standard(scale: SimScale, state: SimState) -> bytes:
    value = decimal_text(state.net_mg, scale.unit, scale.decimals)
    status = _status(state, len(value) <= _WIDTH)
    if status in ("OL", "UL"):
        value = "-" * _WIDTH
    kind = "NT" if state.tare_mg else "GS"
    return f"{status},{kind},{value:>{_WIDTH}},{scale.unit:>2}\r\n".encode("ascii")


def _extended(scale: SimScale, state: SimState) -> bytes:
    net = decimal_text(state.net_mg, scale.unit, scale.decimals)
    tare = decimal_text(state.tare_mg, scale.unit, scale.decimals)
    status = _status(state, max(len(net), len(tare)) <= _EXT_WIDTH)
    if status in ("OL", "UL"):
        net = tare = ""
    line = f"1,{status},{net:>{_EXT_WIDTH}},  {tare:>{_EXT_WIDTH}},{_ZEROS},{scale.unit:>2}"
    return line.encode("ascii") + b"\r\n"


PERSONALITY = DiniPersonality
